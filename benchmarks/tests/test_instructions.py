"""The instructions probe's own logic (no valgrind run here: that takes minutes)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmarks.instructions import (
    ONE_PROCESS,
    STREAMED,
    TRACED,
    VARIANTS,
    _keep,
    _row,
    _send,
    dumped_instructions,
    main,
)

DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 8411
cmd:  python -m router_service router --config sb.yaml
part: 1

positions: line
events: Ir
summary: 218025030


totals: 218025030
"""


def test_the_count_is_read_from_a_dump() -> None:
    assert dumped_instructions(DUMP) == 218_025_030


def test_a_file_that_is_not_a_dump_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a callgrind dump"):
        dumped_instructions("events: Ir\n")


def test_an_unknown_variant_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--variants", "plain,bogus"])
    assert exited.value.code == 2
    assert "unknown variants: bogus" in capsys.readouterr().err


def test_kept_dumps_are_named_by_variant_and_process(tmp_path: Path) -> None:
    run = tmp_path / "run" / "tracing"
    run.mkdir(parents=True)
    for process in ("router", "edge"):
        (run / f"{process}.out.1").write_text(DUMP.replace("218025030", f"{len(process)}"))
    _keep(run, tmp_path / "kept", "tracing")
    assert dumped_instructions((tmp_path / "kept" / "tracing-router.out").read_text()) == 6
    assert dumped_instructions((tmp_path / "kept" / "tracing-edge.out").read_text()) == 4


def test_one_process_is_kept_and_shown_whole(tmp_path: Path) -> None:
    run = tmp_path / "run" / "one-process"
    run.mkdir(parents=True)
    (run / "serve.out.1").write_text(DUMP)
    _keep(run, tmp_path / "kept", "one-process")
    assert dumped_instructions((tmp_path / "kept" / "one-process-serve.out").read_text())
    assert _row("one-process", {"serve": 2.5}) == "| one-process | (one process) | | 2.500 |"
    assert _row("plain", {"router": 1.5, "edge": 1.0}) == "| plain | 1.500 | 1.000 | 2.500 |"


def _serve(answer: bytes) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"


def test_a_stream_is_read_to_its_done_line() -> None:
    server, url = _serve(b'data: {"choices": []}\n\ndata: [DONE]\n\n')
    try:
        _send(url, {}, 2, stream=True)
    finally:
        server.shutdown()
        server.server_close()


def test_a_stream_cut_before_done_is_an_error() -> None:
    server, url = _serve(b'data: {"choices": []}\n\n')
    try:
        with pytest.raises(RuntimeError, match="without \\[DONE\\]"):
            _send(url, {}, 1, stream=True)
    finally:
        server.shutdown()
        server.server_close()


def test_the_one_process_tracing_variant_traces_in_one_process() -> None:
    assert "one-process-tracing" in VARIANTS
    assert "one-process-tracing" in ONE_PROCESS & TRACED
    assert "one-process-tracing" not in STREAMED
