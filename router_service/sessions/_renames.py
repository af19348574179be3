"""Renames: the providers and deployments a reload renamed (`keys.take_over`: the same keys at
the same endpoint), so that what a conversation had under their old names goes on under the
new ones (`SessionState`): its bans and skips, its sticky deployment, and the places the calls
under way hold in a provider's `max_sessions`."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

__all__ = ["Renames"]


class Renames:
    """New name -> the names it had before (the latest first), of providers and deployments;
    kept by a reload's successor for its own successors (renamed again: every name counts)."""

    def __init__(
        self,
        providers: Mapping[str, tuple[str, ...]] | None = None,
        deployments: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.providers = dict(providers or {})
        self.deployments = dict(deployments or {})
        # A deployment's old name -> its name now (a sticky choice written under the old name).
        self.current = {was: now for now, olds in self.deployments.items() for was in olds}

    def __bool__(self) -> bool:
        return bool(self.providers or self.deployments)

    def after(
        self,
        providers: Mapping[str, str],
        deployments: Iterable[tuple[str, str]],
        *,
        in_use: tuple[Collection[str], Collection[str]] = ((), ()),
    ) -> Renames:
        """These renames, and a reload's (new name -> old name; deployments as (old, new)):
        what the reloaded runtime keeps. A name the reload kept keeps its old names, but for
        those its config gives now (`in_use`: its providers', its deployments'): a provider
        added later under a renamed one's old name is another, its bans and sticky choices
        its own."""
        renamed = {new: old for old, new in deployments}
        return Renames(
            _chained(self.providers, providers, in_use[0]),
            _chained(self.deployments, renamed, in_use[1]),
        )

    def provider_names(self, provider: str) -> tuple[str, ...]:
        """`provider`'s name and the names it had before."""
        return (provider, *self.providers.get(provider, ()))

    def deployment_names(self, deployment: str) -> tuple[str, ...]:
        return (deployment, *self.deployments.get(deployment, ()))


def _chained(
    before: Mapping[str, tuple[str, ...]], renamed: Mapping[str, str], in_use: Collection[str]
) -> dict[str, tuple[str, ...]]:
    chained = {name: olds for name, olds in before.items() if name not in renamed.values()}
    for name, was in renamed.items():
        chained[name] = (was, *before.get(was, ()))
    kept = {name: tuple(old for old in olds if old not in in_use) for name, olds in chained.items()}
    return {name: olds for name, olds in kept.items() if olds}
