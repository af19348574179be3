"""A client key given as `key: ${ENV}` is held by its hash; its clear text stays in memory for the
log's redactor only (`ClientKey.plain_key`) and is no part of what the key is: the config loaded
from a file compares equal to the same key given by `key_sha256`, shows the key by fingerprint
(not even its hash), and a pickle of it (another process) carries no clear text."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

from router_service.config import SwitchboardConfig, load_config
from router_service.keys import fingerprint

# A human's key, of no shape a pattern knows: only the config knows it is a secret.
KEY = "opensesame-hunter2-kitchen"
DIGEST = hashlib.sha256(KEY.encode()).hexdigest()
PROVIDERS = "providers:\n  p: {base_url: 'http://x/v1', keys: [sk-upstream-0123456789]}\n"


def loaded(tmp_path: Path, client: str, env: dict[str, str]) -> SwitchboardConfig:
    path = tmp_path / f"{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(PROVIDERS + f"auth:\n  clients:\n    - {{name: app, {client}}}\n")
    path.chmod(0o600)
    return load_config(path, env=env)


def test_a_key_given_itself_is_the_same_key_as_given_by_its_hash(tmp_path: Path) -> None:
    by_key = loaded(tmp_path, "key: '${APP_KEY}'", {"APP_KEY": KEY})
    by_hash = loaded(tmp_path, f"key_sha256: {DIGEST}", {})
    (plain,), (hashed,) = by_key.auth.clients[0].keys, by_hash.auth.clients[0].keys
    assert plain.plain_key == KEY  # kept for the redactor
    assert plain == hashed and hash(plain) == hash(hashed)
    assert by_key.auth == by_hash.auth  # a reload from one to the other changes no caller


def test_a_client_key_is_shown_by_fingerprint_and_pickled_without_its_clear_text(
    tmp_path: Path,
) -> None:
    config = loaded(tmp_path, "key: '${APP_KEY}'", {"APP_KEY": KEY})
    (key,) = config.auth.clients[0].keys
    for shown in (repr(key), str(key), repr(config.auth.clients[0])):
        assert KEY not in shown and DIGEST not in shown and "hunter2" not in shown
    assert fingerprint(KEY) in repr(key) and key.fingerprint == fingerprint(KEY)
    pickled = pickle.dumps(config)
    assert KEY.encode() not in pickled and b"hunter2" not in pickled
    (copy,) = pickle.loads(pickled).auth.clients[0].keys
    assert copy == key and copy.plain_key is None  # the same key, known by its hash alone
