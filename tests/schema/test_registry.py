"""The format registry, the settings schema and the result fields: one declaration each.

Identity tests per registry row in the style of ml_dtypes' finfo tests (each row's documented
facts), the defects the single declaration fixed, and a throwaway format that the page's schema,
the command line and the reports pick up with no other edit.
"""

import json

import ml_dtypes
import numpy as np
import pytest

from quantcalc import Config, QuantcalcError, analyze
from quantcalc import api
from quantcalc.cli import main as cli
from quantcalc.schema import fields
from quantcalc.schema import registry
from quantcalc.schema import settings
from quantcalc.formats.float_grids import FLOAT_GRIDS, NF4_LEVELS
from quantcalc.formats.schemes import FAMILIES

# Documented facts of each row: element bits, levels of the element grid, largest element value,
# smallest positive normal element (floats), block size, scale bits, and bits per value for a
# 64 x 256 tensor (16,384 values, 64 rows), each worked out by hand from the format's definition.
N, ROWS = 64 * 256, 64
FACTS = {
    # name: (element bits, grid levels, max, min normal, block, bits per value)
    "fp8_e4m3": (8, 253, 448.0, 2.0 ** -6, None, 8 + 32 / N),
    "fp8_e5m2": (8, 247, 57344.0, 2.0 ** -14, None, 8 + 32 / N),
    "fp6_e2m3": (6, 63, 7.5, 1.0, None, 6 + 32 / N),
    "fp6_e3m2": (6, 63, 28.0, 0.25, None, 6 + 32 / N),
    "fp4_e2m1": (4, 15, 6.0, 1.0, None, 4 + 32 / N),
    "nf4": (4, 16, 1.0, None, 64, 4 + 32 / 64),
    "mxfp8_e4m3": (8, 253, 448.0, 2.0 ** -6, 32, 8 + 8 / 32),
    "mxfp8_e5m2": (8, 247, 57344.0, 2.0 ** -14, 32, 8 + 8 / 32),
    "mxfp6_e2m3": (6, 63, 7.5, 1.0, 32, 6 + 8 / 32),
    "mxfp6_e3m2": (6, 63, 28.0, 0.25, 32, 6 + 8 / 32),
    "mxfp4": (4, 15, 6.0, 1.0, 32, 4.25),
    "mxint8": (8, 255, 127 / 64, None, 32, 8.25),
    "nvfp4": (4, 15, 6.0, 1.0, 16, 4 + 8 / 16 + 32 / N),
    "q8_0": (8, 255, None, None, 32, 8.5),
    "q4_0": (4, 16, None, None, 32, 4.5),
    "q4_1": (4, 16, None, None, 32, 5.0),
    "q5_0": (5, 32, None, None, 32, 5.5),
    "q5_1": (5, 32, None, None, 32, 6.0),
    "q2_k": (2, 4, None, None, 16, 2.625),
    "q3_k": (3, 8, None, None, 16, 3.4375),
    "q4_k": (4, 16, None, None, 32, 4.5),
    "q5_k": (5, 32, None, None, 32, 5.5),
    "q6_k": (6, 64, None, None, 16, 6.5625),
    "iq4_nl": (4, 16, 127.0, None, 32, 4.5),
    "iq4_xs": (4, 16, 127.0, None, 32, 4.25),
    "fp8_b128": (8, 253, 448.0, 2.0 ** -6, 128, 8 + 32 / 128),
    "fp8_t128": (8, 253, 448.0, 2.0 ** -6, 128, 8 + 32 * 2 / N),  # 64 x 256: two tiles
}


def test_every_row_has_facts_here_and_a_scheme():
    assert set(FACTS) | {"int"} == set(registry.NAMES)
    for fmt in registry.FORMATS:
        assert fmt.family in FAMILIES
        assert fmt.element in ("int", "float", "codebook")
        assert set(fmt.settings) <= set(registry.FORMAT_SETTINGS)
        assert set(fmt.calibrations) <= set(settings.CALIBRATIONS)


@pytest.mark.parametrize("name", sorted(FACTS))
def test_row_identities(name):
    bits, levels, top, min_normal, block, bpv = FACTS[name]
    fmt = registry.get(name)
    assert fmt.element_bits == bits
    assert fmt.block_size == block
    x = np.random.default_rng(0).standard_normal((ROWS, 256))
    s = analyze(x, Config(format=name)).summary()
    assert s["bits"] == bits and s["bits_per_value"] == pytest.approx(bpv, rel=1e-15)
    assert s["block_size"] == block
    assert s["grid_max"] == top
    if fmt.grid in FLOAT_GRIDS:
        grid = FLOAT_GRIDS[fmt.grid]
        values = grid.representable()
        assert 2 * values.size - 1 == levels  # +-each value, one zero
        assert grid.bits == bits and values[-1] == top
        assert np.ldexp(1.0, grid.min_exponent) == min_normal
        assert min_normal == float(ml_dtypes.finfo(getattr(ml_dtypes, {
            "fp8_e4m3": "float8_e4m3fn", "fp8_e5m2": "float8_e5m2", "fp6_e2m3": "float6_e2m3fn",
            "fp6_e3m2": "float6_e3m2fn", "fp4_e2m1": "float4_e2m1fn"}[fmt.grid])).smallest_normal)
    elif name == "nf4":
        assert NF4_LEVELS.size == levels
    elif fmt.element == "codebook":
        from quantcalc.formats.ggml.types import IQ4_VALUES
        assert IQ4_VALUES.size == levels and s["q_max"] - s["q_min"] + 1 == levels
    else:  # integer codes
        assert s["q_max"] - s["q_min"] + 1 == levels


@pytest.mark.parametrize("name, heading", [
    ("nf4", "NF4 · 4-bit codebook elements · 2 blocks of 64 · float32 scale per block"),
    ("fp6_e2m3", "FP6 E2M3 · 6-bit float elements · one scale for the tensor · float32 scale"),
    ("q4_0", "GGUF Q4_0 · 4-bit integer elements · 4 blocks of 32 · fp16 scale per block"),
    ("mxfp4", "MXFP4 · 4-bit float elements · 4 blocks of 32 · E8M0 scale per block"),
])
def test_a_result_says_what_its_format_is(name, heading):
    # the defect: every one of these reported bits 8 and was headed "8-bit symmetric"
    s = analyze(np.linspace(-1, 1, 128), Config(format=name)).summary()
    assert s["description"] == heading
    assert s["bits"] == registry.get(name).element_bits


def test_nf4_reports_blocks_and_codes_not_an_integer_grid():
    s = analyze(np.array([-1.25, -0.92, 0.14, 0.79, 1.46]), Config(format="nf4")).summary()
    assert s["segment_kind"] == "block" and s["segments"] == 1 and s["granularity"] is None
    assert s["zero_point"] is None and (s["q_min"], s["q_max"]) == (0, 15)
    assert s["grid_max"] == 1.0 and s["scale"] == [1.46]
    assert s["rounding"] is None  # NF4 takes the nearest level: no rounding setting applies


def test_q4_0_says_what_its_negative_scale_and_zero_point_mean():
    s = analyze(np.array([-1.0, 2.0] + [0.0] * 30), Config(format="q4_0")).summary()
    assert s["scale"] == [-0.25] and s["zero_point"] == [8]  # d = 2 / -8; x = (q - 8) d
    assert any("negative d means" in note for note in s["notes"])


def test_clipped_means_the_same_for_every_format():
    # Q4_0: -2.0 in a block whose largest value is +2.0 wants code 8.5 + 8 -> 16, clamped to 15
    # (x = (15 - 8)(-0.25) = -1.75): that value is clipped, as an integer code past q_max is.
    r = analyze(np.array([2.0, -2.0, 1.0] + [0.0] * 29), Config(format="q4_0"))
    assert r.per_value.codes.tolist() == [0, 15, 4] + [8] * 29
    assert r.per_value.clipped.tolist() == [False, True] + [False] * 30
    assert r.metrics["clip_count"] == 1 and r.per_value.dequantized[1] == -1.75
    # integer: a code past q_max; FP4 with a custom range: past the grid's largest value
    assert analyze(np.array([3.0, 1.0]), Config(bits=4, calibration="custom", range_min=-1,
                                                 range_max=1)).metrics["clip_count"] == 1
    assert analyze(np.array([3.0, 1.0]), Config(format="fp4_e2m1", calibration="custom",
                                                 range_min=-1, range_max=1)).metrics[
        "clip_count"] == 1
    # absmax-scaled blocks whose largest value lands exactly on the grid's end clip nothing
    for name in ("nf4", "q8_0", "fp8_e4m3"):
        assert analyze(np.array([2.0, -2.0, 1.0] + [0.5] * 29), Config(format=name)).metrics[
            "clip_count"] == 0


@pytest.mark.parametrize("given, field", [
    (dict(format="q4_0", rounding="floor"), "rounding"),
    (dict(format="nf4", rounding="stochastic"), "rounding"),
    (dict(format="mxfp4", granularity="channel"), "granularity"),
    (dict(format="q8_0", bits=4), "bits"),
    (dict(format="int", block_size=64), "block_size"),
    (dict(format="fp8_e4m3", calibration="entropy"), "calibration"),
    (dict(seed=-1, rounding="stochastic"), "seed"),
    (dict(group_size="99999999999999999999999", granularity="group"), "group_size"),
    (dict(bits="８"), "bits"),  # a full-width digit: the page's link check refuses it too
    (dict(bit=4), "config"),   # a typo is not silently the default
])
def test_settings_the_format_or_schema_rules_out_are_refused_at_their_field(given, field):
    with pytest.raises(QuantcalcError) as err:
        Config.from_dict(given)
    assert err.value.field == field


def test_settings_that_agree_with_the_format_or_do_not_matter_are_accepted():
    assert Config.from_dict({"format": "q4_0", "bits": 4, "block_size": 32}).format == "q4_0"
    assert Config.from_dict({"format": "fp8_e4m3", "mode": "symmetric"}).effective("mode") \
        == "symmetric"
    # a percentile left over from an earlier choice plays no part in min-max
    config = Config.from_dict({"calibration": "minmax", "percentile": "99.9"})
    assert not config.applies("percentile") and config.effective("percentile") is None
    assert Config.from_dict({"narrow_range": "on"}).narrow_range is True
    assert Config.from_dict({"narrow_range": "off"}).narrow_range is False


def test_the_page_schema_is_the_engines_declaration():
    schema = settings.page_schema()
    by_key = {s["key"]: s for s in schema["settings"]}
    assert list(by_key) == [s.key for s in settings.SETTINGS]
    assert [c["value"] for c in by_key["format"]["choices"]] == list(registry.NAMES)
    for key in ("mode", "rounding", "calibration", "granularity"):
        assert [c["value"] for c in by_key[key]["choices"]] == list(settings.BY_KEY[key].values)
    assert [f["key"] for f in schema["fields"]] == list(fields.KEYS)
    assert "on" in schema["true_words"] and "off" in schema["false_words"]
    # every format says why each control it turns off is off
    for fmt in registry.FORMATS:
        off = schema["not_applicable"][fmt.name]
        assert set(off) == {k for k in registry.FORMAT_SETTINGS if not fmt.applies(k)}
        assert all(fmt.label in reason for reason in off.values())
    json.dumps(schema)  # plain JSON


def test_the_range_source_note_says_how_each_llama_cpp_type_finds_its_scales():
    """Beside the disabled range source: the legacy types read each block's extremes (searched
    only with an importance matrix; Q8_0 never), the K-quants and IQ types always search."""
    def why(name):
        return settings.not_applicable_reason("calibration", registry.get(name))
    assert why("q8_0") == "GGUF Q8_0 takes each block's scale from its largest magnitude."
    assert why("q4_1") == ("GGUF Q4_1 takes each block's scale and min from its smallest and "
                           "largest value, or by ggml's weighted search with an importance matrix.")
    assert "largest magnitude, or by ggml's weighted search" in why("q4_0")
    assert why("q4_k") == "GGUF Q4_K finds each block's scale and min by its own search."
    for name in ("q3_k", "q6_k", "iq4_nl", "iq4_xs"):  # symmetric: no min
        assert why(name).endswith("finds each block's scale by its own search.")


def test_a_control_turned_off_shows_what_the_format_does_instead():
    """Not the user's kept choice: a greyed "Per tensor" beside Q4_0 would read as in force."""
    q4_0, tiles, int_format = (registry.get(n) for n in ("q4_0", "fp8_t128", "int"))
    assert settings.shown_when_off("granularity", q4_0) == "Blocks of 32"
    assert settings.shown_when_off("rounding", q4_0) == "The format's own rule"
    assert settings.shown_when_off("granularity", tiles) == "Tiles of 128×128"
    assert settings.not_applicable_reason("granularity", tiles) == \
        "FP8 E4M3, 128×128 tiles (DeepSeek) has fixed tiles of 128×128 values."
    assert settings.shown_when_off("mode", q4_0) is None  # it shows its fixed value instead
    # Q4_1's x̂ = q d + m has a min, not the integer zero point of "Asymmetric (..., zero point)"
    for name in ("q4_1", "q5_1", "q2_k", "q4_k", "q5_k"):
        assert settings.shown_when_off("mode", registry.get(name)) == \
            "Asymmetric (a scale and a min)", name
    assert settings.shown_when_off("granularity", int_format) is None  # the user's to choose
    schema = settings.page_schema()["shown_when_off"]
    assert schema["q4_0"] == {"rounding": "The format's own rule", "granularity": "Blocks of 32"}
    assert "int" not in schema or schema["int"] == {}


def test_a_new_format_is_one_registry_row(tmp_path, capsys):
    """A throwaway format: FP8 E4M3 scaled per block of 64. One row, an existing scheme class;
    the page's schema, the command line, the configuration and the reports pick it up."""
    row = registry.Format(
        "fp8_b64", "FP8 E4M3 b64", "Block formats", "float", "float", 8, grid="fp8_e4m3",
        block_size=64, settings=frozenset({"rounding"}), fixed={"mode": "symmetric"},
        rule="E4M3 elements with one float32 scale per block of 64")
    registry.add(row)
    try:
        schema = settings.page_schema()
        assert "fp8_b64" in [c["value"] for c in schema["settings"][1]["choices"]]
        assert "granularity" in schema["not_applicable"]["fp8_b64"]
        x = np.random.default_rng(1).standard_normal(256)
        s = analyze(x, Config(format="fp8_b64")).summary()
        assert s["segments"] == 4 and s["bits_per_value"] == 8 + 32 / 64
        np.save(tmp_path / "x.npy", x)
        assert cli.main(["analyze", str(tmp_path / "x.npy"), "--format", "fp8_b64", "--json", "-"]) == 0
        assert json.loads(capsys.readouterr().out)["format_label"] == "FP8 E4M3 b64"
    finally:
        registry.remove("fp8_b64")


def test_one_analysis_serves_the_numbers_the_figures_and_the_downloads(monkeypatch):
    calls = []
    from quantcalc.engine import analysis
    real = analysis.analyze
    monkeypatch.setattr(analysis, "analyze", lambda *a, **k: calls.append(1) or real(*a, **k))
    config, source = {"bits": 4}, {"text": "1 2 3 4"}
    assert "summary" in api.analyze(config, source, "request-1")
    assert api.export(config, source, "summary_csv", "request-1")["bytes"]
    assert api.export(config, source, "json", "request-1")["bytes"]
    assert len(calls) == 1
    api.export(config, source, "json")  # no id: computed afresh, as the CLI does
    assert len(calls) == 2
