"""Properties of the production path over hostile files on disk (issue 26, second round): random
headers and bytes, truncations and bit flips of valid files, written to files and given to
checkpoint.open_checkpoint and checkpoint.read_tensor (what `scan` and `analyze FILE` run) and
to imatrix.read. Whatever the bytes: a QuantcalcError with a one-line message, or arrays of the
shape the listing gave, never another exception, never a warning, never a hang (sizes stay
small)."""

import json
import os
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from quantcalc import QuantcalcError
from quantcalc.readers import checkpoint, imatrix
from tests.readers import gguf_builder as G
from tests.readers.test_imatrix import write_gguf_imatrix, write_legacy_imatrix

gguf = pytest.importorskip("gguf", reason="llama.cpp's gguf package is a test dependency")

# QUANTCALC_HOSTILE_EXAMPLES=5000 for a longer hunt
SETTINGS = settings(max_examples=int(os.environ.get("QUANTCALC_HOSTILE_EXAMPLES", 150)),
                    deadline=5000,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# numbers a header may claim: small, edges of the integer types, and the sizes that overflow
NUMBERS = st.one_of(st.integers(0, 40), st.sampled_from(
    [64, 255, 256, 257, 1 << 31, (1 << 32) - 1, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1]))


def refused_or_read(path, suffix):
    """Open the file as the scan does, read each listed tensor as `analyze FILE --tensor` does
    (and in slabs as the scan does): a QuantcalcError, or each tensor's values."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            model = checkpoint.open_checkpoint([path])
        except QuantcalcError as exc:
            return _one_line(exc)
        for entry in model.tensors:
            try:
                values = checkpoint.read_tensor(str(path), entry.name)
            except QuantcalcError as exc:
                _one_line(exc)
                continue
            assert isinstance(values, np.ndarray) and values.shape == tuple(entry.shape)
            assert values.dtype in (np.float32, np.float64)
            if entry.readable or entry.quantized:
                slabs = [s for _, s in checkpoint.SlabReader(entry).slabs(2)]
                assert sum(s.size for s in slabs) == values.size


def _one_line(exc):
    assert exc.message and "\n" not in exc.message and "Traceback" not in exc.message
    return exc


def _on_disk(data: bytes, suffix: str, check):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"hostile.{suffix}"
        path.write_bytes(data)
        return check(path, suffix)


# ---------------------------------------------------------------- safetensors
DTYPES = st.one_of(st.sampled_from(["F32", "F16", "BF16", "F64", "I8", "I32", "U8"]),
                   st.sampled_from(["I16", "I64", "F8_E4M3", "", "f32"]))
SMALL = st.sampled_from([0, 1, 2, 3, 4, 8, 32])
SHAPES = st.one_of(st.lists(SMALL, max_size=3), st.lists(
    st.one_of(NUMBERS, st.sampled_from([-1, 1.5, "3", None])), max_size=4))
WIDTH = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I8": 1, "I32": 4, "U8": 1, "I16": 2, "I64": 8}


@st.composite
def safetensors_files(draw):
    """Mostly entries whose offsets follow from their shapes, each field sometimes a lie."""
    header, at = {}, 0
    for name in draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=4, unique=True)):
        dtype, shape = draw(DTYPES), draw(SHAPES)
        count = int(np.prod([n for n in shape if isinstance(n, int)] or [1])) \
            if all(isinstance(n, int) and 0 <= n < 64 for n in shape) else 1
        end = at + count * WIDTH.get(dtype, 1)
        offsets = draw(st.one_of(st.just([at, end]), st.just([at, end]), st.lists(
            st.one_of(NUMBERS, st.sampled_from([-8, 2.0])), max_size=3)))
        header[name] = draw(st.one_of(st.just({"dtype": dtype, "shape": shape,
                                                "data_offsets": offsets}),
                                       st.sampled_from([[], "x", 3, None, {}])))
        at = end
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.sampled_from([{"format": "pt"}, [], "x", None]))
    text = json.dumps(header).encode()
    length = draw(st.one_of(st.just(len(text)), st.just(len(text)), NUMBERS))
    payload = draw(st.binary(min_size=at, max_size=at + 16) if at < 4096 else st.binary())
    return struct.pack("<Q", length % (1 << 64)) + text + payload


@SETTINGS
@given(data=safetensors_files())
def test_random_safetensors_headers_are_refused_or_read(data):
    _on_disk(data, "safetensors", refused_or_read)


def _valid_safetensors():
    tensors = {"f32": ("F32", [3, 8], np.linspace(-2, 2, 24).astype("<f4").tobytes()),
               "f16": ("F16", [2, 4], np.linspace(-1, 1, 8).astype("<f2").tobytes()),
               "i8": ("I8", [5], bytes(range(5))), "s": ("F64", [], struct.pack("<d", 0.5))}
    return G.safetensors_bytes(tensors)


VALID_SAFETENSORS = _valid_safetensors()


@SETTINGS
@given(flips=st.lists(st.integers(0, len(VALID_SAFETENSORS) * 8 - 1), max_size=6),
       cut=st.one_of(st.just(len(VALID_SAFETENSORS)), st.integers(0, len(VALID_SAFETENSORS))))
def test_damaged_safetensors_are_refused_or_read(flips, cut):
    _on_disk(_damaged(VALID_SAFETENSORS, flips, cut), "safetensors", refused_or_read)


def _damaged(data, flips, cut):
    raw = bytearray(data)
    for bit in flips:
        raw[bit // 8] ^= 1 << (bit % 8)
    return bytes(raw[:cut])


# ---------------------------------------------------------------- GGUF
TYPE_NUMBERS = st.one_of(st.sampled_from([0, 1, 2, 3, 8, 10, 12, 14, 20, 23, 24, 26, 28, 30]),
                         st.integers(0, 50), st.just((1 << 32) - 1))
SCALAR_VALUES = {0: st.integers(0, 255), 1: st.integers(-128, 127), 2: st.integers(0, 65535),
                 3: st.integers(-32768, 32767), 4: st.integers(0, (1 << 32) - 1),
                 5: st.integers(-(1 << 31), (1 << 31) - 1), 6: st.floats(width=32),
                 7: st.booleans(), 10: st.integers(0, (1 << 64) - 1),
                 11: st.integers(-(1 << 63), (1 << 63) - 1), 12: st.floats()}


KINDS = sorted(SCALAR_VALUES) + [G.STRING]


def values_of(kind, depth):
    """A metadata value of `kind` (an array: an item type and up to three items)."""
    if kind == G.STRING:
        return st.binary(max_size=12)
    if kind != G.ARRAY:
        return SCALAR_VALUES[kind]
    items = st.sampled_from(KINDS + ([G.ARRAY] if depth < 2 else []))
    return items.flatmap(lambda item: st.tuples(st.just(item), st.lists(
        values_of(item, depth + 1), max_size=3)))


@st.composite
def metadata_values(draw):
    kind = draw(st.sampled_from(KINDS + [G.ARRAY]))
    return kind, draw(values_of(kind, 0))


# hypothesis draws 0 (and its other bounds) often: the rare case is a band in the middle
RARELY = st.integers(0, 99).map(lambda i: 40 <= i < 55)


def _mostly(usual, others):
    """`usual`, or now and then one of `others`."""
    return RARELY.flatmap(lambda rare: st.sampled_from(others) if rare else st.just(usual))


KNOWN_TYPES = st.sampled_from([0, 1, 2, 3, 6, 8, 10, 12, 14, 20, 23, 24, 26, 28, 30, 9, 16])


@st.composite
def gguf_tensors(draw, names=("w", "v", "u", "t")):
    """Mostly tensors of known types whose data follows one another, each field sometimes a
    lie (a huge dimension, an unknown type, an offset anywhere)."""
    tensors, at = [], 0
    names = draw(st.lists(st.sampled_from(names), min_size=int(not draw(RARELY)),
                          max_size=4, unique=True))
    if names and draw(RARELY):
        names.append(names[0])  # a name twice
    for name in names:
        kind = draw(TYPE_NUMBERS if draw(RARELY) else KNOWN_TYPES)
        block = {2: 32, 3: 32, 6: 32, 8: 32, 20: 32, 9: 32}.get(kind, 256 if kind in (
            10, 12, 14, 23, 16) else 1)
        rows = draw(st.lists(st.sampled_from([1, 2, 3]), max_size=2))
        dims = [block * draw(st.sampled_from([1, 2, 0]))] + rows
        if draw(RARELY):
            dims = draw(st.lists(NUMBERS, max_size=5))
        offset = draw(NUMBERS) if draw(RARELY) else at
        tensors.append((name, dims, kind, offset))
        at += 1024  # room for 2 x 2 x 3 blocks of the largest type
    return tensors


@st.composite
def gguf_files(draw, names=("w", "v", "u", "t")):
    keys = draw(st.lists(st.sampled_from(["general.architecture", "k", "imatrix.chunk_count",
                                          "imatrix.datasets"]), max_size=3, unique=True))
    if keys and draw(RARELY):
        keys.append(keys[0])  # a key twice
    metadata = [(key, *draw(metadata_values())) for key in keys]
    alignment = draw(_mostly(None, [32, 1, 64, 3, 0, 2]))
    if alignment is not None:
        kind = draw(_mostly(G.UINT32, [G.UINT64, G.BOOL, G.FLOAT32, G.INT32]))
        value = {G.BOOL: bool(alignment), G.FLOAT32: float(alignment)}.get(kind, alignment)
        metadata.append(("general.alignment", kind, value))
    data = draw(st.binary(max_size=300)) if draw(RARELY) else np.random.default_rng(
        draw(st.integers(0, 1 << 16))).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    version = draw(_mostly(3, [2, 1, 4]))
    return G.gguf_bytes(draw(gguf_tensors(names)), metadata, data, alignment=alignment or 32,
                        version=version, pad=draw(st.booleans()))


@SETTINGS
@given(data=gguf_files())
def test_random_gguf_headers_are_refused_or_read(data):
    _on_disk(data, "gguf", refused_or_read)


def _valid_gguf():
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "v.gguf"
        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_uint32("llama.block_count", 1)
        writer.add_token_list([f"t{i}" for i in range(1100)])  # skipped, not read
        writer.add_array("general.tags", ["a", "b"])
        rng = np.random.default_rng(0)
        writer.add_tensor("f32", rng.standard_normal((2, 32)).astype(np.float32))
        writer.add_tensor("f16", rng.standard_normal((3, 8)).astype(np.float16))
        q = gguf.quants.quantize(rng.standard_normal((2, 32)).astype(np.float32),
                                 gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("q8", q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("s", np.array(1.5, np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


VALID_GGUF = _valid_gguf()


@SETTINGS
@given(flips=st.lists(st.integers(0, len(VALID_GGUF) * 8 - 1), max_size=6),
       cut=st.one_of(st.just(len(VALID_GGUF)), st.integers(0, len(VALID_GGUF))))
def test_damaged_ggufs_are_refused_or_read(flips, cut):
    _on_disk(_damaged(VALID_GGUF, flips, cut), "gguf", refused_or_read)


@SETTINGS
@given(flips=st.lists(st.integers(0, 4000 * 8 - 1), min_size=1, max_size=4))
def test_bit_flips_in_a_gguf_header_are_refused_or_read(flips):
    """The header (the first 4,000 bytes, the token list included) hit harder."""
    _on_disk(_damaged(VALID_GGUF, flips, len(VALID_GGUF)), "gguf", refused_or_read)


def test_the_valid_files_read_whole():
    """The files the damage starts from read as they were written."""
    for data, suffix in ((VALID_GGUF, "gguf"), (VALID_SAFETENSORS, "safetensors")):
        def check(path, suffix):
            model = checkpoint.open_checkpoint([path])
            assert len(model.tensors) == 4
            assert refused_or_read(path, suffix) is None
        _on_disk(data, suffix, check)


# ---------------------------------------------------------------- importance matrices
def _imatrix_files():
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_gguf_imatrix(folder / "i.gguf", {"a": np.arange(64, dtype=np.float32),
                                               "b": np.ones((2, 32), np.float32)},
                           {"a": [3], "b": [[1.0], [0.0]]})
        write_legacy_imatrix(folder / "i.dat", {"a": np.arange(64, dtype=np.float32)}, ncall=2)
        return (folder / "i.gguf").read_bytes(), (folder / "i.dat").read_bytes()


IMATRIX_GGUF, IMATRIX_DAT = _imatrix_files()


def read_importance(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            matrix = imatrix.read(data, "hostile.imatrix")
        except QuantcalcError as exc:
            return _one_line(exc)
        for name, values in matrix.entries.items():
            assert values.dtype == np.float32 and values.size > 0
            assert np.all(np.isfinite(values)) and values.min() >= 0
            try:
                matrix.for_tensor(name, values.size)
            except QuantcalcError as exc:
                _one_line(exc)


@SETTINGS
@given(which=st.sampled_from([IMATRIX_GGUF, IMATRIX_DAT]),
       flips=st.lists(st.integers(0, 8 * 600 - 1), max_size=6), cut=st.integers(0, 1 << 12))
def test_damaged_importance_matrices_are_refused_or_read(which, flips, cut):
    read_importance(_damaged(which, [f % (8 * len(which)) for f in flips], cut))


@SETTINGS
@given(data=st.one_of(st.binary(max_size=200), gguf_files(
    ("a.in_sum2", "a.counts", "b.in_sum2", "b.counts")),
                      st.builds(lambda n, rest: struct.pack("<i", n) + rest,
                                st.integers(-(1 << 31), (1 << 31) - 1), st.binary(max_size=80))))
def test_random_bytes_as_an_importance_matrix_are_refused_or_read(data):
    read_importance(data)
