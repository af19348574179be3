"""`has`, the codec's presence test for a field named at run time: upb's own C method where the
runtime is upb (no Python frame per test: ~30 a unary call, ~3 a chunk), each message's own
`HasField` under the pure-Python runtime, with the same answers."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import cast

from google.protobuf.internal import api_implementation

from clients.codec._json import has
from clients.switchboard.v1 import chat_pb2

_CHECK = """
from clients.codec._json import has
from clients.switchboard.v1 import chat_pb2
params = chat_pb2.ChatParams(max_tokens=0)
assert has(params, "max_tokens") and not has(params, "temperature")
try:
    has(params, "no_such_field")
except ValueError:
    print("ok")
"""


def test_has_is_upbs_own_method() -> None:
    assert api_implementation.Type() == "upb"  # the runtime Switchboard installs
    from google._upb._message import Message as UpbMessage

    assert has is cast(object, UpbMessage.HasField)
    params = chat_pb2.ChatParams(max_tokens=0)  # present, though zero
    assert has(params, "max_tokens") and not has(params, "temperature")


def test_has_answers_the_same_on_the_pure_python_runtime() -> None:
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    done = subprocess.run(
        [sys.executable, "-c", _CHECK], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
