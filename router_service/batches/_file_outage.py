"""What a file call says when the shared state store is lost to this replica (`StoredFiles`):
each refusal a 503 to try again, never a 404 or a half-done write."""

from __future__ import annotations

__all__ = ["NOT_DELETED", "NOT_KEPT", "NOT_LISTED", "NOT_READ"]

# A read answered from this replica's local state (Redis lost) that found nothing: the file is
# unknown there, not gone (uploads are kept on the shared store or not at all).
NOT_READ = (
    "The shared state store is unreachable from this replica: file {} cannot be read now; "
    "try again shortly."
)
NOT_LISTED = (
    "The shared state store is unreachable from this replica: this client's files cannot be "
    "listed now; try again shortly."
)
NOT_DELETED = (
    "The shared state store was lost as file {} was deleted: it was not deleted; try again shortly."
)
NOT_KEPT = (
    "The shared state store was lost as this file was kept: it was not kept; upload it again "
    "shortly."
)
