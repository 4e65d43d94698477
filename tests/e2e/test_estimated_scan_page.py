"""The page's quick estimate (issue 28), as a user meets it: "Quick estimate (±0.1 dB)" chosen
in the Scan section gives the JSON of `quantcalc scan --estimate 0.1 --estimate-seed 0` field for
field (the same seed, the same rows, one tensor per worker request); the table and totals read
"± x"; a tensor picked in the table, or the worst N, is measured again exactly and its row is
then the exact scan's; the choice defaults to Quick for a selection over 1 GiB (a real sparse
file) until the user chooses; a reload keeps the estimate."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import Watched
from quantcalc import api
from tests.e2e.helpers import axe_violations
from tests.support.checkpoints import write_safetensors
from tests.support.command import quantcalc

FORMATS = ["q4_0", "q8_0", "q4_k", "nvfp4"]
SCAN_TIMEOUT_MS = 180_000
SAMPLED = ["blk.0.attn_q.weight", "blk.0.ffn_up.weight"]


def rows_of(seed, rows, columns):
    """Weights the estimator samples (>= 2048 rows, >= 2^18 values): heavy tails, rows of
    different magnitudes, an outlier column (tests/scan/test_estimated.py's tensor)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_t(4, size=(rows, columns))
    x *= np.exp(rng.normal(0, 0.5, (rows, 1)))
    x[:, seed % columns] *= 6
    return (x * 0.02).astype(np.float32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Two sampled projections and a norm (measured exactly: 1-D), in BF16."""
    path = tmp_path_factory.mktemp("est") / "model.safetensors"
    rng = np.random.default_rng(4)
    write_safetensors(path, {
        "blk.0.attn_norm.weight": (1 + 0.1 * rng.standard_normal(256)).astype(np.float32),
        SAMPLED[0]: rows_of(5, 2048, 256), SAMPLED[1]: rows_of(9, 4096, 256)}, "BF16")
    return path


@pytest.fixture(scope="module")
def cli(checkpoint, tmp_path_factory):
    """The command line's documents: {"estimate": --estimate 0.1 --estimate-seed 0, "exact"}."""
    out = tmp_path_factory.mktemp("cli")
    docs = {}
    for kind, extra in (("estimate", ["--estimate", "0.1", "--estimate-seed", "0"]),
                        ("exact", [])):
        args = ["scan", checkpoint, "--json", out / f"{kind}.json", "--quiet", *extra]
        for spec in FORMATS:
            args += ["--format", spec]
        done = quantcalc(*args)
        assert done.returncode == 0, done.stderr
        docs[kind] = json.loads((out / f"{kind}.json").read_text())
    # the case this file is about: the estimate really sampled
    assert all(r["sqnr_ci_db"] > 0 for t in docs["estimate"]["tensors"] if t["name"] in SAMPLED
               for r in t["results"][2:])
    return docs


@pytest.fixture(scope="module")
def split(browser, server):
    """A booted page that asks scan_model for one tensor at a time (test hook scanBatchBytes),
    shared among its workers: each row comes from a scan of that tensor alone."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.add_init_script("globalThis.quantcalcTestHooks = {scanBatchBytes: 1}")
    watched = Watched(context, server.url)
    watched.open()
    yield watched
    assert watched.errors == [], watched.errors
    assert watched.foreign_requests() == []
    context.close()


def scan_quickly(page, path):
    before = int(page.evaluate("() => document.body.dataset.scans || 0"))
    page.set_input_files("#scan-files", [str(path)])
    page.get_by_label("Quick estimate (±0.1 dB)").check()
    page.select_option("#scan-preset", "custom")
    page.fill("#scan-formats", "\n".join(FORMATS))
    page.click("#scan-start")
    page.wait_for_function("(n) => Number(document.body.dataset.scans || 0) > n", arg=before,
                           timeout=SCAN_TIMEOUT_MS)


def make_exact(page, click):
    before = int(page.evaluate("() => document.body.dataset.exactRuns || 0"))
    click()
    page.wait_for_function("(n) => Number(document.body.dataset.exactRuns || 0) > n",
                           arg=before, timeout=SCAN_TIMEOUT_MS)


def downloaded(page):
    with page.expect_download() as info:
        page.click("[data-scan-download=json]")
    return json.loads(Path(info.value.path()).read_text())


def shown_sqnr(page, tensor, fmt):
    cell = page.locator(f"#scan-table tbody tr[data-tensor='{tensor}'][data-format='{fmt}'] "
                        "td[data-metric=sqnr_db]")
    return cell.inner_text(), float(cell.get_attribute("data-value"))


def test_a_quick_estimate_in_the_page_is_the_command_lines_field_for_field(split, checkpoint,
                                                                          cli, axe_source):
    page = split.page
    scan_quickly(page, checkpoint)
    # one tensor per scan_model call, on whichever worker is free: the seed alone draws the rows
    assert downloaded(page) == cli["estimate"]
    assert page.get_by_label("Quick estimate (±0.1 dB)").is_checked()
    assert page.text_content("#scan-status") == ("Scanned 3 tensors under 4 formats. A quick "
                                                 "estimate: each SQNR within ±0.1 dB (95 % "
                                                 "interval), seed 0.")
    header = page.inner_text("#scan-estimate-note")
    assert header.startswith("Quick estimate (±0.1 dB, seed 0): 2 of 3 tensors")
    for tensor in cli["estimate"]["tensors"]:
        for result in tensor["results"]:
            text, value = shown_sqnr(page, tensor["name"], result["format"])
            assert value == result["sqnr_db"]
            half = result["sqnr_ci_db"]
            assert text.endswith(f" ± {half:.2g}") if half else "±" not in text
    for total in cli["estimate"]["totals"]:
        cell = page.locator(f"#scan-totals-table tr[data-format='{total['format']}'] "
                            "td[data-metric=total_error]")
        assert float(cell.get_attribute("data-value")) == total["total_error"]
        assert (f" ± {total['total_error_ci']:.2g}" in cell.inner_text()) == \
            (total["total_error_ci"] > 0)
    assert page.locator("#scan-figures-note").is_visible()
    # the 1-D norm is measured exactly: no box to pick it, it says so
    norm = page.locator("#scan-table tbody tr[data-tensor='blk.0.attn_norm.weight'] "
                        "td[data-metric=pick]").first
    assert norm.inner_text() == "exact"
    page.get_by_label(f"Pick {SAMPLED[0]} to measure exactly").first.check()
    assert axe_violations(page, axe_source) == []  # the choice, the picks, the controls


def test_make_exact_on_a_row_gives_the_exact_scans_row_and_totals_from_the_engine(split,
                                                                                 checkpoint,
                                                                                 cli):
    page = split.page
    scan_quickly(page, checkpoint)
    picked = SAMPLED[1]
    page.get_by_label(f"Pick {picked} to measure exactly").first.check()
    button = page.get_by_role("button", name="Make the 1 picked tensor exact")
    make_exact(page, button.click)
    doc = downloaded(page)
    exact = {t["name"]: t for t in cli["exact"]["tensors"]}
    estimated = {t["name"]: t for t in cli["estimate"]["tensors"]}
    got = {t["name"]: t for t in doc["tensors"]}
    assert got[picked] == exact[picked]
    assert got[SAMPLED[0]] == estimated[SAMPLED[0]]  # not picked: still the estimate
    # the totals of those rows, as the engine builds them (an estimate still: one tensor is)
    rows = [got[t["name"]] for t in cli["estimate"]["tensors"]]
    assert doc == api.scan_document([str(checkpoint)], FORMATS, rows, estimate_db=0.1,
                                    estimate_seed=0)["document"]
    for result in exact[picked]["results"]:
        text, value = shown_sqnr(page, picked, result["format"])
        assert value == result["sqnr_db"] and "±" not in text
    assert "Measured 1 of 1 tensor exactly" in page.text_content("#scan-status")
    assert "1 made exact since" in page.inner_text("#scan-estimate-note")
    assert page.locator(f"#scan-table tbody tr[data-tensor='{picked}'] td[data-metric=pick]"
                        ).first.inner_text() == "exact"


def test_making_the_worst_exact_until_none_is_left_gives_the_exact_scan(split, checkpoint,
                                                                         cli):
    page = split.page
    scan_quickly(page, checkpoint)
    page.fill("#scan-exact-count", "1")
    worst = page.get_by_role("button", name="Make the worst 1 exact")
    # the lowest SQNR shown is an estimate of the larger projection (Q4_0 18.11 dB)
    first = page.locator("#scan-table tbody tr").first.get_attribute("data-tensor")
    make_exact(page, worst.click)
    doc = downloaded(page)
    exact = {t["name"]: t for t in cli["exact"]["tensors"]}
    assert {t["name"]: t for t in doc["tensors"]}[first] == exact[first]
    assert doc["estimate"] == {"db": 0.1, "seed": 0}
    page.fill("#scan-exact-count", "5")  # more than are left: all of them
    make_exact(page, page.get_by_role("button", name="Make the worst 5 exact").click)
    assert downloaded(page) == cli["exact"]  # no estimate left: the exact scan, field for field
    assert page.inner_text("#scan-estimate-note").startswith(
        "Exact: every tensor is measured exactly now (2 made exact after a quick estimate)")
    assert page.locator("#scan-exact-controls").is_hidden()
    assert page.locator("#scan-figures-note").is_hidden()
    assert "±" not in page.inner_text("#scan-table") + page.inner_text("#scan-totals-table")


def test_quick_is_the_default_over_1_gib_until_the_user_chooses(fresh, checkpoint, tmp_path):
    page = fresh.open()
    big = tmp_path / "big" / "model.safetensors"
    big.parent.mkdir()
    with open(big, "wb") as stream:  # sparse: no disk space used
        stream.truncate(3 * 2 ** 29)  # 1.5 GiB
    quick, exact = (page.get_by_label("Quick estimate (±0.1 dB)"), page.get_by_label("Exact"))
    assert exact.is_checked()
    page.set_input_files("#scan-files", [str(big)])
    assert quick.is_checked()
    assert "over 1 GiB" in page.inner_text("#scan-mode-note")
    page.set_input_files("#scan-files", [str(checkpoint)])
    assert exact.is_checked()
    # the user's choice wins, made with the keyboard as a radio group is
    exact.focus()
    page.keyboard.press("ArrowUp")
    assert quick.is_checked() and page.inner_text("#scan-mode-note") == ""
    page.keyboard.press("ArrowDown")
    assert exact.is_checked()
    page.set_input_files("#scan-files", [str(big)])
    assert exact.is_checked()
    group = page.get_by_role("group", name="Measure the errors")
    assert group.get_by_role("radio").count() == 2


def test_a_reload_keeps_the_estimate_and_the_files_chosen_again_make_it_exact(fresh,
                                                                            checkpoint, cli):
    page = fresh.open()
    scan_quickly(page, checkpoint)
    # kept in Cache Storage after the table is final: a reload before that finds nothing
    page.wait_for_selector("body[data-scans-kept='1']", state="attached")
    page.reload()
    page.wait_for_selector("#scan-saved-note:not([hidden])", timeout=120_000)
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=120_000)
    assert page.get_by_label("Quick estimate (±0.1 dB)").is_checked()
    assert page.input_value("#scan-formats") == "\n".join(FORMATS)
    assert page.inner_text("#scan-estimate-note").startswith("Quick estimate (±0.1 dB, seed 0)")
    text, _ = shown_sqnr(page, SAMPLED[0], "Q4_K")
    assert "±" in text
    assert "Choose the files again" in page.inner_text("#scan-exact-why")
    assert page.get_by_role("button", name="Make the worst 5 exact").is_disabled()
    page.set_input_files("#scan-files", [str(checkpoint)])
    assert page.inner_text("#scan-exact-why") == ""
    make_exact(page, page.get_by_role("button", name="Make the worst 5 exact").click)
    assert downloaded(page) == cli["exact"]
