"""The checks a client's arguments pass when it is made: one every call would fail with is
refused at once, naming the argument (never showing a key's value)."""

import math
from typing import Any

__all__ = ["check_arguments", "check_timeout", "printable"]

_INT32_MAX = 2**31 - 1  # the largest gRPC channel argument


def printable(text: str) -> bool:
    """Whether gRPC sends `text` alone as a metadata value (printable ASCII)."""
    return text.isascii() and text.isprintable()


def check_arguments(
    api_key: Any, default_timeout: Any, max_message_bytes: Any, ready_wait_s: float
) -> None:
    """TypeError or ValueError, naming the argument, for one every call would fail with (as
    DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED or grpc's own errors): refused when a client is made."""
    if not 0 <= ready_wait_s < math.inf:  # NaN too: a wait nothing could ever end
        raise ValueError(f"ready_wait_s must be a finite number >= 0, not {ready_wait_s!r}")
    if api_key is not None and not isinstance(api_key, str):
        raise TypeError(f"api_key must be a str or None, not {type(api_key).__name__}")
    if api_key is not None and not printable(api_key):
        raise ValueError(  # not shown: a credential
            "api_key is not printable ASCII, which gRPC sends alone (a line break read "
            "with it, or a character pasted with it?)"
        )
    check_timeout("default_timeout", default_timeout)
    if not isinstance(max_message_bytes, int) or isinstance(max_message_bytes, bool):
        raise TypeError(f"max_message_bytes must be an int, not {max_message_bytes!r}")
    # 0 failed every call; grpc reads -1 as no limit; past int32, grpc's OverflowError as it
    # made the channel failed every call, naming nothing.
    if not 0 < max_message_bytes <= _INT32_MAX:
        raise ValueError(
            f"max_message_bytes must be 1 to {_INT32_MAX} (gRPC's limit), not {max_message_bytes}"
        )


def check_timeout(name: str, timeout: Any) -> None:
    """TypeError or ValueError, naming `name`, for a timeout that is no number of seconds above
    0 (or None): a client's default and a call's own alike. NaN expired every call, as 0 or a
    past deadline did (0 a race with the answer); grpc read `True` as 1 second."""
    if timeout is None:
        return
    if not _is_number(timeout):
        raise TypeError(f"{name} must be seconds or None, not {timeout!r}")
    if not timeout > 0:  # NaN too
        raise ValueError(f"{name} must be > 0 seconds or None, not {timeout}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
