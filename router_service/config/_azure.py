"""An `azure` provider's own settings (its keys are `_entra`'s)."""

from __future__ import annotations

import datetime
import re

__all__ = ["azure_api_version_problem"]

# Azure OpenAI's dated API versions: `2024-10-21` (GA) or `2025-04-01-preview`.
_API_VERSION = re.compile(r"(\d{4}-\d{2}-\d{2})(-preview)?")


def azure_api_version_problem(version: str) -> str | None:
    """Why `version` is no Azure OpenAI API version (it goes into every request's query, where
    a wrong one is a 404 for every call); None when it is one."""
    shape = _API_VERSION.fullmatch(version)
    try:
        if shape is not None:
            datetime.date.fromisoformat(shape[1])
            return None
    except ValueError:
        pass
    return (
        f"{version!r} is not an Azure OpenAI api-version: a date, YYYY-MM-DD (e.g. 2024-10-21), "
        "or YYYY-MM-DD-preview"
    )
