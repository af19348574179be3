"""Reading the YAML file: `${ENV}` interpolation, validation, errors that name their location."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from router_service.config._models import SwitchboardConfig
from router_service.config._secrets import warn_if_exposed
from router_service.errors import ConfigError

# ${NAME} or ${NAME:-default}; `$${` escapes a literal `${`.
_ENV_PATTERN = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Location = tuple[str | int, ...]


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> SwitchboardConfig:
    """Load and validate a config file; raise ConfigError listing every problem with its place."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    config = parse_config(text, source=str(path), env=os.environ if env is None else env)
    warn_if_exposed(path, text)
    return config


def parse_config(
    text: str, *, source: str = "<config>", env: Mapping[str, str] | None = None
) -> SwitchboardConfig:
    env = os.environ if env is None else env
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from exc
    if node is None:
        raise ConfigError(f"{source}: the file is empty")
    lines: dict[Location, int] = {}
    problems: list[str] = []
    data = _construct(node, (), lines, env, problems, source)
    if problems:
        raise ConfigError("\n".join(problems))
    try:
        return SwitchboardConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, lines, source)) from exc


def _construct(
    node: yaml.Node,
    loc: Location,
    lines: dict[Location, int],
    env: Mapping[str, str],
    problems: list[str],
    source: str,
) -> Any:
    """Build plain data from the YAML node tree, remembering each value's line."""
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            result[key] = _construct(value_node, (*loc, key), lines, env, problems, source)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*loc, i), lines, env, problems, source)
            for i, item in enumerate(node.value)
        ]
    scalar = yaml.SafeLoader("").construct_object(node)
    if isinstance(scalar, str) and "$" in scalar:
        return _interpolate(scalar, loc, lines[loc], env, problems, source)
    return scalar


def _interpolate(
    value: str,
    loc: Location,
    line: int,
    env: Mapping[str, str],
    problems: list[str],
    source: str,
) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped, name, default = match.group(1), match.group(2), match.group(3)
        if escaped:
            return "${" + name + (f":-{default}" if default is not None else "") + "}"
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{source}:{line}: {_dotted(loc)}: environment variable {name} is not set")
        return ""

    return _ENV_PATTERN.sub(replace, value)


def _dotted(loc: Location) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _format_validation(exc: ValidationError, lines: dict[Location, int], source: str) -> str:
    messages = []
    for error in exc.errors(include_url=False, include_input=False):
        loc: Location = tuple(p for p in error["loc"] if isinstance(p, str | int))
        line = _nearest_line(loc, lines)
        where = f"{source}:{line}" if line else source
        messages.append(f"{where}: {_dotted(loc)}: {error['msg']}")
    return "\n".join(messages)


def _nearest_line(loc: Location, lines: dict[Location, int]) -> int | None:
    # A missing field has no line of its own: point at its parent.
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
