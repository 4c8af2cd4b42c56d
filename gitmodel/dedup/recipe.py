"""A recipe: which chunks, in which order, make the file whose md5 names it.

Stored as compact JSON at `<cache>/gitmodel/recipes/<md5[:2]>/<md5[2:]>` and on remotes
beside the packs. A recipe may come from a hostile remote or clone, so `parse_recipe`
checks every field and that the chunks add up to the size before anything trusts it.
"""

from __future__ import annotations

import json

from gitmodel.errors import GitModelError
from gitmodel.record import Record

RECIPE_FORMAT = "gitmodel-recipe/1"
# A recipe larger than this is not one we wrote (a 10 TB file of 8 MiB pieces is ~40 MB).
MAX_RECIPE = 256 * 1024 * 1024
HEX = frozenset("0123456789abcdef")


class BadRecipe(GitModelError):
    exit_code = 1


class Recipe(Record):
    __slots__ = ("md5", "size", "chunking", "chunks")

    def __init__(
        self, md5: str, size: int, chunking: str, chunks: list[tuple[str, int, str]]
    ) -> None:
        self.md5 = md5
        self.size = size
        self.chunking = chunking
        self.chunks = chunks  # (key, length, chunk id) in file order

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": RECIPE_FORMAT,
                "md5": self.md5,
                "size": self.size,
                "chunking": self.chunking,
                "chunks": [list(c) for c in self.chunks],
            },
            separators=(",", ":"),
        ).encode()

    def ids(self) -> list[str]:
        return list(dict.fromkeys(c[2] for c in self.chunks))


def parse_recipe(data: bytes, md5: str) -> Recipe:
    """A recipe's bytes, validated (it may come from a hostile remote)."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadRecipe(f"recipe {md5}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != RECIPE_FORMAT or raw.get("md5") != md5:
        raise BadRecipe(f"recipe {md5}: not a gitmodel recipe for this object")
    size, chunks = raw.get("size"), raw.get("chunks")
    if type(size) is not int or size < 0 or not isinstance(chunks, list):
        raise BadRecipe(f"recipe {md5}: bad size or chunk list")
    out: list[tuple[str, int, str]] = []
    total = 0
    for c in chunks:
        if (
            not isinstance(c, list)
            or len(c) != 3
            or not isinstance(c[0], str)
            or type(c[1]) is not int
            or c[1] < 0
            or not isinstance(c[2], str)
            or len(c[2]) != 64
            or not HEX.issuperset(c[2])
        ):
            raise BadRecipe(f"recipe {md5}: malformed chunk entry")
        total += c[1]
        out.append((c[0], c[1], c[2]))
    if total != size:
        raise BadRecipe(f"recipe {md5}: chunks add up to {total} bytes, not {size}")
    return Recipe(md5, size, str(raw.get("chunking", "")), out)
