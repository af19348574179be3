"""Microsoft Entra ID service principals made for tests: the key JSON an `azure` provider is
configured with, and its registration with the fake upstream's token endpoint, which then
grants it tokens recorded under the principal's label."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

from router_service.fake_upstream import FakeUpstream

__all__ = ["TENANT", "ServicePrincipalKey", "entra_keys", "entra_settings", "service_principal"]

TENANT = "2f4a9f3c-7a1d-4c6e-9b7e-5d0c1e8a6b42"


@dataclass(frozen=True)
class ServicePrincipalKey:
    label: str
    tenant_id: str
    client_id: str
    client_secret: str

    def key_json(self) -> str:
        fields = {
            "tenant_id": self.tenant_id,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        return orjson.dumps(fields).decode()

    def register(self, fake: FakeUpstream) -> None:
        fake.state.entra.register(self.tenant_id, self.client_id, self.client_secret, self.label)


def service_principal(label: str) -> ServicePrincipalKey:
    """A principal of TENANT; its ids and secret follow from the label (a secret shaped as
    Entra's are: 40 characters with a `~`)."""
    client_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"switchboard-test/{label}"))
    secret = f"Xy8Q~{uuid.uuid5(uuid.NAMESPACE_DNS, label).hex[:35]}"
    return ServicePrincipalKey(label, TENANT, client_id, secret)


def entra_keys(fake: FakeUpstream, labels: list[str]) -> list[str]:
    """Service principal keys for `labels`, trusted by `fake`'s token endpoint: the fake
    records the calls made with their tokens under the labels."""
    principals = [service_principal(label) for label in labels]
    for principal in principals:
        principal.register(fake)
    return [principal.key_json() for principal in principals]


def entra_settings(fake: FakeUpstream) -> dict[str, str]:
    """An azure provider's settings that send its token requests to `fake`."""
    return {"authority_host": fake.url}
