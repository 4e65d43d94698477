"""No text in a PDF report is clipped (issue 27): every page each report saves is drawn, and each
text artist's extent is compared with the page's bounds and, in a table, with its own cell's (a
cell's white face hides what runs past it: the scan's worst tensors were all "encoder.layer.5").

The reports are made from long, real-style names (BERT, Llama, a vision tower's), so a name that
does not fit is shown wrapped or abbreviated from the left, its distinguishing tail kept."""

import numpy as np
import pytest

from quantcalc import Config, analyze
from quantcalc.readers import checkpoint
from quantcalc.reports import exports
from quantcalc.reports import tables as report
from quantcalc.scan import model_scan as scan
from quantcalc.scan import report as scan_report
from tests.support import checkpoints as C

LONG = "vision_tower.vision_model.encoder.layers.26.self_attn.out_proj.weight"
BERT = "encoder.layer.0.attention.output.dense.weight"
SLACK = 0.6  # display pixels at 72 dpi (points): rounding of the extents, not a visible cut


def saved_pages(make_pdf, monkeypatch):
    """The figures a PDF report saves, one per page, kept to be drawn again."""
    from matplotlib.backends.backend_pdf import PdfPages
    saved = []
    original = PdfPages.savefig

    def keep(self, figure=None, **kwargs):
        saved.append(figure)
        return original(self, figure, **kwargs)

    monkeypatch.setattr(PdfPages, "savefig", keep)
    assert make_pdf().startswith(b"%PDF-")
    return saved


def _inside(inner, outer):
    return (inner.x0 >= outer.x0 - SLACK and inner.x1 <= outer.x1 + SLACK
            and inner.y0 >= outer.y0 - SLACK and inner.y1 <= outer.y1 + SLACK)


def clipped(page):
    """The texts of a page drawn (Agg, 72 dpi) beyond the page or beyond their table cell."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.table import Cell, Table
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(page)
    page.set_dpi(72)
    canvas.draw()
    renderer = canvas.get_renderer()
    bad = []
    in_cells = set()
    for drawn in page.findobj(Table):
        for cell in drawn.get_celld().values():
            text = cell.get_text()
            in_cells.add(id(text))
            if text.get_text() and not _inside(text.get_window_extent(renderer),
                                               cell.get_window_extent(renderer)):
                bad.append(f"cell: {text.get_text()!r}")
    texts = [t for t in page.findobj(Text) if t.get_visible() and t.get_text()]
    texts += [c.get_text() for c in page.findobj(Cell) if c.get_text().get_text()]
    for text in texts:
        if not _inside(text.get_window_extent(renderer), page.bbox):
            bad.append(f"page: {text.get_text()!r}")
    return bad


def all_texts(pages):
    from matplotlib.table import Cell
    from matplotlib.text import Text
    out = []
    for page in pages:
        out += [t.get_text() for t in page.findobj(Text)]
        out += [c.get_text().get_text() for c in page.findobj(Cell)]
    return [t for t in out if t]


def assert_nothing_clipped(pages):
    problems = {k: clipped(page) for k, page in enumerate(pages)}
    assert not {k: v for k, v in problems.items() if v}, problems


def _shown_names(pages, names):
    """The table cells that show a tensor, wrapped lines joined: each is the whole name, or
    "…" and a tail of it that starts after a dot (never "yer.5.attention...")."""
    from matplotlib.table import Cell
    shown = []
    for page in pages:
        for cell in page.findobj(Cell):
            text = cell.get_text().get_text().replace("\n", "")
            tail = text.removeprefix("…")
            owners = [name for name in names if len(tail) > 12 and name.endswith(tail)]
            if not owners:
                continue
            if tail == text:
                assert text in owners, text
            else:
                assert any(name[-len(tail) - 1] in "._/" for name in owners), text
            shown.append(text)
    return shown


def _long_names(tensors, prefix):
    return [(prefix + name, shape) for name, shape in tensors]


@pytest.fixture(scope="module")
def long_scan(tmp_path_factory):
    """A scan of a BERT-style checkpoint whose names are long (and one longer still), under
    three formats: Q4_K refuses its rows of 384 for Q5_0."""
    folder = tmp_path_factory.mktemp("long")
    tensors = C.bert_tensors(layers=2, hidden=384, ffn=384, vocab=64) + [(LONG, (64, 384))]
    arrays = C.make_arrays(tensors)
    C.write_safetensors(folder / "model.safetensors", arrays)
    doc = scan.scan(checkpoint.open_checkpoint([folder / "model.safetensors"]),
                    scan.formats_from_specs(["format=int bits=8", "q4_k", "q8_0"]))
    return doc, list(arrays)


def test_the_scan_pdf_shows_whole_or_tail_names_and_clips_nothing(long_scan, monkeypatch):
    doc, names = long_scan
    pages = saved_pages(lambda: scan_report.pdf_bytes(doc), monkeypatch)
    assert_nothing_clipped(pages)
    worst = [p for p in pages if any("Worst" in t.get_text() for t in p.texts)]
    assert len(worst) == 3
    shown = _shown_names(worst[:1], names)
    # every row names its tensor by a distinguishing tail: no two rows look the same
    assert len(shown) == min(len(names), scan_report.WORST_ROWS) - sum(
        1 for r in doc["tensors"] if r["results"][0]["sqnr_db"] is None)
    assert len(set(shown)) == len(shown)
    assert any(s.endswith("attention.output.dense.weight") for s in shown)


def test_the_compare_pdf_shows_its_title_headers_and_skipped_formats(monkeypatch):
    from quantcalc.engine.compare import PRESETS, bit_sweep, compare
    x = np.random.default_rng(1).standard_normal((8, 384)).astype(np.float32)
    skipped, notes = [], []
    rows = compare(x, PRESETS["common"] + PRESETS["llama.cpp"], BERT, skipped, notes)
    assert skipped  # the K-quants refuse rows of 384
    done = {"name": BERT, "rows": rows, "sweep": bit_sweep(x), "skipped": skipped,
            "notes": notes}
    pages = saved_pages(lambda: exports.comparison_pdf(done), monkeypatch)
    assert_nothing_clipped(pages)
    text = " ".join(all_texts(pages)).replace("\n", " ")
    assert BERT in text.replace(" ", "")
    for item in skipped:
        assert item["label"] in text
    assert "llama-quantize writes such a tensor as Q5_0" in text


def test_the_calculator_pdf_clips_no_label_value_or_note(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((64, 384)).astype(np.float32)
    result = analyze(x, Config(bits=8, mode="asymmetric", granularity="group", group_size=128,
                               calibration="percentile", name=LONG))
    result.hints = [{"kind": "structure", "text": f"Per channel (axis 0) gives SQNR +{k}.8 dB "
                     f"for +0.003 bits per value, measured on all {x.size} values; groups of "
                     f"128 along the last axis give +{k}.1 dB for +0.25 bits per value."}
                    for k in range(12)]  # more than the first page holds below the tables
    monkeypatch.setattr(report, "PDF_TABLE_ROWS", 60)  # two pages of the per-value table
    pages = saved_pages(lambda: report.pdf(result), monkeypatch)
    assert_nothing_clipped(pages)
    first = " ".join(all_texts(pages[:1]))
    assert "Range widened to include 0" in first.replace("\n", " ")
    assert "self_attn.out_proj.weight" in first.replace("\n", "")


def test_the_plan_pdf_clips_nothing(tmp_path, monkeypatch):
    from quantcalc.plan import report as plan_report
    tensors = _long_names(C.llama_tensors(layers=2, hidden=256, ffn=512, vocab=256),
                          "multi_modal_projector.language_model.")
    arrays = C.make_arrays(tensors)
    C.write_safetensors(tmp_path / "model.safetensors", arrays)
    doc = scan.scan(checkpoint.open_checkpoint([tmp_path / "model.safetensors"]),
                    scan.formats_from_specs(["q8_0", "q6_k", "q5_k", "q4_k", "q4_0", "q3_k",
                                             "q2_k"]))
    plan = plan_report.build(doc, target_bpw=4.8)
    pages = saved_pages(lambda: plan_report.pdf_bytes(plan), monkeypatch)
    assert_nothing_clipped(pages)
    shown = _shown_names(pages, list(arrays))
    assert len(shown) == len(arrays)
    assert any(s.endswith("layers.1.mlp.down_proj.weight") for s in shown)


def test_a_name_too_long_for_its_lines_keeps_its_tail_from_a_dot():
    from quantcalc.reports import text_fit
    name = "model.layers.27.block_sparse_moe.experts.63.w2.weight"
    room = text_fit.width("experts.63.w2.weight", 8.5) + 1
    assert text_fit.tail_lines(name, room, 8.5, lines=1) == ["…63.w2.weight"]
    two = text_fit.tail_lines(name, room, 8.5, lines=2)
    assert two[-1] == "experts.63.w2.weight" and two[0].startswith("…")
    assert name.endswith("".join(two).removeprefix("…"))
    assert text_fit.tail_lines("short.name", room, 8.5, lines=1) == ["short.name"]
    # decimals are not places to break a line
    assert text_fit.pieces("192 groups: 0.01456") == ["192 ", "groups: ", "0.01456"]
