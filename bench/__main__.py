"""`python -m bench [--smoke | --large] [--only SECTION,...] [--out DIR] [--no-profile]`"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.backends import Backends
from bench.context import SIZES, Context
from shared.worker import run

SECTIONS = ("commands", "relay", "peer", "projector", "queries", "e2e", "streams", "verify")
RESULTS = Path(__file__).parent / "results"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the pipeline against the raw ceilings of its components and a "
                    "peer, side by side in one run; write JSON and a markdown table.")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--smoke", action="store_true",
                      help="tiny sizes (under a minute): proves the harness works")
    kind.add_argument("--large", action="store_true",
                      help="adds the 1M-row variants (relay 1M, commands on 1M events, "
                           "verify --watch after 1M events)")
    parser.add_argument("--only", default="",
                        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder for <date>.json, <date>.md and latest.md")
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu",
                        help="the embedded Tansu, or real Apache Kafka (fetched from Maven "
                             "Central; needs Java 17+), each beside raw aiokafka on it")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the py-spy profiles (the smoke run never profiles)")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> dict:
    sizes = SIZES["smoke" if args.smoke else "large" if args.large else "default"]
    wanted = [s for s in (args.only.split(",") if args.only else SECTIONS) if s]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(sorted(unknown))}")
    stamp = datetime.now(UTC)
    args.out.mkdir(parents=True, exist_ok=True)
    # Logs and raw profiles stay out of the work tree, and are kept after the run.
    log_dir = Path(tempfile.gettempdir()) / f"cqrs-bench-logs-{stamp:%Y%m%dT%H%M%S}"
    log_dir.mkdir(parents=True, exist_ok=True)
    backends = await Backends.start(keep_logs_in=log_dir, broker=args.broker)
    ctx = Context(sizes=sizes, backends=backends, log_dir=log_dir,
                  profile=not (args.smoke or args.no_profile))
    results: dict = {
        "started_at": stamp.isoformat(timespec="seconds"), "kind": sizes.name,
        "broker_kind": backends.broker_kind,
        "machine": {"cpus": _cpus(), "python": platform.python_version(),
                    "platform": platform.platform()},
        **ctx.describe(), "sections": {},
    }
    ctx.say(f"{sizes.name} run on {backends.write_backend}, {backends.broker_kind} "
            f":{backends.broker.port}, "
            f"SecantusDB :{backends.read_store.port}; logs in {log_dir}")
    try:
        for name in SECTIONS:
            if name not in wanted:
                continue
            module = __import__(f"bench.sections.{name}", fromlist=["run"])
            started = time.monotonic()
            try:
                section = await module.run(ctx)
                section.setdefault("status", "ok")
            except Exception as exc:  # one broken measurement must not lose the others
                ctx.say(f"{name} FAILED: {exc!r}")
                section = {"status": "failed", "error": f"{exc.__class__.__name__}: {exc}",
                           "traceback": traceback.format_exc().splitlines()[-8:]}
            section["seconds"] = round(time.monotonic() - started, 1)
            results["sections"][name] = section
            ctx.say(f"{name} done in {section['seconds']}s ({section['status']})")
        results["sections"]["scaling"] = report.scaling(results["sections"])
        results["sections"]["profiles"] = report.profiles(results["sections"], ctx.profile)
    finally:
        await backends.stop()
    results["seconds"] = round(time.monotonic() - ctx.started, 1)
    results["log_dir"] = str(log_dir)
    return results


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s "
                        "%(message)s")
    # A library may turn its own logger to DEBUG (python-cqrs does): print warnings only,
    # as an application that configured nothing would.
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)
    results = run(_run(args))  # the event loop the shipped processes run on
    name = datetime.fromisoformat(results["started_at"]).strftime("%Y-%m-%d")
    if results["kind"] != "default":
        name += f"-{results['kind']}"
    if args.broker != "tansu":
        name += f"-{args.broker}"
    json_path = args.out / f"{name}.json"
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = report.markdown(results)
    (args.out / f"{name}.md").write_text(table)
    latest = "latest.md" if args.broker == "tansu" else f"latest-{args.broker}.md"
    (args.out / latest).write_text(table)
    print(table)
    print(f"wrote {json_path} and {args.out / (name + '.md')}", file=sys.stderr)
    failed = [k for k, v in results["sections"].items() if v.get("status") == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
