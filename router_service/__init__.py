"""Switchboard's router: the gRPC RouterService that owns every routing decision."""

__all__: list[str] = []
