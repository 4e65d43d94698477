"""The planner in the page on real model files (issue 23): scan -> plan -> every export the page
offers, each equal to the command line's field for field (numbers to the digit); what no tool can
make of a plan is said in words; an already-quantized GGUF says why there is nothing to plan, and
plans once re-quantizing is allowed, as `scan --allow-requantize` does.

The files are the corpus' (tests/support/corpus.py), fetched once into .cache/corpus/.
"""

import json
from pathlib import Path

import pytest

from helpers import axe_violations
from quantcalc import api
from tests.support import corpus
from tests.support.command import quantcalc

SCAN_TIMEOUT_MS = 300_000
REQUANTIZE_TIMEOUT_MS = 900_000  # SmolLM2's 211 quantized tensors, on the page's one engine
PLAN_TIMEOUT_MS = 120_000
LLAMA_PRESET = [c["spec"].removeprefix("format=") for c in
                api.compare_presets()["llama.cpp"]["configs"]]
OTHER_FORMATS = ["nvfp4", "format=int bits=8 granularity=channel", "mxfp6_e2m3"]
SMOL_FORMATS = ["q8_0", "q5_0", "q4_k"]


fetched = corpus.file_or_skip


@pytest.fixture(scope="module")
def minilm():
    return fetched("minilm-safetensors")


def scan(page, files=None, formats=None, preset=None):
    """Scan in the page (`files` None: the files chosen before) with a preset or a list."""
    done = int(page.evaluate("() => document.body.dataset.scans || 0"))
    if files:
        page.set_input_files("#scan-files", [str(f) for f in files])
    if preset:
        page.select_option("#scan-preset", preset)
    else:
        page.select_option("#scan-preset", "custom")
        page.fill("#scan-formats", "\n".join(formats))
    page.click("#scan-start")
    page.wait_for_function("(n) => Number(document.body.dataset.scans || 0) > n", arg=done,
                           timeout=SCAN_TIMEOUT_MS)
    page.wait_for_selector("#planner:not([hidden]):not([data-state=planning])",
                           timeout=PLAN_TIMEOUT_MS)


def plan_at(page, bits):
    """Type a target and wait for its plan (the output no longer marked stale)."""
    page.fill("#plan-bpw", bits)
    try:
        page.wait_for_selector(f'#plan-output:not(.qc-stale) #plan-summary[data-target="{bits}"]',
                               timeout=PLAN_TIMEOUT_MS)
    except Exception:
        raise AssertionError(f"no plan at {bits}: " + page.evaluate("""() => JSON.stringify({
          state: document.querySelector("#planner").dataset.state,
          output: document.querySelector("#plan-output").className,
          hidden: document.querySelector("#plan-output").hidden,
          target: document.querySelector("#plan-summary").dataset.target,
          value: document.querySelector("#plan-bpw").value,
          errors: [...document.querySelectorAll("#planner .qc-error")].map((e) => e.textContent),
          stale: document.querySelector("#plan-stale").textContent})""")) from None


def offered(page):
    """The plan downloads the page shows now."""
    return [b.get_attribute("data-plan-download")
            for b in page.locator("[data-plan-download]").all() if b.is_visible()]


def download(page, kind, tmp_path):
    with page.expect_download() as info:
        page.click(f"[data-plan-download={kind}]")
    name = info.value.suggested_filename
    page.wait_for_selector(f"#plan-download-status:has-text('Saved {name}')")
    assert " " not in name
    data = Path(info.value.path()).read_bytes()
    (tmp_path / f"page-{name}").write_bytes(data)
    return data


def page_scan_json(page, tmp_path):
    with page.expect_download() as info:
        page.click("[data-scan-download=json]")
    path = tmp_path / "page-scan.json"
    path.write_bytes(Path(info.value.path()).read_bytes())
    return path


def cli(*args):
    out = quantcalc(*args, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def formats_args(specs):
    return [word for spec in specs for word in ("--format", spec)]


def test_minilm_llama_cpp_types_plan_and_exports_equal_the_command_line(app, minilm, tmp_path):
    page = app.page
    app.context.grant_permissions(["clipboard-read", "clipboard-write"])
    # the model's files as a user picks them: the weights and their config.json
    scan(page, [minilm, minilm.parent / "config.json"], preset="llama.cpp")
    assert page.get_attribute("#planner", "data-state") == "planned"
    assert page.is_hidden("#plan-requantize-box")  # I64 position_ids are not "quantized"
    plan_at(page, "5.25")
    made = {kind: download(page, kind, tmp_path) for kind in offered(page)}
    # llama.cpp's types: llama-quantize makes the plan, llm-compressor does not, and says so
    assert sorted(made) == ["csv", "json", "pdf", "tensor_types"]
    assert page.text_content("#plan-ct-status") == ("No llm-compressor recipe: the plan uses "
                                                    "only llama.cpp's types, which "
                                                    "llama-quantize makes.")
    assert page.text_content("#plan-lq-status").startswith("llama-quantize makes this plan: "
                                                           "base type ")
    assert "model-f16.gguf" in page.text_content("#plan-lq-status")

    # the command line, on the same file in one go (its config.json beside it) and on the
    # page's own scan: both name the tensors for BERT
    out = tmp_path / "cli"
    cli("scan", minilm, *formats_args(LLAMA_PRESET), "--quiet", "--json",
        out.with_suffix(".scan.json"), "--plan-bpw", "5.25", "--plan-json",
        out.with_suffix(".json"), "--plan-tensor-types", out.with_suffix(".txt"), "--plan-csv",
        out.with_suffix(".csv"), "--plan-llm-compressor", out.with_suffix(".yaml"))
    cli("plan", page_scan_json(page, tmp_path), "--target-bpw", "5.25", "--json",
        tmp_path / "of-page-scan.json")
    shown = json.loads(made["json"])
    assert shown == json.loads(out.with_suffix(".json").read_bytes())
    assert shown == json.loads((tmp_path / "of-page-scan.json").read_bytes())
    assert shown["gguf"]["source"] == "config.json model_type bert"  # the page had it too
    assert made["tensor_types"] == out.with_suffix(".txt").read_bytes()
    assert made["csv"] == out.with_suffix(".csv").read_bytes()
    assert made["pdf"].startswith(b"%PDF-")
    assert out.with_suffix(".yaml").read_text().startswith("# llm-compressor recipe")
    command = shown["llama_quantize"]["command"]
    assert page.text_content("#plan-command") == command
    assert command.startswith("llama-quantize --tensor-type ")

    # Copy copies exactly the command, and says so
    page.click("#plan-copy")
    page.wait_for_selector("#plan-download-status:has-text('Copied the llama-quantize command.')")
    assert page.evaluate("navigator.clipboard.readText()") == command


def test_other_formats_say_which_tool_makes_what_and_settings_bound_the_target(app, minilm,
                                                                                tmp_path):
    """The same files scanned again under other formats (the page's scan id stays: the plan
    must still be of the new scan): an llm-compressor recipe, llama-quantize's reason, and the
    formats no tool makes, in words."""
    page = app.page
    if page.is_hidden("#scan-results"):
        page.set_input_files("#scan-files", [str(minilm)])
    scan(page, formats=OTHER_FORMATS)
    plan_at(page, "6.25")
    made_json = download(page, "json", tmp_path)
    shown = json.loads(made_json)
    assert {r["format"] for r in shown["tensors"] if not r["kept"]} <= {
        "NVFP4", "INT8 per-channel", "MXFP6 E2M3"}
    assert sorted(offered(page)) == ["csv", "json", "llm_compressor", "pdf"]
    recipe = download(page, "llm_compressor", tmp_path)
    csv = download(page, "csv", tmp_path)
    cli("plan", page_scan_json(page, tmp_path), "--target-bpw", "6.25", "--json",
        tmp_path / "p.json", "--llm-compressor", tmp_path / "p.yaml", "--csv", tmp_path / "p.csv")
    assert shown == json.loads((tmp_path / "p.json").read_bytes())
    assert recipe == (tmp_path / "p.yaml").read_bytes() and b"config_groups:" in recipe
    assert csv == (tmp_path / "p.csv").read_bytes()

    lq, ct = shown["llama_quantize"], shown["compressed_tensors"]
    assert not lq["made"] and page.is_hidden("#plan-command") and page.is_hidden("#plan-copy")
    assert page.text_content("#plan-lq-status") == \
        f"Cannot make this plan: {lq['reason']}."
    groups = page.locator("#plan-ct-groups li").all_text_contents()
    for group in ct["groups"]:
        n = len(group["targets"])
        assert any(line.startswith(f"{group['format']}: {n} module{'s' * (n != 1)}")
                   for line in groups), groups
    assert shown["not_made"], "the plan uses MXFP6 E2M3 at 6.25 bits per weight"
    said = page.locator("#plan-not-made li").all_text_contents()
    assert said == [f"No known tool makes {n['format']} ({n['tensors']} tensor"
                    f"{'s' * (n['tensors'] != 1)} of this plan): the plan measures it, but "
                    f"nothing here exports it." for n in shown["not_made"]]

    # a line that is not ROLE=FORMAT is said at its field; the plan shown is marked stale
    page.fill("#plan-min", "nonsense")
    page.wait_for_selector("#error-plan-min:not([hidden])")
    assert "ROLE=FORMAT" in page.text_content("#error-plan-min")
    assert "qc-stale" in page.get_attribute("#plan-output", "class")
    page.fill("#plan-min", "")
    page.wait_for_selector("#plan-output:not(.qc-stale)", timeout=PLAN_TIMEOUT_MS)
    # keeping the largest tensor raises the smallest plan: the target moves inside the new range
    low = float(page.get_attribute("#plan-bpw", "min"))
    page.fill("#plan-keep", "word_embeddings")
    page.wait_for_function("(low) => Number(document.querySelector('#plan-bpw').min) > low",
                           arg=low, timeout=PLAN_TIMEOUT_MS)
    page.wait_for_selector("#plan-output:not(.qc-stale)", timeout=PLAN_TIMEOUT_MS)
    assert page.is_hidden("#error-plan") and page.is_hidden("#error-plan-target")
    planned = float(page.get_attribute("#plan-summary", "data-bits-per-weight"))
    assert planned >= float(page.get_attribute("#plan-bpw", "min")) - 0.01
    assert float(page.input_value("#plan-bpw")) > 6.25
    # and dropping the keep gives the user's own target back, not the one the keep pushed it to
    page.fill("#plan-keep", "")
    page.wait_for_selector('#plan-output:not(.qc-stale) #plan-summary[data-target="6.25"]',
                           timeout=PLAN_TIMEOUT_MS)
    assert page.input_value("#plan-bpw") == "6.25"


def test_an_already_quantized_gguf_says_why_and_plans_when_re_quantizing_is_allowed(
        app, tmp_path, axe_source):
    smol = fetched("smollm2-q4_1-gguf")
    page = app.page
    scan(page, [smol], formats=SMOL_FORMATS)
    assert page.get_attribute("#planner", "data-state") == "refused"
    assert page.text_content("#plan-refusal").startswith(
        f"Nothing to plan: {smol.name} is already quantized (210 tensors in Q4_1, 1 tensor in "
        f"Q8_0); the original weights are not in it.")
    assert page.is_hidden("#plan-output") and page.is_hidden("#plan-fields")
    assert offered(page) == [] and page.is_hidden("#plan-copy")
    assert not page.is_checked("#plan-requantize")
    assert axe_violations(page, axe_source) == [], "refused"

    page.check("#plan-requantize")
    page.wait_for_selector("#planner[data-state=planned]", timeout=REQUANTIZE_TIMEOUT_MS)
    assert page.is_visible("#plan-requantized-note")
    plan_at(page, "6.25")
    made = {kind: download(page, kind, tmp_path) for kind in offered(page)}
    assert sorted(made) == ["csv", "json", "pdf", "tensor_types"]
    assert page.text_content("#plan-ct-status").startswith("No llm-compressor recipe: the scan "
                                                           "is of a GGUF file")
    out = tmp_path / "cli"
    cli("scan", smol, *formats_args(SMOL_FORMATS), "--allow-requantize", "--quiet",
        "--plan-bpw", "6.25", "--plan-json", out.with_suffix(".json"), "--plan-tensor-types",
        out.with_suffix(".txt"), "--plan-csv", out.with_suffix(".csv"))
    shown = json.loads(made["json"])
    assert shown == json.loads(out.with_suffix(".json").read_bytes())
    assert made["tensor_types"] == out.with_suffix(".txt").read_bytes()
    assert made["csv"] == out.with_suffix(".csv").read_bytes()
    command = page.text_content("#plan-command")
    assert command == shown["llama_quantize"]["command"]
    assert f"--allow-requantize --pure {smol.name} " in command
    assert axe_violations(page, axe_source) == [], "planned"

    # untick: nothing to plan again; tick again: the measured values are reused at once
    page.uncheck("#plan-requantize")
    page.wait_for_selector("#planner[data-state=refused]", timeout=PLAN_TIMEOUT_MS)
    assert offered(page) == []
    page.check("#plan-requantize")
    page.wait_for_selector("#planner[data-state=planned]", timeout=PLAN_TIMEOUT_MS)
    assert page.is_hidden("#plan-requantize-progress")


def test_a_k_quant_gguf_is_refused_in_words_not_an_internal_error(app):
    gemma = fetched("gemma3-q4_k_m-gguf")
    page = app.page
    scan(page, [gemma], preset="llama.cpp")
    assert page.get_attribute("#planner", "data-state") == "refused"
    refusal = page.text_content("#plan-refusal")
    assert refusal.startswith(f"Nothing to plan: {gemma.name} is already quantized (")
    assert "Q4_K" in refusal and "internal error" not in page.text_content("#planner")
    assert page.is_visible("#plan-requantize")


def test_the_page_asks_for_its_downloads_by_the_plan_s_request_not_its_numbers(minilm):
    """Numbers that went to the page and back are ints where they were integral floats
    (JavaScript has one number type). A plan sent back for its files would spell an error of 0.0
    as 0 where the command line's CSV says 0.0; so the page's downloads give the scan and the
    options, the plan is made again in the engine, and the CSV is the command line's. (The scan
    document crossed too: a bits_per_value of 6.0 comes back as 6, which
    scan/document.rows_from_plain makes a float again, so the JSON is the same bytes.)"""
    doc = api.scan_model([str(minilm)], ["q8_0", "q5_1"], names=[
        "embeddings.position_ids", "encoder.layer.0.attention.self.query.weight",
        "encoder.layer.0.attention.self.query.bias"])["document"]
    options = {"target_bpw": 8.0, "keep": [], "minimum": {}, "weighted": True}
    plan = api.plan(doc, options)["plan"]
    def crossed(value):  # as numbers come back from JavaScript
        return json.loads(json.dumps(value), parse_float=lambda text: int(float(text))
                          if float(text).is_integer() else float(text))

    expected = {kind: api.plan_export(plan, kind)["bytes"] for kind in ("json", "csv")}
    again = {kind: api.plan_export(kind=kind, document=crossed(doc), options=options,
                                   scan_id="s1#1", name="This scan")["bytes"]
             for kind in ("json", "csv")}
    assert again["csv"] == expected["csv"]
    assert again["json"] == expected["json"]
    assert api.plan_export(crossed(plan), "csv")["bytes"] != expected["csv"]
