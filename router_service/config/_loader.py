"""Reading the YAML file: `${ENV}` interpolation, validation, errors that name their location."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from router_service.config._base import Location, Misplaced, dotted
from router_service.config._edge_file import EdgeFileConfig
from router_service.config._interpolate import Malformed, Unset, interpolate
from router_service.errors import ConfigError

if TYPE_CHECKING:
    from router_service.config._models import SwitchboardConfig

__all__ = ["load_config", "load_edge_config", "parse_config", "parse_edge_config"]

M = TypeVar("M", bound=BaseModel)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> SwitchboardConfig:
    """Load and validate a config file; raise ConfigError listing every problem with its place.
    Relative file paths in it are taken relative to the file's directory."""
    return _load(_whole_file(), Path(path), env)


def load_edge_config(path: str | Path, env: Mapping[str, str] | None = None) -> EdgeFileConfig:
    """The edge's part of a config file (`EdgeFileConfig`): `${VAR}`s of the router's sections
    need not be set in the edge's environment."""
    return _load(EdgeFileConfig, Path(path), env)


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> SwitchboardConfig:
    """The whole file, as the router reads it. `base_dir`: what relative file paths are
    relative to (unset: the working directory)."""
    return _parse(_whole_file(), text, source, os.environ if env is None else env, base_dir)


def parse_edge_config(
    text: str,
    *,
    source: str = "<config>",
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> EdgeFileConfig:
    """The file as the edge reads it (`load_edge_config`)."""
    return _parse(EdgeFileConfig, text, source, os.environ if env is None else env, base_dir)


def _whole_file() -> type[SwitchboardConfig]:
    """The router's model of the file, imported by the first reader of the whole file: the
    edge reads its part only (`_edge_file.py`)."""
    from router_service.config._models import SwitchboardConfig

    return SwitchboardConfig


def _load(model: type[M], path: Path, env: Mapping[str, str] | None) -> M:
    # Imported here: it knows the key-file kinds (Entra, Vertex…), none of an idle edge's.
    from router_service.config._secrets import warn_if_exposed

    try:
        text = path.read_text(encoding="utf-8")  # YAML's own (a locale's would vary by host)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:  # a comment saved as Latin-1: said, never a traceback
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: cannot read config: not UTF-8 text (line {line})") from None
    # abspath, not resolve(): a ConfigMap's file is a symlink beside the files it names.
    base_dir = Path(os.path.abspath(path)).parent
    config = _parse(model, text, str(path), os.environ if env is None else env, base_dir)
    warn_if_exposed(path, text)
    return config


def _parse(
    model: type[M], text: str, source: str, env: Mapping[str, str], base_dir: Path | None
) -> M:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        # Not str(exc), nor chained: the parser quotes the source line, which may hold a key.
        raise ConfigError(_yaml_problem(exc, source)) from None
    except yaml.YAMLError:
        raise ConfigError(f"{source}: invalid YAML") from None
    except RecursionError:  # `[[[…]]]` thousands deep: the composer recurses per level
        raise ConfigError(f"{source}: {_TOO_DEEP}") from None
    if node is None:
        raise ConfigError(f"{source}: the file is empty")
    # Unset variables are errors only in the sections this reader validates.
    builder = _Builder(source, env, frozenset(model.model_fields))
    try:
        data = builder.build(node, ())
    except RecursionError:  # as deep as the composer just managed: the builder recurses too
        raise ConfigError(f"{source}: {_TOO_DEEP}") from None
    if builder.problems:
        raise ConfigError("\n".join(builder.problems))
    try:
        return model.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_format_validation(exc, builder.lines, source)) from exc


_TOO_DEEP = "invalid YAML: nested too deeply"


def _yaml_problem(exc: yaml.MarkedYAMLError, source: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    message = f"{where}: invalid YAML: {exc.problem or exc.context}"
    if exc.problem and exc.context and exc.context_mark:
        context_at = f"line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1}"
        message += f" ({exc.context} at {context_at})"
    return message


_UNREAD_TAG = "a YAML tag it does not read (write the value plainly, or quote it)"
_PLAIN_COLLECTIONS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})
# A key's tags as a plain key resolves (`alpha`, `429`, `true`; `<<`, refused as an unknown
# field); a key is read as its text.
_PLAIN_KEYS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "merge")
)


@dataclass
class _Builder:
    """Plain data from the YAML node tree, with each value's line remembered (for errors),
    duplicate keys refused and `${VAR}`s replaced."""

    source: str
    env: Mapping[str, str]
    sections: frozenset[str]  # top-level keys where an unset variable is an error
    lines: dict[Location, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def build(self, node: yaml.Node, loc: Location) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_COLLECTIONS:
            # `!secret [...]`, `!include {...}`, `!!set`: read as if untagged, what the tag
            # meant silently lost; a problem as a scalar's unknown tag is.
            self.problems.append(f"{self.source}:{self.lines[loc]}: {dotted(loc)}: {_UNREAD_TAG}")
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        scalar = self._scalar(node, loc)
        if isinstance(scalar, str) and "$" in scalar:
            return self._interpolate(scalar, loc)
        return scalar

    def _scalar(self, node: yaml.Node, loc: Location) -> Any:
        """The node's value; a problem (never quoting it) where YAML parses a value it cannot
        make: a day that does not exist (2026-02-30), a tag it does not know (`!secret`)."""
        try:
            return yaml.SafeLoader("").construct_object(node)
        except yaml.constructor.ConstructorError:
            why = _UNREAD_TAG
        # The standard tags' Python values: datetime's range checks (ValueError); an explicit
        # `!!bool`/`!!timestamp`/`!!int`/`!!float` on text not of its kind (KeyError quoting
        # it, AttributeError, IndexError).
        except (ValueError, LookupError, AttributeError):
            kind = node.tag.rpartition(":")[2]
            kind = "date or time YAML can read" if kind == "timestamp" else f"valid !!{kind}"
            why = f"not a {kind} (quote it to keep it as text)"
        self.problems.append(f"{self.source}:{node.start_mark.line + 1}: {dotted(loc)}: {why}")
        return None

    def _mapping(self, node: yaml.MappingNode, loc: Location) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag not in _PLAIN_KEYS:  # `!secret alpha:`, `!!binary …:`, `? [a, b]`
                why = (
                    "a list or a mapping as a key (write it plainly)"
                    if key_node.id != "scalar"
                    else _UNREAD_TAG
                )
                line = key_node.start_mark.line + 1
                self.problems.append(f"{self.source}:{line}: {dotted(loc)}: {why}")
                continue
            key = str(key_node.value)
            where = (*loc, key)
            line = key_node.start_mark.line + 1
            if key in result:
                # YAML would keep the last silently, dropping what the first one said.
                self.problems.append(
                    f"{self.source}:{line}: {dotted(where)}: duplicate key "
                    f"(first on line {self.lines[where]})"
                )
                continue
            self.lines[where] = line  # a section's line is its key's, not its first child's
            result[key] = self.build(value_node, where)
        return result

    def _interpolate(self, value: str, loc: Location) -> str:
        try:
            return interpolate(value, self.env)
        except (Unset, Malformed) as problem:
            if loc and loc[0] not in self.sections:
                return value  # a section this reader ignores: its variables are not its business
            where = f"{self.source}:{self.lines[loc]}: {dotted(loc)}"
            if isinstance(problem, Malformed):
                self.problems.append(
                    f"{where}: a ${{…}} it does not read: ${{VAR}}, ${{VAR:-default}}, "
                    "${VAR-default}, or $${…} for a literal ${…}"
                )
                return value
            for name in problem.names:
                self.problems.append(f"{where}: environment variable {name} is not set")
            return value


def _format_validation(exc: ValidationError, lines: dict[Location, int], source: str) -> str:
    messages = []
    for error in exc.errors(include_url=False, include_input=False):
        loc: Location = tuple(p for p in error["loc"] if isinstance(p, str | int))
        found = error.get("ctx", {}).get("error")
        placed = found.problems if isinstance(found, Misplaced) else [((), error["msg"])]
        for below, message in placed:
            if isinstance(found, Misplaced):
                message = f"Value error, {message}"
            line = _nearest_line((*loc, *below), lines)
            where = f"{source}:{line}" if line else source
            messages.append(f"{where}: {dotted((*loc, *below))}: {message}")
    return "\n".join(messages)


def _nearest_line(loc: Location, lines: dict[Location, int]) -> int | None:
    # A missing field has no line of its own: point at its parent.
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None
