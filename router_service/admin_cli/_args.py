"""`switchboard admin`'s command line. Only argparse here: `router_service.cli.parser` builds it
for `switchboard -h` and the README's checks without loading a client."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["COMMON_DEFAULTS", "add_admin", "parser"]

DESCRIPTION = """Operate a running router from a shell, through its AdminService: what it runs,
its keys, routing statistics, clients, long-running jobs, the response cache. The admin key (a
client key with the `admin` scope) comes from --key-file, SWITCHBOARD_ADMIN_KEY, --key, or the
--config file's edge.admin_router_key; it is never printed. Exit status: 0 done, 1 router
unreachable or another failure, 2 usage, 3 key refused (unauthenticated, or without the admin
scope), 4 not found."""

_INT32_MAX = 2**31 - 1
_LONGEST_S = 86_400.0  # --timeout's bound

# The options every subcommand also takes after its name (`switchboard admin keys --json`), so
# they are defined once, with SUPPRESS: absent unless given, these defaults filled in after.
COMMON_DEFAULTS: dict[str, Any] = {
    "config": None,
    "router": None,
    "key": None,
    "key_file": None,
    "tls": False,
    "tls_ca_file": None,
    "tls_cert_file": None,
    "tls_key_file": None,
    "tls_server_name": None,
    "json": False,
    "timeout": 5.0,
}


def _positive(text: str) -> float:
    """Seconds a call may take: more than 0, at most a day. grpc turns a deadline past its
    clock's range (from ~1e8 s, `inf`) into one already gone, which read as a router that did
    not answer."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= _LONGEST_S:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, at most {_LONGEST_S:.0f}")
    return value


def _count(text: str) -> int:
    """A whole number ListJobsRequest's int32 holds (the router says how many it allows)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= _INT32_MAX:
        raise argparse.ArgumentTypeError(f"must be 0 to {_INT32_MAX}")
    return value


def _model(text: str) -> str:
    """A model to purge: never empty, which the call reads as every model (`purge-cache
    "$MODEL"` with the variable unset must not forget them all)."""
    if not text:
        raise argparse.ArgumentTypeError("a model name (--all for every model's answers)")
    return text


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    where = common.add_argument_group("router")
    where.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="a config file: its edge section's router_target, router_tls and admin_router_key, "
        "as the edge reads them (the options below win)",
    )
    where.add_argument(
        "--router",
        metavar="HOST:PORT",
        help="the router's address (default: edge.router_target's, 127.0.0.1:50051)",
    )
    key = where.add_mutually_exclusive_group()
    key.add_argument("--key", metavar="KEY", help="the admin key (visible in `ps`: prefer these)")
    key.add_argument("--key-file", metavar="FILE", help="a file holding the admin key")
    tls = common.add_argument_group("TLS to the router (as edge.router_tls; any of them: TLS)")
    tls.add_argument("--tls", action="store_true", help="TLS, trusting the system's CAs")
    tls.add_argument("--tls-ca-file", metavar="FILE", help="PEM CA bundle to verify the router")
    tls.add_argument("--tls-cert-file", metavar="FILE", help="client certificate (mutual TLS)")
    tls.add_argument("--tls-key-file", metavar="FILE", help="its private key")
    tls.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="the name the router's certificate must carry, when not the address's host",
    )
    output = common.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="the answer as JSON (proto names)")
    output.add_argument(
        "--timeout",
        type=_positive,
        metavar="S",
        help="seconds to wait for the router (default 5)",
    )
    return common


def add_admin(commands: Any) -> argparse.ArgumentParser:
    """`switchboard admin` among `commands` (the `switchboard` parser's subparsers)."""
    admin = commands.add_parser(
        "admin",
        help="operate a running router: keys, statistics, clients, cache (admin -h)",
        description=DESCRIPTION,
        parents=[_common()],
    )
    return _configure(admin)


def _configure(admin: argparse.ArgumentParser) -> argparse.ArgumentParser:
    common = _common()  # the same options after the subcommand too
    sub = admin.add_subparsers(dest="admin_command", metavar="SUBCOMMAND", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    command("info", "which replica answered and what it runs")
    keys = command("keys", "the upstream keys by fingerprint, with their state")
    keys.add_argument("--provider", metavar="P", help="only this provider's keys")
    toggles = keys.add_subparsers(dest="keys_action", metavar="{disable,enable}")
    disable = toggles.add_parser(
        "disable", help="take a key out of rotation until enabled", parents=[common]
    )
    enable = toggles.add_parser(
        "enable",
        help="put a key back into rotation whole: any disable, its set-asides and cooldowns "
        "for every model (MODEL_DENIED) and its half-open recovery lifted",
        parents=[common],
    )
    for toggle in (disable, enable):
        toggle.add_argument("fingerprint", metavar="FINGERPRINT", help="fp_… as `keys` lists")
        toggle.add_argument(
            "--provider",
            metavar="P",
            default=argparse.SUPPRESS,  # not to hide `keys --provider P disable …`'s
            help="the key's provider (needed only when several have it)",
        )
    disable.add_argument("--reason", help="why, for the router's audit line of the change")
    command("stats", "routing statistics per deployment, groups, sessions per provider")
    command("clients", "each client's limits and what it used: minute, budgets, byte quotas")
    jobs = command("jobs", "batches running (every replica), background responses, realtime")
    jobs.add_argument(
        "--limit", type=_count, default=0, metavar="N", help="at most N of each, newest first"
    )
    cancel = command("cancel-batch", "cancel any client's batch that has not ended (audited)")
    cancel.add_argument("batch_id", metavar="ID", help="batch_… as `jobs` lists it")
    cancel.add_argument("--reason", help="why, for the router's audit line")
    keyed = command("client-keys", "issue, list and revoke client keys at run time")
    _add_client_keys(keyed, common)
    purge = command("purge-cache", "forget the response cache's answers (every replica)")
    which = purge.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "model", nargs="?", type=_model, metavar="MODEL", help="one model name's answers"
    )
    which.add_argument("--all", action="store_true", help="every model's answers")
    return admin


def _add_client_keys(command: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """`client-keys`' own subcommands under `command`."""
    actions = command.add_subparsers(
        dest="client_keys_action", metavar="{issue,list,revoke}", required=True
    )
    issue = actions.add_parser(
        "issue", help="a new key acting as a configured client (printed once)", parents=[common]
    )
    issue.add_argument("client", metavar="CLIENT", help="auth.clients[].name")
    issue.add_argument("--label", help="who or what holds it (shown by list, audit lines)")
    issue.add_argument(
        "--ttl", type=float, metavar="S", help="seconds it lives, at most 100 years (default: ever)"
    )
    listed = actions.add_parser("list", help="the live issued keys, never a key", parents=[common])
    listed.add_argument("--client", metavar="CLIENT", help="only this client's")
    revoke = actions.add_parser(
        "revoke", help="refuse an issued key from now on (every replica)", parents=[common]
    )
    revoke.add_argument("id", metavar="ID", help="ck_… as `list` shows it")


def parser() -> argparse.ArgumentParser:
    """`switchboard admin` alone (its own `main`)."""
    admin = argparse.ArgumentParser(
        prog="switchboard admin", description=DESCRIPTION, parents=[_common()]
    )
    return _configure(admin)
