"""`${VAR}` in config values, read from the environment with the shell's meaning:

- `${VAR}`: the variable's value (empty when it is set but empty); unset is an error.
- `${VAR:-default}`: the default when VAR is unset *or empty*.
- `${VAR-default}`: the default only when VAR is unset.
- `$${...}`: a literal `${...}`.

The shell's other forms (`${VAR:?message}`, `${VAR:+alt}`, a nested default, one never closed,
`${VAR:0:8}`, `${VAR#prefix}`, `${#VAR}`…) are errors: left as written they would be the value,
a key sent upstream as `${OPENAI_KEY:?required}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["Malformed", "Unset", "interpolate"]

# One `${…}` this reads (a default holds no `${`: nesting is not read), or an escaped `$${`, or
# (group `other`) the shell's other forms: `${VAR` then `?`, `+`, `=` (with or without `:`), a
# default that nests or is never closed, the end, a substring's `:` and digit or space, a trim's
# `#` `%`, a replace's `/`, a case's `^` `,`, a transform's `@`; `${#VAR}` and `${!VAR}`. Any
# other `${` is text: log4j's `${jndi:`, `${env:X}`, Spring's `${a.b}` in a guardrail's pattern.
_ENV_PATTERN = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?-)(?P<default>(?:(?!\$\{)[^}])*))?\}"
    r"|(?P<escaped>\$\$\{)"
    r"|(?P<other>\$\{(?:[#!][A-Za-z_]|[A-Za-z_][A-Za-z0-9_]*(?::?[-?+=]|:[0-9 ]|[#%/^,@]|$)))"
)


class Unset(LookupError):
    """A `${VAR}` without a default names a variable the environment does not set."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.names = names


class Malformed(ValueError):
    """A `${` that is none of the forms read (its text is not quoted: it may hold a key)."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """`value` with every `${…}` replaced; raises `Malformed` for a form it does not read, else
    `Unset` naming every unset variable."""
    unset: list[str] = []
    malformed = False

    def replace(match: re.Match[str]) -> str:
        nonlocal malformed
        if match["escaped"]:
            return "${"
        if match["other"]:
            malformed = True
            return ""
        name, operator, default = match["name"], match["operator"], match["default"]
        found = env.get(name)
        if operator == ":-" and not found:
            return str(default)
        if operator == "-" and found is None:
            return str(default)
        if found is None:
            unset.append(name)
            return ""
        return found

    result = _ENV_PATTERN.sub(replace, value)
    if malformed:
        raise Malformed
    if unset:
        raise Unset(unset)
    return result
