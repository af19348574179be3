"""`switchboard admin`: parse, connect, make the one call, print it; every failure one line on
stderr with its own exit status, never a traceback."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message

from clients import RouterError
from router_service.admin_cli._args import COMMON_DEFAULTS, parser
from router_service.admin_cli._commands import COMMANDS
from router_service.admin_cli._connect import KEY_VARIABLE, Connection, UsageError, connection

__all__ = ["EXIT_FAILED", "EXIT_NOT_FOUND", "EXIT_REFUSED", "EXIT_USAGE", "run"]

EXIT_FAILED = 1  # the router unreachable, or another failure
EXIT_USAGE = 2  # as argparse's: what was asked cannot be tried
EXIT_REFUSED = 3  # no key, a key it does not know, a key without the admin scope
EXIT_NOT_FOUND = 4  # no such key, provider or model
_PROGRAM = "switchboard admin"


def run(argv: Sequence[str], *, now: Callable[[], float] = time.time) -> int:
    """Run `switchboard admin ARGV`; the exit status. `now` is what deadlines are shown
    against (tests give the router's clock)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its usage error (or the help)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    for name, default in COMMON_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        target = connection(args)
    except UsageError as exc:
        return _fail(EXIT_USAGE, str(exc))
    try:
        with target.client() as client:
            shown = COMMANDS[args.admin_command](client, args, now())
    except RouterError as exc:
        status, message = _explained(exc, target)
        if target.api_key:  # no router message repeats a key; this line never will either
            message = message.replace(target.api_key, "[redacted]")
        return _fail(status, message)
    except KeyboardInterrupt:
        return 130
    try:
        print(_as_json(shown.message) if args.json else shown.text, flush=True)
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        # Python would report the pipe again when it flushes stdout at exit.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - left for the interpreter to close
    return 0


def _as_json(message: Message) -> str:
    """The message as protobuf's JSON mapping, with the proto's own field names, every field
    (zeros too, as a script expects them) and 64-bit integers as numbers for `jq`."""
    return json_format.MessageToJson(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
        indent=2,
    )


def _explained(exc: RouterError, target: Connection) -> tuple[int, str]:
    """The exit status for a failed call and its one line."""
    code, details = exc.grpc_code, exc.details
    said = " ".join(details.message.split())  # one line, whatever came
    if details.bare and code is grpc.StatusCode.UNAVAILABLE:  # gRPC's own: no connection
        return EXIT_FAILED, f"cannot reach the router at {target.address}: {said}"
    if details.bare and code is grpc.StatusCode.DEADLINE_EXCEEDED:
        seconds = f"{target.timeout:g}s"
        return EXIT_FAILED, f"no answer from the router at {target.address} within {seconds}"
    if code is grpc.StatusCode.UNAUTHENTICATED:
        if target.api_key is None:
            give = f"give one with --key-file, {KEY_VARIABLE} or --key"
            return EXIT_REFUSED, f"the router wants an admin key ({give}): {said}"
        return EXIT_REFUSED, f"the router refused the admin key from {target.key_source}: {said}"
    if code is grpc.StatusCode.PERMISSION_DENIED:
        whose = f"the key from {target.key_source}" if target.api_key else "a caller without a key"
        return EXIT_REFUSED, f"the router does not let {whose} do this (scope `admin`): {said}"
    if code is grpc.StatusCode.NOT_FOUND:
        return EXIT_NOT_FOUND, f"not found: {said}"
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return EXIT_USAGE, said
    return EXIT_FAILED, f"the router answered {code.name}: {said}"


def _fail(status: int, message: str) -> int:
    print(f"{_PROGRAM}: {message}", file=sys.stderr)
    return status
