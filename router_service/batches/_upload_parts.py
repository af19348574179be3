"""What a completion's `part_ids` may be (`Uploads.complete`), and the bounds on an upload's
parts that its list of parts is kept to."""

from __future__ import annotations

from router_service.errors import InvalidRequestError

__all__ = ["MAX_PARTS", "PART_ID_BYTES", "checked_part_ids"]

MAX_PARTS = 10_000
PART_ID_BYTES = len("part_") + 24 + 1  # with its newline in the list of parts


def checked_part_ids(part_ids: list[str]) -> None:
    """Refuse (InvalidRequestError, `param` "part_ids") a list of no parts, of too many, one
    listing a part twice, or one with an id no part can have (never a name is built of an
    attacker-sized id)."""
    if not part_ids:
        raise InvalidRequestError("`part_ids` must list the Upload's parts.", param="part_ids")
    if len(part_ids) > MAX_PARTS:
        raise InvalidRequestError(f"`part_ids` lists over {MAX_PARTS} parts.", param="part_ids")
    if len(set(part_ids)) != len(part_ids):
        raise InvalidRequestError("`part_ids` lists a Part twice.", param="part_ids")
    for part_id in part_ids:
        if len(part_id) != PART_ID_BYTES - 1:
            raise InvalidRequestError(f"No such Part: {part_id[:64]}", param="part_ids")
