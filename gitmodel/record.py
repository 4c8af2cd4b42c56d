"""Plain value records for the modules on every command's path.

`dataclasses` imports `inspect` (and with it `ast`, `dis`, `tokenize`) and builds each
class's methods through `exec`: about 15 ms per process on a 2-core machine, a tenth of the
budget of `git model status`. The few records that status, add, checkout and log touch
are written out with `__slots__` and a plain `__init__` instead; `Record` supplies the
equality and repr that `@dataclass` would have. Modules off that path keep `@dataclass`.
"""

from __future__ import annotations


class Record:
    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

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
