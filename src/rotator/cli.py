"""``rotator``: the local demo and the local AWS endpoint.

rotator demo                       a real rotation against embedded databases
rotator migrate SECRET [--dry-run]  what switching from AWS's rotation functions will do
rotator status SECRET               versions, labels, last/next rotation, executions, next steps
rotator doctor SECRET [--repair [--yes]]
                                   stuck labels, logins (through the stack's probe), tags;
                                   --repair fixes labels only, after confirmation
rotator plan SECRET                 a dry run: schema, TLS, logins, privileges, statements
rotator graph [--machine M] [--format mermaid|dot|svg|png]
                                   the state machines drawn from their ASL
rotator local serve [--port P] [--json] [--parameter NAME=VALUE] [--console [--console-port P]]
                                   the template's stack on a loopback endpoint; prints one
                                   ready line with the endpoint and the key pair to sign with
                                   (and, with --console, the URL of a local web console)
Exit status: 0 on success, 1 when the command fails (one line on stderr; --verbose or
ROTATOR_DEBUG=1 for the traceback), 2 for usage errors; migrate, status, doctor and plan exit
3 when they find something to fix.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rotator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="rotate real database passwords through the whole stack"
    )
    demo.add_argument(
        "--engine",
        action="append",
        choices=["postgres", "mariadb", "iam", "redis"],
        help="section(s) to run (repeatable; default: all, skipping servers not installed)",
    )

    migrate = commands.add_parser(
        "migrate",
        help="check (and switch) a secret rotated by AWS's own rotation functions",
        description="Reports what the first rotation through this stack's router will do: "
        "proceed, adopt or clear an unfinished rotation, or refuse (and why). With --dry-run "
        "nothing changes; without it, a secret with no blocking finding is switched to the "
        "router (rotate-secret --no-rotate-immediately). Exit status: 0 ready, 3 blocked, "
        "1 error, 2 usage.",
    )
    migrate.add_argument("secret", help="secret name or ARN")
    migrate.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    migrate.add_argument("--stack-name", default="rotator", help="the stack (default rotator)")
    migrate.add_argument("--router-arn", help="the router's ARN (default: the stack's output)")
    _aws_options(migrate)

    operator_help = {
        "status": (
            "versions, labels, last and next rotation, this secret's executions",
            "Shows the secret's versions and staging labels, its last and next rotation, and "
            "its Step Functions executions (step, status, error class, console URL); for a "
            "stuck rotation, what to do next. Reads metadata only. Exit status: 0 healthy, "
            "3 something to fix, 1 error, 2 usage.",
        ),
        "doctor": (
            "find stuck labels, failing logins, missing tags; --repair fixes labels",
            "Finds a stuck AWSPENDING, asks the stack's read-only probe which versions log in, "
            "checks the rotation settings and the tags the stack's roles need. --repair changes "
            "staging labels only (lists the changes, then asks; --yes skips the question). "
            "Exit status: 0 nothing to fix (or all repaired), 3 something to fix, 1 error, "
            "2 usage.",
        ),
        "plan": (
            "dry run: schema, TLS, logins, privileges, the statements a rotation would run",
            "Asks the stack's read-only probe what a rotation would do: schema, reachability "
            "and TLS, login with AWSCURRENT (and the master), privileges per strategy, the "
            "statements setSecret would run (values redacted), the clone's differences for "
            "alternating users. Changes nothing. Exit status: 0 the rotation can proceed, "
            "3 it would fail, 1 error, 2 usage.",
        ),
    }
    for name, (summary, description) in operator_help.items():
        command = commands.add_parser(name, help=summary, description=description)
        command.add_argument("secret", help="secret name or ARN")
        command.add_argument("--stack-name", default="rotator", help="the stack (default rotator)")
        if name == "doctor":
            command.add_argument(
                "--repair", action="store_true", help="fix what label changes can fix"
            )
            command.add_argument(
                "--yes", action="store_true", help="with --repair: do not ask before changing"
            )
        _aws_options(command)

    graph = commands.add_parser(
        "graph",
        help="draw the state machines from their ASL",
        description="Renders statemachine/<machine>.asl.json: every state, every transition "
        "(Next, Default, Choice rules, Catch as dashed edges). png needs Graphviz's dot; svg "
        "uses it when installed, else the local console's own layout.",
    )
    graph.add_argument("--machine", choices=["rotation", "retirement"], default="rotation")
    graph.add_argument("--format", choices=["mermaid", "dot", "svg", "png"], default="mermaid")
    graph.add_argument("--output", help="file to write (default: standard output)")

    local = commands.add_parser("local", help="the local runtime")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    serve = local_commands.add_parser("serve", help="serve the stack on a loopback AWS endpoint")
    serve.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)"
    )
    serve.add_argument("--json", action="store_true", help="print the ready line as JSON only")
    serve.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override (repeatable)",
    )
    serve.add_argument(
        "--console",
        action="store_true",
        help="also serve a local web console (secrets, rotations, state graph, history) on "
        "another loopback port; its URL, with a token minted for the run, is in the ready line",
    )
    serve.add_argument(
        "--console-port", type=int, default=0, help="the console's port (default: a free one)"
    )

    args = parser.parse_args(argv)
    if args.command == "demo":
        from rotator.demo import run_demo

        return run_demo(args.engine)
    if args.command == "migrate":
        return _guarded(args, _migrate)
    if args.command in ("status", "doctor", "plan"):
        return _guarded(args, _OPERATOR_COMMANDS[args.command])
    if args.command == "graph":
        return _guarded(args, _graph)
    from rotator.serve_guard import is_loopback

    if not is_loopback(args.host):
        parser.error(f"--host {args.host!r}: serve binds loopback addresses only")
    return _serve(
        args.port,
        args.host,
        args.json,
        _parse_parameters(parser, args.parameter),
        console_port=args.console_port if args.console else None,
    )


def _aws_options(command: argparse.ArgumentParser) -> None:
    """Where the AWS APIs are: AWS itself by default, or rotator local serve."""
    command.add_argument("--endpoint-url", help="e.g. rotator local serve's endpoint")
    command.add_argument("--region", help="AWS region (default: your AWS configuration)")
    command.add_argument("--json", action="store_true", help="machine-readable output")
    command.add_argument("--verbose", action="store_true", help="tracebacks on errors")


def _clients(args: argparse.Namespace, *services: str) -> list[Any]:
    import boto3

    session = boto3.session.Session(region_name=args.region)
    return [session.client(s, endpoint_url=args.endpoint_url) for s in services]  # type: ignore[call-overload]


def _guarded(args: argparse.Namespace, command: Any) -> int:
    """Run an operator command: one readable line on failure (--verbose for the traceback)."""
    try:
        return int(command(args))
    except Exception as exc:
        if getattr(args, "verbose", False) or os.environ.get("ROTATOR_DEBUG"):
            raise
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        return _fail(f"{code or type(exc).__name__}: {exc}" if not code else str(exc))


def _outputs(args: argparse.Namespace, cloudformation: Any) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=args.stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def _router_arn(args: argparse.Namespace, cloudformation: Any) -> str | None:
    if args.router_arn:
        return str(args.router_arn)
    return _outputs(args, cloudformation).get("RouterFunctionArn")


def _stack(args: argparse.Namespace, cloudformation: Any) -> Any:
    from rotator.operator_commands import Stack

    return Stack.from_outputs(args.stack_name, _outputs(args, cloudformation))


def _region(client: Any) -> str:
    return str(client.meta.region_name)


def _status(args: argparse.Namespace) -> int:
    from rotator.operator_commands import status, status_text

    sm, sfn, cfn = _clients(args, "secretsmanager", "stepfunctions", "cloudformation")
    report = status(sm, sfn, _stack(args, cfn), args.secret, _region(sm))
    print(report.to_json() if args.json else status_text(report))
    return 3 if report.problems else 0


def _doctor(args: argparse.Namespace) -> int:
    from rotator.operator_commands import apply_repairs, confirm, doctor

    sm, sfn, iam, lam, cfn = _clients(
        args, "secretsmanager", "stepfunctions", "iam", "lambda", "cloudformation"
    )
    report, repairs = doctor(sm, sfn, iam, lam, _stack(args, cfn), args.secret, _region(sm))
    repaired = False
    if args.json:
        print(report.to_json())
    else:
        print(report.text())
        if repairs:
            verb = "will change" if args.repair else "would change (run with --repair)"
            print(f"  repair {verb}:")
            print("\n".join(f"    {r.text()}" for r in repairs))
    if args.repair and repairs:
        if args.yes or (not args.json and confirm(input, len(repairs))):
            apply_repairs(sm, repairs)
            repaired = True
            if not args.json:
                print(f"  repaired: {len(repairs)} label change(s) applied")
        elif not args.json:
            print("  nothing changed")
    unrepaired = [f for f in report.findings if f.level == "problem"]
    if repaired:
        unrepaired = [f for f in unrepaired if f.subject != "AWSPENDING"]
    return 3 if unrepaired else 0


def _plan(args: argparse.Namespace) -> int:
    from rotator.operator_commands import plan, plan_text

    lam, cfn = _clients(args, "lambda", "cloudformation")
    report = plan(lam, _stack(args, cfn), args.secret)
    print(report.to_json() if args.json else plan_text(report))
    return 3 if report.problems else 0


_OPERATOR_COMMANDS = {"status": _status, "doctor": _doctor, "plan": _plan}


def _migrate(args: argparse.Namespace) -> int:
    from rotator.migrate import plan

    sm, iam, cfn = _clients(args, "secretsmanager", "iam", "cloudformation")
    router = _router_arn(args, cfn)
    result = plan(sm, iam, args.secret, stack_name=args.stack_name, router_arn=router)
    print(result.to_json() if args.json else result.text())
    if result.blocked:
        return 3
    if not args.dry_run and router:
        sm.rotate_secret(SecretId=args.secret, RotationLambdaARN=router, RotateImmediately=False)
        if not args.json:
            print(f"switched {result.secret} to {router}; its next rotation runs through it")
    return 0


#: the console's drawing styles, for an SVG that stands alone
_STANDALONE_SVG_STYLE = (
    "<style>.edge{fill:none;stroke:#a7adb5;stroke-width:1.2}"
    ".edge.catch{stroke:#d9a0a0;stroke-dasharray:4 3}marker path{fill:#777}"
    ".state rect{fill:#fff;stroke:#8a939e}.state.in-branch rect{stroke-dasharray:3 2}"
    ".state text{font:11px sans-serif;fill:#16191f}</style>"
)


def _graph(args: argparse.Namespace) -> int:
    import shutil

    from rotator.graph import render

    if args.format == "svg" and shutil.which("dot") is None:
        # without Graphviz, the local console's own layout draws it
        from rotator.console.layout import machine_layout, svg

        drawing = svg(machine_layout(args.machine))
        head, _, rest = drawing.partition(">")
        picture = f"{head}>{_STANDALONE_SVG_STYLE}{rest}".encode()
    else:
        picture = render(args.machine, args.format)
    if args.output:
        with open(args.output, "wb") as handle:
            handle.write(picture)
    else:
        sys.stdout.buffer.write(picture)
        sys.stdout.flush()
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("secret-rotator")
    except PackageNotFoundError:
        return "unknown"


def _fail(message: str) -> int:
    """One readable line on stderr, exit status 1 (ROTATOR_DEBUG=1 shows the traceback)."""
    print(f"rotator: {message}", file=sys.stderr, flush=True)
    return 1


def _parse_parameters(parser: argparse.ArgumentParser, pairs: list[str]) -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            parser.error(f"--parameter expects NAME=VALUE, got {pair!r}")
        parameters[name] = value
    return parameters


def _serve(
    port: int,
    host: str,
    as_json: bool,
    parameters: dict[str, str],
    console_port: int | None = None,
) -> int:
    from rotator.functions import redirect_function_logs
    from rotator.local import LocalRuntime

    stop = threading.Event()

    def request_stop(*_: Any) -> None:
        stop.set()
        raise KeyboardInterrupt  # also interrupts a start that is still deploying

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    ready_out = sys.stdout
    try:
        # Function logs and metrics go to stderr, so stdout carries only the ready line; on a
        # terminal, stderr shows a spinner while the stack deploys (nothing otherwise).
        from rotator.console.progress import Progress

        progress = Progress(sys.stderr)
        with contextlib.redirect_stdout(sys.stderr), contextlib.ExitStack() as stack:
            with progress.waiting("deploying template.yaml on moto"):
                runtime = stack.enter_context(LocalRuntime(parameter_overrides=parameters))
            redirect_function_logs(sys.stderr)
            with runtime.serve(port=port, host=host), contextlib.ExitStack() as console:
                ready: dict[str, Any] = runtime.describe()
                if console_port is not None:
                    from rotator.console.app import serve_console

                    ready["console_url"] = console.enter_context(
                        serve_console(runtime, host=host, port=console_port)
                    )
                text = json.dumps(ready) if as_json else _ready_text(ready)
                print(text, file=ready_out, flush=True)
                if runtime.host is not None:
                    runtime.host.after_invoke.append(_report_rotation_step)
                stop.wait()
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        if os.environ.get("ROTATOR_DEBUG"):
            raise
        if exc.errno == errno.EADDRINUSE:
            return _fail(f"port {port} on {host} is already in use; choose another with --port")
        return _fail(f"cannot serve on {host}:{port}: {exc.strerror or type(exc).__name__}")
    except Exception as exc:  # a bad --parameter, a template the runtime refuses, ...
        if os.environ.get("ROTATOR_DEBUG"):
            raise
        return _fail(f"{type(exc).__name__}: {exc}")
    return 0


def _report_rotation_step(invocation: Any) -> None:
    from rotator.functions import rotation_step

    step = rotation_step(invocation)
    if step is not None:
        print(json.dumps({"rotation_step": step}), file=sys.stderr, flush=True)


def _ready_text(ready: dict[str, Any]) -> str:
    """One line: what a client needs (the JSON form has the state machines too)."""
    return (
        f"ready: {ready['endpoint_url']} region {ready['region']}"
        f" AWS_ACCESS_KEY_ID={ready['aws_access_key_id']}"
        f" AWS_SECRET_ACCESS_KEY={ready['aws_secret_access_key']}"
        f" router {ready['router_function_arn']} alerts {ready['alert_queue_url']}"
        + (f" console {ready['console_url']}" if "console_url" in ready else "")
    )


if __name__ == "__main__":
    sys.exit(main())
