"""gitmodel: Git-native model versioning.

Weights live by content in a DVC-compatible cache, metrics in git notes, and releases
that regress are refused. `Repo` is the Python API; the `git model` CLI is a skin over it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)

__version__ = "0.1.0"
__all__ = ["Repo", "GitModelError", "log_metrics", "open", "read", "__version__"]

if TYPE_CHECKING:
    from typing import Any

    from gitmodel.consume import open, read  # noqa: A004 - dvc.api's names
    from gitmodel.errors import GitModelError
    from gitmodel.history import log_metrics
    from gitmodel.repo import Repo


def __getattr__(name: str) -> Any:
    # Lazy, so `import gitmodel` (and the hooks) pay only for what they use.
    if name == "Repo":
        from gitmodel.repo import Repo

        return Repo
    if name == "GitModelError":
        from gitmodel.errors import GitModelError

        return GitModelError
    if name == "log_metrics":
        from gitmodel.history import log_metrics

        return log_metrics
    if name in ("open", "read"):
        from gitmodel import consume

        return getattr(consume, name)
    raise AttributeError(name)
