"""Value records: the one style for what the library returns on every command's path.

A record is a class with `__slots__` and a plain `__init__` (Record supplies equality and
repr), and a `to_json()` that is its `--json` form, so the library returns typed values
(`Status`, `LogEntry`, `Diff`, `CheckoutResult`, `AddResult`, `Out`, ...) that a command
renders and a Python user reads by attribute, with the JSON shape written down once.

Why not `@dataclass`: `dataclasses` imports `inspect` (and with it `ast`, `dis`,
`tokenize`) and builds each class's methods through `exec`: about 15 ms per process on a
2-core machine, a tenth of the budget of `git model status`. Why not bare dicts: their
keys are nowhere declared, typed or documented. Why not NamedTuple: `typing`'s import
costs a few ms too, and a tuple's order becomes part of the API. The hook paths are hot
too: the tag grammar, the gate, its noise rule and its verdicts are records, so `git tag`'s
door imports no `dataclasses`. Modules off those paths (remote info, fsck and gc reports,
the bootstrap's results) may keep `@dataclass`.

A record with a `to_json()` also compares equal to its JSON form, so code written when
these values were plain dicts (`repo.status() == {...}`) keeps working.
"""

from __future__ import annotations


class Record:
    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._values() == other._values()
        if isinstance(other, dict) and hasattr(self, "to_json"):
            return bool(self.to_json() == other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable unless a subclass says otherwise

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"


class FrozenRecord(Record):
    """A Record that refuses attribute assignment after __init__ and can be hashed."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._values())
