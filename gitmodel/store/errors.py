"""The store's expected failures."""

from __future__ import annotations

from gitmodel.errors import GitModelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


class StoreError(GitModelError):
    """Storing or materialising an object failed (disk full, permissions, corruption)."""


class ObjectMissing(GitModelError):
    """Objects needed for a checkout are not in the cache."""

    def __init__(self, missing: Sequence[str]) -> None:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        super().__init__(f"not in the cache: {shown}")
        self.missing = list(missing)


class CorruptObject(GitModelError):
    """A cache object's content does not match its name."""

    exit_code = 1

    def __init__(self, oid: str, actual: str) -> None:
        super().__init__(f"corrupt cache object {oid} (content hashes to {actual})")
        self.oid = oid
        self.actual = actual
