"""The commands the README gives: every `switchboard …` line parses with the real command line
(`router_service.cli.parser`), every flag it quotes belongs to a subcommand, every `make` target
and variable is the Makefile's, every `python -m` module and repository path exists. Nothing is
run (no make, no server): what is checked is that a newcomer's copy does not fail on a name.
Python names qualified by this repository's packages (`clients.RETRY_POLICY`) exist too."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex

import pytest

from router_service.cli import parser
from tests.readme.markdown import ROOT, Snippet, blocks, spans

# Flags in the prose that are not `switchboard`'s, and where they belong instead.
OTHER_FLAGS = {
    "--quick": "benchmarks/run.py",  # `make bench BENCH_ARGS=--quick`
    "--snapshot": "benchmarks/instructions.py",
    "--enable-optimizations": None,  # CPython's ./configure (PYTHON_CONFIGURE_OPTS)
    "--with-lto": None,
}
# Path-like code spans that are no file of this repository.
NOT_PATHS = {
    ".tools/": "made by `make` (buf's npm install), not committed",
    "google/rpc/status.proto": "googleapis' file, packaged for every language, not ours",
}
_PATH = re.compile(r"^[\w.-]+(?:/[\w.{},-]+)*/?$")
# A path, not a deployment name (`beta/small-fast`): a directory (`keys/`), a file by its
# extension, or anything under one of the repository's own top-level entries.
_PATH_END = re.compile(r"(?:/|\.[a-z]{1,8}|\.\{[a-z,]+\})$")
# A Python name under one of this repository's packages.
_QUALIFIED = re.compile(r"(?<![\w.])(?:clients|router_service|http_edge|benchmarks)(?:\.\w+)+")


def command_lines() -> list[Snippet]:
    """Each line of a ```bash block and each code span, as one shell command (a comment and a
    trailing `&` removed)."""
    found = spans()
    for block in blocks("bash"):
        for offset, line in enumerate(block.text.splitlines(), start=1):
            found.append(Snippet(line, block.line + offset))
    return [
        Snippet(
            re.sub(r"\s+#.*$|^#.*$", "", line.text).strip().removesuffix("&").strip(), line.line
        )
        for line in found
    ]


def invocations(program: str) -> list[Snippet]:
    """The arguments after `program` wherever a command line runs it (not a bare mention:
    "every `switchboard` process")."""
    pattern = re.compile(rf"(?:^|\s){re.escape(program)}\s+(\S.*)$")
    return [
        # Up to a pipe (`switchboard admin keys --json | jq …`): what follows is another program.
        Snippet(m[1].split(" | ")[0], line.line)
        for line in command_lines()
        if (m := pattern.search(line.text))
    ]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def every_parser(top: argparse.ArgumentParser | None = None) -> list[argparse.ArgumentParser]:
    """`top` (the `switchboard` parser) and every subcommand's below it, at any depth
    (`switchboard admin keys disable`)."""
    found = [top or parser()]
    for action in found[0]._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += every_parser(sub)
    return found


def parses(args: list[str]) -> bool:
    """Whether `switchboard ARGS` is a valid command line (`--help` included)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            parser().parse_args(args)
        except SystemExit as exit_:
            return exit_.code == 0
    return True


@pytest.mark.parametrize("call", invocations("switchboard"), ids=lambda c: f"{c.where} {c.text}")
def test_switchboard_command_line_parses(call: Snippet) -> None:
    # `[--router host:port ...]`: an optional part, shown as given.
    args = shlex.split(call.text.replace("[", "").replace("]", "").replace("...", ""))
    if len(args) == 1 and not args[0].startswith("-"):  # `switchboard dev`: the command named
        assert args[0] in subcommands(), f"{call.where}: no `switchboard {args[0]}`"
    else:
        assert parses(args), f"{call.where}: `switchboard {call.text}` does not parse"


def quoted_flags() -> list[Snippet]:
    """`--role router`, `--metrics-port`: code spans that are a flag (and its value)."""
    return [span for span in spans() if re.match(r"^--[a-z]", span.text)]


@pytest.mark.parametrize("span", quoted_flags(), ids=lambda s: f"{s.where} {s.text}")
def test_quoted_flag_is_accepted(span: Snippet) -> None:
    flag, *value = span.text.split()
    if flag in OTHER_FLAGS:
        owner = OTHER_FLAGS[flag]
        assert owner is None or flag in (ROOT / owner).read_text(), f"{owner} has no {flag}"
        return
    accepting = [
        action
        for sub in every_parser()[1:]
        for action in sub._actions
        if flag in action.option_strings
    ]
    assert accepting, f"{span.where}: no switchboard subcommand has {flag}"
    if value:  # the value shown must be one the flag takes
        shown = " ".join(value)
        assert any(a.choices is None or shown in a.choices for a in accepting), (
            f"{span.where}: {flag} takes no {shown!r}"
        )


def makefile() -> tuple[set[str], set[str]]:
    """The Makefile's targets and variables."""
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):(?!=)", text, re.MULTILINE))
    variables = set(re.findall(r"^([A-Z_]+)\s*[?:]?=", text, re.MULTILINE))
    return targets, variables


@pytest.mark.parametrize("call", invocations("make"), ids=lambda c: f"{c.where} {c.text}")
def test_make_target_exists(call: Snippet) -> None:
    targets, variables = makefile()
    for word in shlex.split(call.text):
        name, assigns, _ = word.partition("=")
        if assigns:
            assert name in variables, f"{call.where}: the Makefile has no variable {name}"
        else:
            assert word in targets, f"{call.where}: the Makefile has no target {word}"


def python_names() -> list[Snippet]:
    """`python -m` modules, and names qualified by one of this repository's packages
    (`clients.RETRY_POLICY`, `router_service.telemetry.client_observer()`)."""
    found = [
        Snippet(m[1], line.line)
        for line in command_lines()
        if (m := re.search(r"python3? -m ([\w.]+)", line.text))
    ]
    for span in spans():
        found += [Snippet(name, span.line) for name in _QUALIFIED.findall(span.text)]
    return list(dict.fromkeys(found))  # `python -m benchmarks.x` is both


def resolve(name: str) -> object:
    """The module or attribute `name` is: its longest importable prefix, then attributes."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        with contextlib.suppress(ModuleNotFoundError):
            found: object = importlib.import_module(".".join(parts[:end]))
            break
    else:
        raise ModuleNotFoundError(name)
    for part in parts[end:]:
        found = getattr(found, part)
    return found


@pytest.mark.parametrize("name", python_names(), ids=lambda n: f"{n.where} {n.text}")
def test_python_name_exists(name: Snippet) -> None:
    try:
        resolve(name.text)
    except (ImportError, AttributeError) as missing:
        raise AssertionError(f"{name.where}: no {name.text} ({missing})") from None


def paths() -> list[Snippet]:
    """Code spans shaped like a relative path (`deploy/envoy.yaml`, `router_service/engine/`,
    `benchmarks/results/latest.{md,json,png}`)."""
    top = {entry.name for entry in ROOT.iterdir()}
    return [
        span
        for span in spans()
        if "/" in span.text
        and _PATH.match(span.text)
        and (_PATH_END.search(span.text) or span.text.split("/")[0] in top)
        and span.text not in NOT_PATHS
    ]


@pytest.mark.parametrize("span", paths(), ids=lambda s: f"{s.where} {s.text}")
def test_path_exists(span: Snippet) -> None:
    # `keys/`, `sessions/`…: the README names router_service's packages by their own names.
    head, _, rest = span.text.partition("{")
    choices, _, tail = rest.partition("}")
    for choice in choices.split(",") if rest else [""]:
        path = f"{head}{choice}{tail}"
        assert any((base / path).exists() for base in (ROOT, ROOT / "router_service")), (
            f"{span.where}: no {path} in the repository"
        )
