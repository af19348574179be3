"""The idle RSS A/B (`benchmarks/idle_rss.py`): what it warms a stack with, which trees it runs."""

from __future__ import annotations

from pathlib import Path

from benchmarks._systems import REPO, System
from benchmarks.idle_rss import WARM_CALLS, tree, warm_spec


def test_the_warm_up_is_a_fixed_count_of_each_kind_of_call() -> None:
    edge = System("switchboard", chat_url="http://127.0.0.1:1/v1/chat/completions")
    unary, streamed = warm_spec(edge, False), warm_spec(edge, True)
    assert unary["count"] == streamed["count"] == WARM_CALLS
    assert "stream" not in unary["body"] and streamed["body"]["stream"] is True
    assert unary["url"] == edge.chat_url and unary["kind"] == "http"


def test_a_revision_is_a_snapshot_and_a_dot_the_work_tree(tmp_path: Path) -> None:
    src, label = tree(".", tmp_path)
    assert src == REPO and label
    src, label = tree("HEAD", tmp_path)
    assert src.parent == tmp_path and (src / "router_service" / "cli.py").exists()
    assert "+" not in label  # a commit, never a dirty tree
