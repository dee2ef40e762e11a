"""The documentation stays true to the repository: every relative link in README.md and docs/
resolves to a file or folder of the repository, and the endpoint tables of docs/api.md list
exactly what the two services serve (their OpenAPI schemas), without starting a server."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from command_service.api.app import create_app as create_command_app
from query_service.app import create_app as create_query_app
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
API_DOC = DOCS / "api.md"

FENCED_BLOCK = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), with an optional "title"; and [label]: target.
INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")

# Which service serves the endpoint rows under each `##` heading of docs/api.md. Rows under the
# "Planned" heading are not served yet and are left out.
SERVICES_BY_HEADING = {
    "Command service": ("command",),
    "Query service": ("query",),
    "Health and metrics": ("command", "query"),
}
PLANNED_HEADING = "Planned"
ENDPOINT_CELL = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/\S*)$")
OPERATIONS_PATHS = {"/healthz", "/readyz", "/metrics", "/console"}


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def relative_links(markdown: str) -> list[str]:
    """Link targets outside code, without external links, pure anchors or #fragments."""
    text = INLINE_CODE.sub("code", FENCED_BLOCK.sub("", markdown))
    targets = INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)
    found = []
    for target in targets:
        if target.lower().startswith(EXTERNAL) or target.startswith("#"):
            continue
        found.append(unquote(target.split("#", 1)[0]))
    return found


def normalised(path: str) -> str:
    """`/v1/accounts/{account_id}` -> `/v1/accounts/{}`: parameter names may differ."""
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0])


def documented_endpoints() -> set[tuple[str, str, str]]:
    """(service, METHOD, path) of every endpoint row in the served sections of docs/api.md."""
    documented: set[tuple[str, str, str]] = set()
    services: tuple[str, ...] | None = None
    heading = ""
    for line in FENCED_BLOCK.sub("", API_DOC.read_text()).splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            services = next((s for prefix, s in SERVICES_BY_HEADING.items()
                             if heading.startswith(prefix)), None)
            continue
        if not line.startswith("|"):
            continue
        first_cell = line.strip().strip("|").split("|", 1)[0].strip().strip("`").strip()
        match = ENDPOINT_CELL.match(first_cell)
        if match is None or heading.startswith(PLANNED_HEADING):
            continue
        assert services is not None, (
            f"docs/api.md: the endpoint row {first_cell!r} is under '## {heading}', which is "
            "neither a service's section nor the Planned one")
        method, path = match.groups()
        for service in services:
            documented.add((service, method, normalised(path)))
    return documented


def served_endpoints() -> set[tuple[str, str, str]]:
    settings = Settings(auth_jwt_secret="x" * 40)
    served: set[tuple[str, str, str]] = set()
    for service, create_app in (("command", create_command_app), ("query", create_query_app)):
        for path, operations in create_app(settings).openapi()["paths"].items():
            if not (path.startswith("/v1/") or path in OPERATIONS_PATHS):
                continue
            for method in operations:
                served.add((service, method.upper(), normalised(path)))
    return served


def test_every_relative_link_in_the_readme_and_the_docs_resolves_inside_the_repository():
    broken = []
    for document in documents():
        for target in relative_links(document.read_text()):
            resolved = (document.parent / target).resolve() if target else document
            where = f"{document.relative_to(ROOT)}: {target}"
            if not resolved.is_relative_to(ROOT):
                broken.append(f"{where} (points outside the repository)")
            elif not resolved.exists():
                broken.append(f"{where} (no such file or folder)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_api_doc_lists_exactly_the_endpoints_the_two_services_serve():
    documented, served = documented_endpoints(), served_endpoints()
    assert documented, "docs/api.md documents no endpoint"

    def listing(endpoints: set[tuple[str, str, str]]) -> str:
        return "\n".join(f"  {s}: {m} {p}" for s, m, p in sorted(endpoints))

    assert documented <= served, ("documented in docs/api.md but not served (move them to "
                                  "'Planned (not served yet)'):\n" + listing(documented - served))
    assert served <= documented, ("served but missing from docs/api.md:\n"
                                  + listing(served - documented))
