"""`record`: a dataclass whose methods are ordinary functions rather than generated source.

Why not plain `dataclasses.dataclass`: it writes each class's `__init__`, `__repr__`, `__eq__`,
`__hash__` and frozen `__setattr__` as source text and `exec`s it. Under Pyodide that text is
compiled at import time by CPython's compiler running in WebAssembly, and the first compile of a
visit also pays for the browser compiling that part of the wasm: measured in Chromium, the
calculator's import spent about 300 of its 320-450 ms there (13 dataclasses), more than loading
numpy's wheel. A `record` is still a dataclass to everything that asks (`dataclasses.fields`,
`replace`, `asdict`, `is_dataclass`); only its methods are these shared functions, compiled to
bytecode at build time like the rest of the package. `tests/architecture/test_startup.py` checks
that importing the calculator compiles nothing.

Supported: fields with defaults and `field(default_factory=...)`, `field(init=False)`,
`__post_init__`, `frozen=True` and `eq=False` (what this package uses; other dataclass options
are refused rather than ignored).
"""

import dataclasses
import inspect

_MISSING = dataclasses.MISSING


class _Factory:
    def __repr__(self):
        return "<factory>"  # what dataclasses shows for a default made by default_factory


_FACTORY = _Factory()


def record(cls=None, /, *, frozen=False, eq=True):
    """Class decorator: `@record`, `@record(frozen=True)`, `@record(frozen=True, eq=False)`."""
    def wrap(cls):
        undocumented = not cls.__doc__
        if undocumented:  # else dataclasses derives one by parsing a signature (a compile)
            cls.__doc__ = cls.__name__
        # init/repr/eq/frozen off: dataclasses then generates no code, only the field table
        cls = dataclasses.dataclass(cls, init=False, repr=False, eq=False)
        fields = dataclasses.fields(cls)
        if undocumented:
            cls.__doc__ = cls.__name__ + str(_signature(fields))
        cls.__init__ = _initializer(cls, fields)
        cls.__repr__ = _representer(fields)
        cls.__signature__ = _signature(fields)
        if eq:
            cls.__eq__ = _comparer(fields)
            cls.__hash__ = _hasher(fields) if frozen else None  # as dataclasses decides
        if frozen:
            cls.__setattr__ = _refuse_change
            cls.__delattr__ = _refuse_change
        return cls
    return wrap if cls is None else wrap(cls)


def _initializer(cls, fields):
    names = tuple(f.name for f in fields if f.init)
    known = frozenset(names)
    later = tuple(f for f in fields if not f.init)  # set from their defaults, as dataclasses does
    post_init = getattr(cls, "__post_init__", None) is not None
    title = cls.__qualname__

    def __init__(self, *args, **kwargs):
        if len(args) > len(names):
            raise TypeError(f"{title}.__init__() takes {len(names) + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        values = dict(zip(names, args))
        for name in kwargs:
            if name not in known:
                raise TypeError(f"{title}.__init__() got an unexpected keyword argument "
                                f"'{name}'")
            if name in values:
                raise TypeError(f"{title}.__init__() got multiple values for argument '{name}'")
        values.update(kwargs)
        for f in fields:
            if f.init and f.name in values:
                value = values[f.name]
            elif f.default is not _MISSING:
                value = f.default
            elif f.default_factory is not _MISSING:
                value = f.default_factory()
            elif f in later:
                continue
            else:
                raise TypeError(f"{title}.__init__() missing required argument: '{f.name}'")
            object.__setattr__(self, f.name, value)
        if post_init:
            self.__post_init__()
    return __init__


def _representer(fields):
    shown = tuple(f.name for f in fields if f.repr)

    def __repr__(self):
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{type(self).__qualname__}({inner})"
    return __repr__


def _comparer(fields):
    compared = tuple(f.name for f in fields if f.compare)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        # tuples, as dataclasses compares: identical members count as equal without asking
        return tuple(getattr(self, n) for n in compared) == \
            tuple(getattr(other, n) for n in compared)
    return __eq__


def _hasher(fields):
    hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))

    def __hash__(self):
        return hash(tuple(getattr(self, name) for name in hashed))
    return __hash__


def _refuse_change(self, name, *value):
    raise dataclasses.FrozenInstanceError(f"cannot assign to field '{name}'")


def _signature(fields):
    """What `help()` and `inspect.signature` show: the fields, as a generated __init__ has."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for f in fields:
        if not f.init:
            continue
        default = f.default if f.default is not _MISSING else (
            inspect.Parameter.empty if f.default_factory is _MISSING else _FACTORY)
        params.append(inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=default, annotation=f.type))
    return inspect.Signature(params[1:])
