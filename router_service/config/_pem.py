"""Certificate, key and CA files that may be rewritten while a process uses them.

Certificates are short-lived where they are managed well: cert-manager renews at two thirds of
their life and rewrites the mounted secret; Vault agents and certbot rewrite files too. Both
ends of Switchboard's gRPC hop hold such files (the router's `server.tls`, the edge's
`edge.router_tls`), and so does the edge's HTTPS port (`edge.tls`); each reads them at start and
again while it runs: `PemFiles.reread()` says when
their bytes changed and the new set checks out. The bytes, not mtimes, decide: a rewrite of the
same size within the file system's clock tick would look unchanged, and the files are a few KiB.
A set caught half-written (a new certificate beside the old key, a file cut short or missing
for a moment) is refused with one warning and tried again once the files change again.
"""

from __future__ import annotations

import datetime
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from router_service.config._serving import RouterTLSConfig, ServerTLSConfig
from router_service.errors import ConfigError

__all__ = ["PemFiles", "PemSet", "not_after", "tls_problems"]


@dataclass(frozen=True)
class PemSet:
    """The files' bytes; None where no file is configured."""

    cert: bytes | None
    key: bytes | None
    ca: bytes | None

    @property
    def expires_at(self) -> float | None:
        """When the certificate (the chain's first) stops being valid, as a Unix time."""
        return None if self.cert is None else not_after(self.cert)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """A gRPC client's TLS with these files (`edge.router_tls`, `switchboard admin`'s
        `--tls-*`): the CA bundle it trusts (unset: the system roots), and the certificate it
        presents for mutual TLS when one is set."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


class PemFiles:
    """One certificate (with its key) and one CA bundle, each optional, named by the settings
    they come from (`{section}.cert_file`…) in errors. Reading them at construction raises
    `ConfigError` when they do not load; `current` is the set last taken."""

    def __init__(
        self,
        section: str,
        *,
        cert_file: str | None,
        key_file: str | None,
        ca_file: str | None,
        ca_setting: str = "ca_file",
        log: logging.Logger,
    ) -> None:
        self._section = section
        self._paths = {"cert_file": cert_file, "key_file": key_file, ca_setting: ca_file}
        self._ca_setting = ca_setting
        self._log = log
        self.current = self._checked(self._read())
        # What was last refused: a set that did not check out, or why the files did not read.
        self._refused: PemSet | str | None = None

    @classmethod
    def served(cls, section: str, tls: ServerTLSConfig, log: logging.Logger) -> PemFiles:
        """The files of a port that serves TLS (`server.tls`, `edge.tls`)."""
        return cls(
            section,
            cert_file=tls.cert_file,
            key_file=tls.key_file,
            ca_file=tls.client_ca_file,
            ca_setting="client_ca_file",
            log=log,
        )

    @classmethod
    def client(cls, section: str, tls: RouterTLSConfig, log: logging.Logger) -> PemFiles:
        """The files a client presents and trusts (`edge.router_tls`)."""
        return cls(
            section, cert_file=tls.cert_file, key_file=tls.key_file, ca_file=tls.ca_file, log=log
        )

    def reread(self) -> PemSet | None:
        """The files' new set when they changed and it checks out (it becomes `current`), else
        None. Not thread-safe: a caller on several threads holds its own lock."""
        try:
            found = self._read()
        except ConfigError as exc:
            self._refuse(str(exc), exc)
            return None
        if found == self.current or found == self._refused:
            return None
        try:
            self.current = self._checked(found)
        except ConfigError as exc:
            self._refuse(found, exc)
            return None
        self._refused = None
        return self.current

    def _refuse(self, refused: PemSet | str, exc: ConfigError) -> None:
        if refused != self._refused:  # once per refused content (or missing file), not per look
            self._log.warning(
                "%s: new files not taken (still using the previous ones): %s", self._section, exc
            )
        self._refused = refused

    def _read(self) -> PemSet:
        key = self._bytes("key_file")  # first: a pair that cannot be read is named by its key
        return PemSet(self._bytes("cert_file"), key, self._bytes(self._ca_setting))

    def _bytes(self, name: str) -> bytes | None:
        path = self._paths[name]
        if path is None:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            message = f"{self._section}.{name}: cannot read {path}: {exc.strerror}"
            raise ConfigError(message) from exc

    def _checked(self, found: PemSet) -> PemSet:
        """`found`, checked the way a handshake would use it: the key matches the certificate
        and the CA bundle parses. The check reads the files again, so they are compared with
        `found` after it: a file rewritten in between is not taken half-checked."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        cert, key, ca = (self._paths[n] for n in ("cert_file", "key_file", self._ca_setting))
        if cert is not None and key is not None:
            try:
                context.load_cert_chain(cert, key)
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(
                    f"{self._section}: {cert} and {key} are not a certificate and its key: {exc}"
                ) from exc
        if ca is not None:
            try:
                context.load_verify_locations(ca)
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError(
                    f"{self._section}.{self._ca_setting}: {ca} is not a PEM CA bundle: {exc}"
                ) from exc
        if self._read() != found:
            raise ConfigError(f"{self._section}: the files changed while they were read")
        return found


def tls_problems(
    sections: Mapping[str, ServerTLSConfig | RouterTLSConfig | None], log: logging.Logger
) -> list[str]:
    """Why each section's files do not load as the process that uses them loads them at
    start (`PemFiles`), one line per section; empty when they all do (`check-config`)."""
    problems: list[str] = []
    for section, tls in sections.items():
        try:
            if isinstance(tls, ServerTLSConfig):
                PemFiles.served(section, tls, log)
            elif tls is not None:
                PemFiles.client(section, tls, log)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


_BEGIN, _END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
_UTC_TIME, _GENERALIZED_TIME, _VERSION = 0x17, 0x18, 0xA0


def not_after(pem: bytes) -> float | None:
    """The first certificate's `notAfter` as a Unix time; None when it does not parse. The
    standard library checks certificates but does not read them, so this walks the DER (RFC
    5280 §4.1: tbsCertificate's version, serial, signature algorithm, issuer, then validity)."""
    try:
        text = pem.decode("ascii")
        begin = text.index(_BEGIN)
        der = ssl.PEM_cert_to_DER_cert(text[begin : text.index(_END, begin) + len(_END)])
        tbs = _content(der, _content(der, 0)[0])[0]  # Certificate, then tbsCertificate
        tag, start, end = _tlv(der, tbs)
        at = end if tag == _VERSION else tbs
        for _ in range(3):  # serialNumber, signature, issuer
            at = _tlv(der, at)[2]
        validity = _content(der, at)[0]
        tag, start, end = _tlv(der, _tlv(der, validity)[2])  # past notBefore
        stamp = der[start:end].decode("ascii")
        if tag == _UTC_TIME:  # two-digit years: 50–99 are 19xx, 00–49 20xx (RFC 5280)
            stamp = ("19" if int(stamp[:2]) >= 50 else "20") + stamp
        elif tag != _GENERALIZED_TIME:
            return None
        moment = datetime.datetime.strptime(stamp, "%Y%m%d%H%M%SZ")
        return moment.replace(tzinfo=datetime.UTC).timestamp()
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def _tlv(der: bytes, at: int) -> tuple[int, int, int]:
    """One DER element at `at`: its tag, where its content starts, where it ends."""
    tag, length = der[at], der[at + 1]
    at += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[at : at + size], "big")
        at += size
    if at + length > len(der):
        raise ValueError("a DER element runs past the end")
    return tag, at, at + length


def _content(der: bytes, at: int) -> tuple[int, int]:
    """Where the element at `at` keeps its content: (start, end)."""
    _, start, end = _tlv(der, at)
    return start, end
