"""`${VAR}` in config values, read from the environment with the shell's meaning:

- `${VAR}`: the variable's value (empty when it is set but empty); unset is an error.
- `${VAR:-default}`: the default when VAR is unset *or empty*.
- `${VAR-default}`: the default only when VAR is unset.
- `$${...}`: a literal `${...}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["Unset", "interpolate"]

_ENV_PATTERN = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


class Unset(LookupError):
    """A `${VAR}` without a default names a variable the environment does not set."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.names = names


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """`value` with every `${…}` replaced; raises `Unset` naming every unset variable."""
    unset: list[str] = []

    def replace(match: re.Match[str]) -> str:
        escaped, name, operator, default = match.groups()
        if escaped:
            return match.group(0)[1:]
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
    if unset:
        raise Unset(unset)
    return result
