"""Comparing configurations: order, Pareto front, presets, the sweep, reports and the CLI."""

import csv
import io
import json

import numpy as np
import pytest

from quantcalc import QuantcalcError
from quantcalc.reports import tables as report
from quantcalc.engine.compare import PRESETS, bit_sweep, compare, mark_pareto, parse_spec

from tests.cli.test_cli import run


def test_pareto_front_on_a_known_case():
    rows = mark_pareto([
        {"label": "a", "bits_per_value": 4.0, "sqnr_db": 20.0},
        {"label": "b", "bits_per_value": 4.5, "sqnr_db": 19.0},   # more bits, less SQNR
        {"label": "c", "bits_per_value": 4.5, "sqnr_db": 22.0},
        {"label": "d", "bits_per_value": 8.0, "sqnr_db": 22.0},   # same SQNR, more bits
        {"label": "e", "bits_per_value": 8.5, "sqnr_db": 45.0},
    ])
    assert [r["label"] for r in rows if r["pareto"]] == ["a", "c", "e"]


def test_rows_are_sorted_by_bits_and_measured_per_configuration():
    x = np.random.default_rng(0).standard_normal((32, 128)).astype(np.float32)
    rows = compare(x, PRESETS["common"], "w")
    bits = [r["bits_per_value"] for r in rows]
    assert bits == sorted(bits) and len(rows) == len(PRESETS["common"])
    by_label = {r["label"]: r for r in rows}
    assert by_label["MXFP4"]["bits_per_value"] == 4.25
    assert by_label["Q8_0"]["bits_per_value"] == 8.5
    assert by_label["INT8"]["sqnr_db"] > by_label["INT4 per-channel"]["sqnr_db"] + 20
    assert by_label["FP8 E4M3"]["sqnr_db"] > by_label["FP8 E5M2"]["sqnr_db"]
    assert by_label["Q8_0"]["pareto"]  # the most bits here and the best SQNR


def test_rows_that_do_not_fit_the_values_are_skipped_with_the_reason():
    skipped = []
    rows = compare(np.linspace(-1, 1, 64), ["format=int bits=8 granularity=channel",
                                            "format=int bits=8", "format=q4_k"], skipped=skipped)
    assert [r["label"] for r in rows] == ["INT8"]
    assert [s["label"] for s in skipped] == ["INT8 per-channel", "Q4_K"]
    assert "two or more dimensions" in skipped[0]["reason"]
    assert "multiple of 256" in skipped[1]["reason"]
    with pytest.raises(QuantcalcError, match="no configuration fits these values"):
        compare(np.ones(8), ["format=q5_k"])


def test_bad_specs_are_all_named_at_once():
    with pytest.raises(QuantcalcError, match="not key=value"):
        parse_spec("format int")
    with pytest.raises(QuantcalcError) as err:
        compare(np.ones(4), ["format=int bits=4 narrow_range=maybe", "format=int",
                             "format=int bits=99", "bit=3"])
    message = err.value.message
    assert "narrow_range must be true or false" in message and "between 2 and 16" in message
    assert "unknown setting 'bit'" in message and err.value.field == "configs"


def test_sweep_gains_about_6_db_per_bit():
    points = bit_sweep(np.random.default_rng(1).uniform(-1, 1, 20_000))
    assert [p["bits"] for p in points] == list(range(2, 17))
    gains = np.diff([p["sqnr_db"] for p in points])[6:]
    assert np.allclose(gains, 6.02, atol=0.15)


def test_few_values_get_the_note_that_scales_dominate_their_size():
    notes = []
    # 64 values: INT8 per tensor pays 32 / 64 = 0.5 bits of scale (5.9 %), INT4 per group of 8
    # 32 / 8 = 4 bits per value of scales on 4 bits of codes (50 %)
    compare(np.linspace(-1, 1, 64), ["format=int bits=8",
                                     "format=int bits=4 granularity=group group_size=8"],
            notes=notes)
    [note] = notes
    assert note.startswith("Only 64 values") and "up to 50% of it, INT4 g8" in note
    notes = []
    compare(np.linspace(-1, 1, 64), ["format=int bits=8"], notes=notes)
    assert notes == []  # 5.9 % is not worth a word
    notes = []
    compare(np.linspace(-1, 1, 4096), ["format=int bits=4 granularity=group group_size=8"],
            notes=notes)
    assert notes == []  # a full-size tensor: the cost is the format's own


def test_compare_reports():
    rows = compare(np.random.default_rng(2).standard_normal((8, 64)),
                   ["format=int bits=8", "format=nf4"], "=cmd")
    table = list(csv.DictReader(io.StringIO(report.compare_csv(rows).decode())))
    assert [r["label"] for r in table] == ["NF4", "INT8"]
    assert table[0].keys() == set(report.COMPARE_HEADER)
    pdf = report.compare_pdf(rows, bit_sweep(np.linspace(-1, 1, 100)), "=cmd")
    assert pdf.startswith(b"%PDF") and b"quantcalc comparison: =cmd" in pdf


def test_cli_compare(tmp_path):
    np.save(tmp_path / "w.npy", np.random.default_rng(3).standard_normal((16, 64)))
    out = run("compare", str(tmp_path / "w.npy"), "--preset", "common", "--config",
              "format=int bits=6", "--json", "-", "--sweep", "--csv", str(tmp_path / "c.csv"),
              "--pdf", str(tmp_path / "c.pdf"))
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert len(data["rows"]) == len(PRESETS["common"]) + 1 and len(data["sweep"]) == 15
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")
    table = run("compare", "--values", "1 2 3 4", "--config", "format=int bits=4",
                "--config", "format=q8_0")
    assert table.returncode == 0 and "Q8_0" in table.stdout and "Bits / value" in table.stdout
    bad = run("compare", "--values", "1 2", "--config", "format=fp7")
    assert bad.returncode == 2 and "format must be one of" in bad.stderr


def test_cli_analyze_with_a_format():
    out = run("analyze", "--values", "7.5 -2.4 0.3", "--format", "mxfp4", "--json", "-")
    summary = json.loads(out.stdout)
    assert summary["format"] == "mxfp4" and summary["bits_per_value"] > 4.25
    assert summary["scale"] == [1.0] and summary["clip_count"] == 1


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_tradeoff_figures_point_labels_stay_inside_the_plot(preset):
    from quantcalc.reports import compare_figures
    x = np.random.default_rng(4).standard_normal((16, 256)).astype(np.float32)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    fig = compare_figures.tradeoff_figure(compare(x, PRESETS[preset]))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    box = ax.get_window_extent(renderer)
    labels = [t for t in ax.texts if t.get_text()]
    assert len(labels) == len(PRESETS[preset])
    for text in labels:
        extent = text.get_window_extent(renderer)
        assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, text.get_text()
        assert box.y0 - 1 <= extent.y0 and extent.y1 <= box.y1 + 1, text.get_text()


def test_choices_pick_the_most_sqnr_at_each_size():
    rows = mark_pareto([
        {"label": "a", "bits_per_value": 2.6, "sqnr_db": 10.0},
        {"label": "b", "bits_per_value": 4.25, "sqnr_db": 19.0},
        {"label": "c", "bits_per_value": 4.5, "sqnr_db": 23.0},
        {"label": "d", "bits_per_value": 8.0, "sqnr_db": 40.0},
        {"label": "e", "bits_per_value": 8.5, "sqnr_db": 45.0},
    ])
    from quantcalc.engine.compare import choices
    picks = [(p["budget"], p["label"]) for p in choices(rows)]
    # 8.5 -> e; 6.6 and 5.0 and 4.5 -> c (listed once, at 4.5); 3.5 and 2.7 -> a (at 2.7)
    assert picks == [(8.5, "e"), (4.5, "c"), (2.7, "a")]
    assert choices([{"label": "x", "bits_per_value": 16.0, "sqnr_db": 90.0}]) == []
