"""``python -m bench run [--quick] [--rounds N] [--systems ...] [--scenarios ...] [--out DIR]``
and ``python -m bench profile`` (py-spy on the relay under one scenario).
See docs/performance.md."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import config

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _names(parser, values, known: list[str], what: str) -> list[str]:
    """Names given as several arguments and/or comma separated, in order, validated."""
    if not values:
        return list(known)
    out: list[str] = []
    for group in values:
        for text in group:
            for name in text.split(","):
                if name and name not in out:
                    out.append(name)
    unknown = [n for n in out if n not in known]
    if unknown:
        parser.error(f"unknown {what} {unknown}; known: {', '.join(known)}")
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m bench run|profile ...` (see the module docstring); returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)

    run = sub.add_parser("run", help="run the benchmark (starts every server itself)")
    size = run.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny sizes, 1 round: a smoke test in seconds")
    size.add_argument("--full-size", action="store_true",
                      help="the sizes of the benchmark's definition (fanout 1,000 messages, latency 200/s "
                           "for 10 s); far longer than the default run")
    run.add_argument("--rounds", type=int, help="rounds (default 3, or 1 with --quick)")
    run.add_argument("--systems", nargs="+", action="append",
                     help=f"systems, space or comma separated (default: all: {', '.join(config.SYSTEMS)})")
    run.add_argument("--scenarios", nargs="+", action="append",
                     help=f"scenarios (default: all: {', '.join(config.SCENARIOS)})")
    run.add_argument("--out", default=str(DEFAULT_OUT), help="folder of the JSON and Markdown reports")
    run.add_argument("--set", action="append", metavar="SCENARIO.KEY=N",
                     help="override a size, e.g. --set fanout.messages=200 --set common.quiet_s=3")
    run.add_argument("--window", type=int, help="outstanding publishes per publisher (default 32)")
    run.add_argument("--keep-tmp", action="store_true", help="keep the servers' temp dir (data, logs)")

    prof = sub.add_parser("profile", help="profile a system's Python processes with py-spy under one scenario")
    prof.add_argument("--scenario", default="fanout", choices=[s for s in config.SCENARIOS if s != "idle"])
    prof.add_argument("--system", default="relay", choices=["relay", "channels_tutorial"])
    prof.add_argument("--quick", action="store_true")
    prof.add_argument("--full-size", action="store_true")
    prof.add_argument("--set", action="append", metavar="SCENARIO.KEY=N")
    prof.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    prof.add_argument("--out", default=str(DEFAULT_OUT))

    args = parser.parse_args(argv)
    args.preset = "quick" if args.quick else "full-size" if args.full_size else "default"
    if args.cmd == "run":
        from .runner import run as do_run

        args.systems = _names(parser, args.systems, config.SYSTEMS, "system")
        args.scenarios = _names(parser, args.scenarios, config.SCENARIOS, "scenario")
        if config.BASELINE not in args.systems:
            print(f"note: without {config.BASELINE} there are no ratios", file=sys.stderr)
        result = do_run(args)
        return 0 if result["complete"] else 1
    from .profile import profile

    return profile(args)


if __name__ == "__main__":
    sys.exit(main())
