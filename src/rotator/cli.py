"""``rotator``: the local demo and the local AWS endpoint.

rotator demo                       a real rotation against embedded databases
rotator local serve [--port P] [--json]
                                   the template's stack on a loopback endpoint
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rotator", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="rotate real database passwords through the whole stack"
    )
    demo.add_argument(
        "--engine",
        action="append",
        choices=["postgres", "mariadb"],
        help="engine(s) to demo (default: every engine whose server binary is installed)",
    )

    local = commands.add_parser("local", help="the local runtime")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    serve = local_commands.add_parser("serve", help="serve the stack on a loopback AWS endpoint")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--json", action="store_true", help="print the ready line as JSON only")
    serve.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override (repeatable)",
    )

    args = parser.parse_args(argv)
    if args.command == "demo":
        from rotator.demo import run_demo

        return run_demo(args.engine)
    return _serve(args.port, args.host, args.json, _parse_parameters(parser, args.parameter))


def _parse_parameters(parser: argparse.ArgumentParser, pairs: list[str]) -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            parser.error(f"--parameter expects NAME=VALUE, got {pair!r}")
        parameters[name] = value
    return parameters


def _serve(port: int, host: str, as_json: bool, parameters: dict[str, str]) -> int:
    from rotator.functions import redirect_function_logs
    from rotator.local import LocalRuntime

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    ready_out = sys.stdout
    # Function logs and metrics go to stderr, so stdout carries only the ready line.
    with (
        contextlib.redirect_stdout(sys.stderr),
        LocalRuntime(parameter_overrides=parameters) as runtime,
    ):
        redirect_function_logs(sys.stderr)
        with runtime.serve(port=port, host=host) as endpoint:
            ready: dict[str, Any] = {"endpoint_url": endpoint, **runtime.describe()}
            if as_json:
                print(json.dumps(ready), file=ready_out, flush=True)
            else:
                print(_ready_text(ready), file=ready_out, flush=True)
            if runtime.host is not None:
                runtime.host.after_invoke.append(_report_rotation_step)
            stop.wait()
    return 0


def _report_rotation_step(invocation: Any) -> None:
    from rotator.functions import rotation_step

    step = rotation_step(invocation)
    if step is not None:
        print(json.dumps({"rotation_step": step}), file=sys.stderr, flush=True)


def _ready_text(ready: dict[str, Any]) -> str:
    machines = "\n".join(f"    {k}: {v}" for k, v in ready["state_machine_arns"].items())
    return (
        f"Local AWS endpoint ready: {ready['endpoint_url']}\n"
        f"  router function:  {ready['router_function_arn']}\n"
        f"  state machines:\n{machines}\n"
        f"  alert queue:      {ready['alert_queue_url']}\n"
        f"Use it with: aws --endpoint-url {ready['endpoint_url']} --region {ready['region']} ...\n"
        f"  (any access key works). Ctrl-C to stop."
    )


if __name__ == "__main__":
    sys.exit(main())
