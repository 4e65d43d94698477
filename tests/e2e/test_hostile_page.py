"""Hostile input on the page: no crash, no silent wrong result, no lost input."""

import io
import json
import os
import struct

import numpy as np

from conftest import BOOT_TIMEOUT_MS
from helpers import calculate, engine_summary, fill, shown_metrics


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def safetensors_bytes(header, payload=b""):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def choose(page, name, data):
    page.set_input_files("#file", files=[{"name": name, "mimeType": "application/octet-stream",
                                          "buffer": data}])
    page.wait_for_selector("#clear-file:visible")


def test_a_deeply_nested_header_is_refused_and_python_lives_on(app):
    page = app.page
    deep = b'{"t": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert len(safetensors_bytes(deep)) > 10_000
    choose(page, "deep.safetensors", safetensors_bytes(deep))
    page.wait_for_selector("#error-file:visible")
    assert "nested more than 64 deep" in page.inner_text("#error-file")
    page.click("#clear-file")  # the typed values still compute: Python did not die
    fill(page, values="1 2 3", bits="8", format="int")
    calculate(page)
    assert shown_metrics(page)["q_max"] == 127


def test_a_quick_second_file_gives_the_second_files_result(app):
    page = app.page
    first, second = np.arange(6.0).reshape(2, 3), np.linspace(-4, 9, 12)
    fill(page, format="int", bits="8", name="quick")
    choose(page, "first.npy", npy_bytes(first))
    before = int(page.evaluate("document.body.dataset.calculations || 0"))
    page.click("#calculate")
    choose(page, "second.npy", npy_bytes(second))
    page.click("#calculate")  # Playwright waits for the button, enabled again after the first
    page.wait_for_selector(f"body[data-calculations='{before + 2}']", state="attached")
    summary = engine_summary({"name": "quick"}, {"file_name": "second.npy",
                                                 "file_bytes": npy_bytes(second)})
    assert "12 values" in page.inner_text("#results-name")
    assert shown_metrics(page)["scale"] == summary["scale"]
    page.click("#clear-file")


def test_a_file_of_2_gib_or_more_gets_a_plain_message(app, tmp_path):
    page = app.page
    big = tmp_path / "big.npy"
    with open(big, "wb") as stream:  # sparse: no disk space used
        stream.truncate(2 ** 31)
    page.set_input_files("#file", str(big))
    page.wait_for_selector("#error-file:visible")
    message = page.inner_text("#error-file")
    assert "2.00 GiB" in message and "2 GiB or more cannot be read here yet" in message
    assert app.errors == []
    page.click("#clear-file")
    os.remove(big)


def test_long_pasted_values_survive_a_reload(fresh):
    page = fresh.open()
    values = " ".join(f"{v:.6f}" for v in np.random.default_rng(2).standard_normal(1000))
    assert len(values) > 8_000
    fill(page, values=values, bits="4")
    calculate(page)
    assert "values=" not in page.url and "bits=4" in page.url  # too long for the link
    page.wait_for_timeout(600)
    page.reload()
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
    assert page.input_value("#values") == values and page.input_value("#bits") == "4"
    fill(page, bits="5")  # a settings change must not overwrite the kept values
    page.wait_for_timeout(600)
    page.reload()
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
    assert page.input_value("#values") == values and page.input_value("#bits") == "5"


def test_a_paste_too_big_for_the_box_becomes_a_file(app):
    page = app.page
    page.click("#clear-file") if page.is_visible("#clear-file") else None
    fill(page, values="1 2 3", format="int", bits="8", name="pasted")
    count = 250_000
    page.evaluate("""count => {
        const text = Array.from({length: count}, (_, i) => ((i % 97) - 48) / 8).join(" ");
        const data = new DataTransfer();
        data.setData("text/plain", text);
        document.querySelector("#values").dispatchEvent(new ClipboardEvent("paste",
            {clipboardData: data, bubbles: true, cancelable: true}));
    }""", count)
    page.wait_for_selector("#clear-file:visible")
    assert "pasted-values.txt" in page.inner_text("#file-info")
    assert page.input_value("#values") == "1 2 3"  # what the box held is kept
    calculate(page)
    assert f"{count} values" in page.inner_text("#results-name")
    page.click("#clear-file")


def test_a_long_analysis_shows_progress_and_can_be_cancelled(fresh):
    page = fresh.open()
    # per-channel entropy calibration of 400 channels x 2,500 values: minutes in the page
    data = np.random.default_rng(4).standard_normal((400, 2500)).astype(np.float32)
    choose(page, "long.npy", npy_bytes(data))
    fill(page, calibration="entropy", granularity="channel", axis="0")
    page.click("#calculate")
    page.wait_for_selector("#cancel:visible", timeout=30_000)
    page.wait_for_selector("#calc-progress:visible")
    assert "Finding the range" in page.inner_text("#calculate-reason")
    page.click("#cancel")
    page.wait_for_selector("#engine-restart-note:has-text('Cancelled')")
    page.wait_for_selector("#engine-status[data-state=ready]", timeout=BOOT_TIMEOUT_MS)
    assert page.input_value("#calibration") == "entropy" and page.is_visible("#clear-file")
    fill(page, calibration="minmax", granularity="tensor")  # the same file, a quick setting
    calculate(page)
    assert "1000000 values" in page.inner_text("#results-name")


def test_a_file_of_many_tensors_gets_a_filter_not_a_giant_menu(app):
    page = app.page
    header = {f"model.layers.{i}.mlp.weight": {"dtype": "F32", "shape": [1],
                                               "data_offsets": [0, 4]} for i in range(50_000)}
    choose(page, "many.safetensors", safetensors_bytes(header, np.float32([2.5]).tobytes()))
    page.wait_for_selector(".qc-tensor-choice:visible")
    assert "50,000 of 50,000 tensors match; the first 200 are listed" in \
        page.inner_text("#tensor-count")
    assert page.locator("#tensor option").count() == 200
    page.fill("#tensor-filter", "layers.4999")
    assert page.inner_text("#tensor-count").startswith("11 of 50,000")
    page.select_option("#tensor", "model.layers.49999.mlp.weight")
    fill(page, format="int", bits="8")
    calculate(page)
    assert shown_metrics(page)["real_max"] == 2.5
    page.click("#clear-file")


from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

from quantcalc.schema import settings as engine_settings  # noqa: E402
from quantcalc.errors import QuantcalcError  # noqa: E402

VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["on", "off", "TRUE", "1", "0", "yes", "８", "٣", "1_000", "inf", "nan",
                     "1e400", "-0", "+5", ".5", "5.", "1e-3", "0x10", " 7 ", "2.0", "99.999"]),
    st.integers(-2 ** 66, 2 ** 66).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from([c["value"] for s in engine_settings.SETTINGS for c in
                     s.to_dict().get("choices", [])]))


def engine_accepts(key, raw):
    try:
        engine_settings.convert(key, raw.strip())
        return True
    except QuantcalcError:
        return False


def test_link_parameters_follow_the_engines_rules(app):
    """Fuzz: for any value of any setting, the page's link check accepts it exactly when the
    engine does (full-width digits, on/off, huge numbers, words): one rule for both."""
    page = app.page
    module = page.evaluate("document.querySelector('script[type=module]').src"
                           ".replace('app.js', 'state.js')")
    keys = [s.key for s in engine_settings.SETTINGS]

    @hsettings(max_examples=300, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(keys), VALUES)
    def check(key, raw):
        if "\x00" in raw:
            return
        result = page.evaluate("async ([url, key, raw]) => { const m = await import(url);"
                               "return m.fromQuery(new URLSearchParams([[key, raw]]).toString()); }",
                               [module, key, raw])
        accepted = key in result["fields"]
        assert accepted == engine_accepts(key, raw), (key, raw, result["problems"])

    check()
    assert app.errors == []
