"""Which evaluation set a note's metric was measured on, and whether two are the same.

A note records the identity of its evaluation sets (`eval_sets`, by metric prefix: what
`git model eval --ids FILE` or `--inputs PATH` hashed), and stored predictions carry one
too (older ones only their labels' md5). The gate compares them before it compares the
metrics (a comparison across sets may not mean what it says).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's import is not paid at run time (see gitmodel.record)
if TYPE_CHECKING:
    from typing import Any


def eval_set_of(note: dict[str, Any] | None, metric: str) -> dict[str, Any] | None:
    """The identity of the evaluation set a note's metric was measured on, if recorded.

    `eval_sets` maps metric prefixes to identities (the longest prefix of the metric
    wins); stored predictions carry one too (older ones only their labels' md5).
    """
    if not isinstance(note, dict):
        return None
    sets = note.get("eval_sets")
    if isinstance(sets, dict):
        prefixes = [k for k in sets if isinstance(k, str) and metric.startswith(k)]
        for prefix in sorted(prefixes, key=len, reverse=True):
            found = sets[prefix]
            if isinstance(found, dict) and isinstance(found.get("md5"), str):
                return found
    entry = note.get("predictions")
    if isinstance(entry, dict) and metric.startswith(str(entry.get("prefix") or "")):
        found = entry.get("eval_set")
        if isinstance(found, dict) and isinstance(found.get("md5"), str):
            return found
        if isinstance(entry.get("labels_md5"), str):
            return {"md5": None, "by": "labels", "labels_md5": entry["labels_md5"]}
    return None


def same_eval_set(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """True/False when the identities can tell; None when the labels agree but one side
    names no examples (the same labels in the same order may be other examples)."""
    if a.get("by") == b.get("by") and a.get("by") != "labels" and a.get("md5"):
        return a.get("md5") == b.get("md5")
    if a.get("labels_md5") != b.get("labels_md5"):
        return False
    return None if "labels" in (a.get("by"), b.get("by")) else False


def set_name(identity: dict[str, Any]) -> str:
    by = identity.get("by", "labels")
    md5 = identity.get("md5") if by != "labels" else identity.get("labels_md5")
    n = identity.get("n")
    return f"{by} {str(md5)[:10]}" + (f", {n} examples" if isinstance(n, int) else "")
