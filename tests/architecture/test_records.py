"""`quantcalc.records.record` behaves as `dataclasses.dataclass` for every option it accepts:
each check runs the same class body under both and compares what a caller sees."""

import dataclasses
import inspect
from dataclasses import field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantcalc.records import record


def declare(decorate):
    """The same four classes, made by `decorate(**options)`."""
    @decorate(frozen=True)
    class Point:
        """A point."""
        x: int
        y: float = 2.5
        tags: tuple = field(default_factory=tuple)

    @decorate()
    class Box:
        """A mutable box with a derived field."""
        width: float
        height: float = 1.0
        area: float = field(init=False, default=0.0)
        notes: list = field(default_factory=list, repr=False)

        def __post_init__(self):
            self.area = self.width * self.height

    @decorate(frozen=True, eq=False)
    class Holder:
        """Holds an array: no equality by value."""
        values: object

    @decorate(frozen=True)
    class Checked:
        """Refuses a bad value in __post_init__, as IntegerFormat does."""
        bits: int

        def __post_init__(self):
            if self.bits < 2:
                raise ValueError("bits")
            object.__setattr__(self, "bits", int(self.bits))

    return Point, Box, Holder, Checked


def as_dataclass(**options):
    return lambda cls: dataclasses.dataclass(cls, **options)


OURS = declare(record)
THEIRS = declare(as_dataclass)


def outcome(make):
    try:
        return ("ok", make())
    except Exception as exc:  # the same call must fail the same way
        return (type(exc).__name__, str(exc).split("(")[-1].split(".")[-1])


def both(index, *args, **kwargs):
    return OURS[index](*args, **kwargs), THEIRS[index](*args, **kwargs)


def test_each_record_is_a_dataclass_with_the_same_fields():
    for ours, theirs in zip(OURS, THEIRS):
        assert dataclasses.is_dataclass(ours)
        assert [(f.name, f.init, f.repr) for f in dataclasses.fields(ours)] == \
            [(f.name, f.init, f.repr) for f in dataclasses.fields(theirs)]
        assert ours.__match_args__ == theirs.__match_args__
        assert str(inspect.signature(ours)) == str(inspect.signature(theirs)).replace(" -> None", "")


@given(x=st.integers(), y=st.floats(allow_nan=False), keyword=st.booleans())
def test_construction_repr_equality_and_hash_match(x, y, keyword):
    a, b = both(0, x=x, y=y) if keyword else both(0, x, y)
    assert repr(a) == repr(b)
    assert dataclasses.asdict(a) == dataclasses.asdict(b)
    assert hash(a) == hash(b) == hash(dataclasses.replace(a))  # the hash of the field tuple
    assert a == OURS[0](x, y) and a != OURS[0](x + 1, y)
    assert a != b  # different classes are never equal, as with dataclasses
    assert dataclasses.replace(a, y=0.0).y == dataclasses.replace(b, y=0.0).y == 0.0


def test_defaults_factories_and_post_init_match():
    a, b = both(1, 3.0, 2.0)
    assert (a.width, a.height, a.area, a.notes) == (b.width, b.height, b.area, b.notes) == \
        (3.0, 2.0, 6.0, [])
    assert a.notes is not OURS[1](1.0).notes  # a new list per instance
    assert repr(a) == repr(b).replace(THEIRS[1].__qualname__, OURS[1].__qualname__)
    assert OURS[1].__hash__ is None and THEIRS[1].__hash__ is None  # mutable: unhashable
    a.width = 5.0  # not frozen
    assert a.width == 5.0


@pytest.mark.parametrize("call", [
    lambda cls: cls(),                      # missing required argument
    lambda cls: cls(1, 2.0, (), "extra"),   # too many positional arguments
    lambda cls: cls(1, x=2),                # two values for one argument
    lambda cls: cls(1, z=3),                # unknown keyword
])
def test_wrong_calls_fail_alike(call):
    assert outcome(lambda: call(OURS[0]))[0] == outcome(lambda: call(THEIRS[0]))[0] == "TypeError"


def test_frozen_refuses_changes_alike():
    for point in both(0, 1):
        with pytest.raises(dataclasses.FrozenInstanceError):
            point.x = 2
        with pytest.raises(dataclasses.FrozenInstanceError):
            del point.y


def test_eq_false_keeps_identity_equality_and_hash():
    values = np.arange(3.0)
    for holder_class in (OURS[2], THEIRS[2]):
        one, two = holder_class(values), holder_class(values)
        assert one != two and one == one
        assert hash(one) != hash(two)


def test_post_init_runs_and_may_refuse():
    for checked in (OURS[3], THEIRS[3]):
        assert checked(4.0).bits == 4 and isinstance(checked(4.0).bits, int)
        with pytest.raises(ValueError):
            checked(1)


def test_every_record_of_the_package_is_declared_with_record():
    """One way to declare a record: a module that used @dataclass would compile its methods
    from source at import, which the page pays for when that module loads (scan, plan)."""
    import re
    from pathlib import Path
    package = Path(__file__).resolve().parents[2] / "py" / "quantcalc"
    users = [p.relative_to(package).as_posix() for p in package.rglob("*.py")
             if re.search(r"^\s*@(dataclasses\.)?dataclass\b", p.read_text(encoding="utf-8"),
                          flags=re.M)]
    assert users == []
