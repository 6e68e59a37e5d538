"""``bench leaderboard build``: result records -> published tables (``--check``: are they up to date?)."""

from __future__ import annotations

import argparse

from dataprep.errors import CelbenchError

from benchmark.leaderboard import build, check


def run_build(args: argparse.Namespace) -> int:
    if args.check:
        problems = check(args.results, args.out)
        if problems:
            raise CelbenchError(f"{len(problems)} leaderboard file(s) out of date: {'; '.join(problems)}")
        if not args.quiet:
            print(f"{args.out}: up to date with {args.results}")
        return 0
    written = build(args.results, args.out)
    if not args.quiet:
        for path in written:
            print(f"wrote {path}")
    return 0


def add_commands(commands) -> None:
    group = commands.group("leaderboard", "build the published leaderboards from result records")
    p = group.add("build", "write leaderboards/<protocol>.md, .csv, .html and plots from result records", run_build)
    p.add_argument("--results", default="leaderboards/results", help="folder of result records (searched recursively)")
    p.add_argument("--out", default="leaderboards", help="output folder (default leaderboards)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; fail if the committed tables differ from what the records produce")
