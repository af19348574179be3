"""An upload's parts deleted as it ends, on the test Redis: `python -m benchmarks.upload_forget
[--parts N] [--url redis://127.0.0.1:6379/0]`.

Keeps N part documents (100 bytes each) of one upload through the router's Redis store (behind
its local fallback, as a replica opens it), then times `Uploads._forget` deleting them (what a
cancel or a completion does with an upload's parts): milliseconds for all N, best of
`--rounds`. Keys under a prefix of its own (all deleted by what is measured).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from router_service.batches._files import StoredFiles
from router_service.batches._upload_names import UploadNames
from router_service.batches._uploads import Uploads
from router_service.clock import SYSTEM_CLOCK
from router_service.config import FilesConfig, StateConfig
from router_service.state import StateStore, open_store


async def _round(store: StateStore, uploads: Uploads, parts: int) -> float:
    names = UploadNames("bench", f"upload_{uuid.uuid4().hex[:24]}")
    part_ids = [f"part_{uuid.uuid4().hex[:24]}" for _ in range(parts)]
    for part_id in part_ids:
        await store.put_document(names.part(part_id), b"x" * 100, 600)
    started = time.perf_counter()
    await uploads._forget(names, part_ids)
    took = time.perf_counter() - started
    assert not any(await store.get_documents([names.part(p) for p in part_ids])), "not deleted"
    return took


async def _main(url: str, parts: int, rounds: int) -> None:
    prefix = f"bench:{uuid.uuid4().hex[:12]}"
    state = StateConfig.model_validate({"backend": "redis", "url": url, "prefix": prefix})
    store = await open_store(state)
    uploads = Uploads(store, SYSTEM_CLOCK, StoredFiles(store, SYSTEM_CLOCK, FilesConfig()))
    try:
        best = min([await _round(store, uploads, parts) for _ in range(rounds)])
        print(f"parts {parts}: _forget {best * 1000:.1f} ms (best of {rounds})")
    finally:
        await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    asyncio.run(_main(args.url, args.parts, args.rounds))


if __name__ == "__main__":
    main()
