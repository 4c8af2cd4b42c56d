"""gitmodel.record: the slotted value records of the hot path behave as dataclasses would."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gitmodel.pointer import Out, Pointer
from gitmodel.record import FrozenRecord, Record


class Point(Record):
    __slots__ = ("x", "y")

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y


class Frozen(FrozenRecord):
    __slots__ = ("a",)

    def __init__(self, a: object) -> None:
        self._set(a=a)


def test_equality_and_repr_by_fields() -> None:
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert repr(Point(1, "b")) == "Point(x=1, y='b')"  # type: ignore[arg-type]

    class Other(Point):
        __slots__ = ()

    assert Point(1, 2) != Other(1, 2)  # another type is never equal
    with pytest.raises(TypeError):
        hash(Point(1, 2))  # mutable: not hashable, as an unfrozen dataclass
    with pytest.raises(AttributeError):
        Point(1, 2).z = 3  # type: ignore[attr-defined]  # slots: no stray attributes


def test_a_frozen_record_is_immutable_and_hashable() -> None:
    record = Frozen((1, 2))
    with pytest.raises(AttributeError, match="Frozen is immutable"):
        record.a = 3
    assert hash(record) == hash(Frozen((1, 2)))
    assert {record, Frozen((1, 2))} == {record}
    out = Out("m.pt", "a" * 32, 1)
    assert out == Out("m.pt", "a" * 32, 1) and len({out, Out("m.pt", "a" * 32, 1)}) == 1


def test_the_records_of_the_hot_path_cost_no_dataclasses_import() -> None:
    # The reason the module exists: status, add and checkout do not import dataclasses.
    code = "import sys, gitmodel.pointer, gitmodel.record; print('dataclasses' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "False", proc.stderr
    assert isinstance(Pointer.__slots__, tuple)
