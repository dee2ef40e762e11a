"""The README stays true to the code: every setting is documented, both commands are shown."""

from __future__ import annotations

from pathlib import Path

from shared.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_documents_every_setting_with_its_default():
    for name, field in Settings.model_fields.items():
        variable = f"`CQRS_{name.upper()}`"
        assert variable in README, f"{variable} is missing from the README"
        row = next(line for line in README.splitlines() if line.startswith(f"| {variable}"))
        default = str(field.default).lower() if isinstance(field.default, bool) else str(
            field.default)
        assert f"`{default}`" in row, f"{variable}: the README's default is not {default}"


def test_the_readme_shows_the_two_commands():
    assert "make dev" in README and "make test" in README
