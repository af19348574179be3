"""The redactor's holds (`Redactor.hold`): a holder collected by the garbage collector."""

from __future__ import annotations

import gc
import io
import logging
import threading
from collections.abc import Iterator

from router_service.telemetry import JsonFormatter, Redactor
from router_service.telemetry._logging import MASK


class _Held:
    """A runtime in a reference cycle, and something in it that logs when it is collected (an
    asyncio task destroyed pending, an unclosed transport's warning)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.me = self
        self.logger = logger

    def __del__(self) -> None:
        self.logger.warning("collected")


def test_a_line_logged_by_the_collection_the_redactor_itself_set_off_does_not_hang() -> None:
    redactor = Redactor()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(redactor))
    logger = logging.getLogger("switchboard.test.redactor_holds")
    logger.addHandler(handler)
    logger.propagate = False
    enabled = gc.isenabled()

    def collecting() -> Iterator[str]:
        # The garbage collector runs at any allocation: here, at one under `replace`'s lock.
        gc.collect()
        yield "another-secret"

    def replace() -> None:
        held = _Held(logger)
        redactor.hold(held, ["secret-of-the-held"])
        del held  # garbage now: collected by the next collection
        redactor.replace("given", collecting())

    worker = threading.Thread(target=replace, daemon=True)
    gc.disable()  # nothing collects the garbage before `collecting` does
    try:
        worker.start()
        worker.join(30)  # a bound on a hang, not a wait: the call returns at once or never
        hung = worker.is_alive()
    finally:
        (gc.enable if enabled else gc.disable)()
        logger.removeHandler(handler)
    assert not hung, "the redactor deadlocked on its own lock"
    assert "collected" in out.getvalue()
    assert redactor("secret-of-the-held another-secret") == f"secret-of-the-held {MASK}"
