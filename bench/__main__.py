"""``python -m bench [--quick] [--only NAME ...] [--label LABEL] [--no-parse-cache]``.

Runs the benchmarks (latency, client impact, cold start, fleet), prints a table per benchmark, writes
``bench/results/<name>.json`` (``bench/results/<LABEL>/`` with ``--label``; ``bench/results/dev/``
is ignored by git) and PNG plots beside them when matplotlib is installed. ``--no-parse-cache`` measures the local runtime as it was before
``rotator.aws_local.patches.definition_cache`` (moto parsing the definition at every execution).
"""

from __future__ import annotations

import argparse
import contextlib
import time

from bench.harness import (
    COMBOS,
    Output,
    Servers,
    available_combos,
    local_stack,
    quiet_functions,
    say,
)

BENCHMARKS = ("latency", "client", "cold", "fleet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", action="append", choices=BENCHMARKS, help="run only these (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="few rotations: a smoke run")
    parser.add_argument(
        "--rotations", type=int, default=None, help="rotations per strategy/engine (default 20)"
    )
    parser.add_argument(
        "--label", default=None, help="write to bench/results/LABEL/ (e.g. baseline)"
    )
    parser.add_argument(
        "--no-parse-cache", action="store_true", help="the local runtime without the parse cache"
    )
    parser.add_argument(
        "--combo", action="append", default=None, help="strategy/engine to run (repeatable)"
    )
    args = parser.parse_args(argv)
    chosen = args.only or list(BENCHMARKS)
    rotations = args.rotations or (3 if args.quick else 20)
    out = Output.make(args.label, parse_cache=not args.no_parse_cache)
    wanted = [c for c in COMBOS if not args.combo or f"{c[0]}/{c[1]}" in args.combo]
    began = time.monotonic()
    say(f"Benchmarks {', '.join(chosen)}; results in {out.directory}")
    with contextlib.ExitStack() as stack:
        servers = Servers(stack)
        combos = available_combos(servers, wanted)
        needs_stack = {"latency", "client", "fleet"} & set(chosen)
        if needs_stack:
            with quiet_functions(), local_stack(servers, parse_cache=not args.no_parse_cache) as rt:
                if "latency" in chosen:
                    from bench import latency

                    latency.run(rt, servers, combos, rotations, out)
                if "client" in chosen:
                    from bench import client_impact

                    client_impact.run(rt, servers, combos, rotations, out, quick=args.quick)
                if "fleet" in chosen:
                    from bench import fleet

                    fleet.run(rt, servers, combos, out, quick=args.quick)
        if "cold" in chosen:
            from bench import cold_start

            with quiet_functions():
                cold_start.run(servers, out, repeats=3 if args.quick else 5)
    say(f"\nAll benchmarks done in {time.monotonic() - began:.0f} s; results in {out.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
