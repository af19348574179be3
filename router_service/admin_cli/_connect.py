"""Where `switchboard admin` reaches the router, with which TLS, and which key it presents.

As the edge does: its config section (`edge.router_target`, `edge.router_tls`,
`edge.admin_router_key`) read by the same loader, the TLS files read and checked by the same
`PemFiles` into the same credentials, and the same client (`clients.SyncRouterClient`, whose
channel options, retries and error mapping are `RouterClient`'s).
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from clients import SyncRouterClient, checked_target
from router_service.config import EdgeConfig, PemFiles, RouterTLSConfig, load_edge_config
from router_service.errors import ConfigError

__all__ = ["KEY_VARIABLE", "Connection", "UsageError", "connection"]

KEY_VARIABLE = "SWITCHBOARD_ADMIN_KEY"
log = logging.getLogger("switchboard.admin")


class UsageError(Exception):
    """What was asked cannot be tried (exit status 2): a file that does not read, options that
    do not go together. The message names the option, never a key."""


@dataclass(frozen=True)
class Connection:
    """Everything needed to open the client; `api_key` is never shown (not in its repr)."""

    target: str | list[str]
    credentials: grpc.ChannelCredentials | None
    options: tuple[tuple[str, Any], ...]
    api_key: str | None
    key_source: str  # where the key came from ("--key-file", …), or "" without one
    timeout: float

    def __repr__(self) -> str:
        return f"Connection(target={self.target!r}, key from {self.key_source or 'nowhere'})"

    @property
    def address(self) -> str:
        """The target as an operator typed it, for messages."""
        return self.target if isinstance(self.target, str) else ",".join(self.target)

    def client(self) -> SyncRouterClient:
        return SyncRouterClient(
            self.target,
            credentials=self.credentials,
            api_key=self.api_key,
            default_timeout=self.timeout,
            options=self.options,
        )


def connection(args: argparse.Namespace) -> Connection:
    """The connection `args` ask for; `UsageError` when a file or an option does not do."""
    edge = _edge_section(args.config)
    target = args.router or edge.router_target
    if args.router is not None:  # given, if empty (`--router "$UNSET"`): not the default's
        try:
            checked_target(args.router)
        except ValueError as exc:
            raise UsageError(f"--router: {exc}") from None
    tls, section = _tls(args, edge)
    credentials = None
    if tls is not None:
        try:
            credentials = PemFiles.client(section, tls, log).current.channel_credentials()
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
    # No retries of calls no router took (the client's policy, for a router restarting): from a
    # shell, "connection refused" at once says more than the same after the whole --timeout.
    options: tuple[tuple[str, Any], ...] = (("grpc.enable_retries", 0),)
    if args.tls_server_name:
        options += (("grpc.ssl_target_name_override", args.tls_server_name),)
    key, source = _admin_key(args, edge)
    return Connection(target, credentials, options, key, source, args.timeout)


def _edge_section(path: str | None) -> EdgeConfig:
    """The config file's `edge:` section (only it and `telemetry:` are read, as by the edge);
    without a file, the edge's defaults."""
    if path is None:
        return EdgeConfig()
    try:
        return load_edge_config(path).edge
    except ConfigError as exc:
        # The loader names file, line and setting, never a value.
        raise UsageError(f"invalid configuration:\n{exc}") from None


def _tls(args: argparse.Namespace, edge: EdgeConfig) -> tuple[RouterTLSConfig | None, str]:
    """The TLS options given, else the file's `edge.router_tls`; and how errors name them."""
    files = (args.tls_ca_file, args.tls_cert_file, args.tls_key_file)
    if not (args.tls or args.tls_server_name or any(files)):
        return edge.router_tls, "edge.router_tls"
    if (args.tls_cert_file is None) != (args.tls_key_file is None):
        raise UsageError("--tls-cert-file and --tls-key-file go together (mutual TLS)")
    ca, cert, key = (str(Path(f).expanduser()) if f else None for f in files)
    tls = RouterTLSConfig(ca_file=ca, cert_file=cert, key_file=key, reload_poll_s=None)
    return tls, "tls"  # errors name `tls.ca_file`…: the --tls-ca-file option


def _admin_key(args: argparse.Namespace, edge: EdgeConfig) -> tuple[str | None, str]:
    """The key and where it came from: --key, --key-file, the environment, the config file."""
    if args.key is not None and args.key_file is not None:
        raise UsageError("--key and --key-file: give one")
    if args.key is not None:
        return _checked(args.key, "--key"), "--key"
    if args.key_file is not None:
        try:
            text = Path(args.key_file).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(f"--key-file: cannot read {args.key_file}: {reason}") from None
        return _checked(text.strip(), "--key-file"), "--key-file"
    if found := os.environ.get(KEY_VARIABLE):
        return _checked(found.strip(), KEY_VARIABLE), KEY_VARIABLE
    if edge.admin_router_key is not None:
        return edge.admin_router_key.get_secret_value(), "edge.admin_router_key"
    return None, ""


def _checked(key: str, source: str) -> str:
    # gRPC metadata takes printable ASCII only; a key with a line break in it would otherwise
    # fail inside grpc with a message that quotes the header.
    if not key or not key.isprintable() or not key.isascii():
        raise UsageError(f"{source}: the admin key is empty or not one line of printable ASCII")
    return key
