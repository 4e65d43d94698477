"""Model scan: checkpoints the tests generate (Llama and BERT names, outlier channels, shards
with an index, GGUF with mixed types, npz), scanned whole and streamed, against the single-tensor
analysis, llama.cpp's gguf package and brute-force statistics."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from quantcalc import QuantcalcError
from quantcalc.engine import analysis
from quantcalc.readers import arrays as array_files
from quantcalc.readers import checkpoint
from quantcalc.formats.ggml import decode as ggml_decode
from quantcalc.scan import model_scan as scan
from quantcalc.scan import jobs as scan_jobs
from quantcalc.scan import roles as tensor_roles
from quantcalc.engine.config import Config
from quantcalc.scan.tensor_stats import Moments, TensorStats
from quantcalc.scan.rows import EXACT  # an exact result: no interval, all values
from tests.support.command import quantcalc as cli
from tests.support import checkpoints as C

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ["format=int bits=8 granularity=channel", "format=int bits=8",
           "format=int bits=4 mode=asymmetric granularity=group group_size=32",
           "format=int bits=8 granularity=channel axis=1", "q4_k", "q8_0", "nvfp4", "mxfp4",
           "nf4", "fp8_e4m3", "fp8_t128", "iq4_xs"]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """A 32-layer Llama-style checkpoint (291 tensors), BF16, in 3 shards with an index."""
    folder = tmp_path_factory.mktemp("llama")
    arrays = C.make_arrays(C.llama_tensors(layers=32, hidden=64, ffn=128, vocab=256))
    index = C.write_sharded(folder, arrays, shards=3, dtype="BF16")
    return folder, index, arrays


def test_a_sharded_checkpoint_lists_every_tensor_once_from_folder_index_or_files(llama):
    folder, index, arrays = llama
    by_folder = checkpoint.open_checkpoint([folder])
    by_index = checkpoint.open_checkpoint([index])
    by_files = checkpoint.open_checkpoint(sorted(folder.glob("*.safetensors")))
    assert len(by_folder.tensors) == len(arrays) == 291
    for model in (by_index, by_files):
        assert sorted(t.name for t in model.tensors) == sorted(arrays)
    assert len(by_folder.files) == 3
    assert by_folder.total_bytes == sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def test_scan_rows_equal_the_single_tensor_analysis_digit_for_digit(llama):
    folder, _, arrays = llama
    model = checkpoint.open_checkpoint([folder])
    formats = scan.formats_from_specs(FORMATS)
    names = ["model.layers.3.self_attn.q_proj.weight", "model.layers.7.mlp.down_proj.weight",
             "model.embed_tokens.weight", "model.layers.0.input_layernorm.weight"]
    doc = scan.scan(model, formats, names=set(names))
    assert [r["name"] for r in doc["tensors"]] == [t.name for t in model.tensors
                                                  if t.name in names]
    for row in doc["tensors"]:
        # the values as the calculator reads them: the same file, parsed whole
        entry = model.get(row["name"])
        data = Path(entry.path).read_bytes()
        values = array_files.parse_safetensors(data, row["name"])
        for fmt, result in zip(formats, row["results"]):
            config = fmt.config
            if result["measured_as"]:  # llama.cpp's fallback for rows the type refuses
                with pytest.raises(QuantcalcError, match="needs rows whose length"):
                    analysis.analyze(values, config, keep=0)
                config = Config.from_dict({"format": result["measured_as"].lower()})
                assert result["notes"][0].startswith(f"fallback {result['measured_as']} (row "
                                                     f"length {values.shape[-1]} not a multiple")
            try:
                metrics = analysis.analyze(values, config, keep=0).metrics
            except QuantcalcError as exc:
                assert result["error"] == exc.message
                continue
            assert result["error"] is None
            for key in scan.RESULT_KEYS:
                assert result[key] == metrics.get(key, EXACT.get(key)), (row["name"], fmt.label, key)


STREAMED = ["format=int bits=8", "format=int bits=8 granularity=channel",
            "format=int bits=8 granularity=channel axis=1", "format=int bits=4 mode=asymmetric",
            "format=int bits=4 granularity=group group_size=16 calibration=percentile",
            "q4_k", "q6_k", "nvfp4", "mxfp4", "fp8_t128", "fp8_b128", "fp8_e4m3",
            "format=int bits=4 rounding=stochastic seed=3"]


def test_a_streamed_tensor_gets_the_same_scales_and_errors_as_in_memory(tmp_path):
    rng = np.random.default_rng(5)
    x = (rng.standard_t(4, (384, 512)) * 0.02).astype(np.float32)
    x[:, 17] *= 30  # an outlier input channel
    x[200, 3] = 0.9  # one value sets the per-tensor range, in a late slab
    C.write_safetensors(tmp_path / "m.safetensors", {"w": x})
    entry = checkpoint.open_checkpoint([tmp_path / "m.safetensors"]).get("w")
    formats = scan.formats_from_specs(STREAMED)
    whole = scan.scan_tensor(entry, formats)
    streamed = scan.scan_tensor(entry, formats, whole_values=1000, slab_values=20_000)
    assert not whole["streamed"] and streamed["streamed"]
    assert any("slabs" in n for n in streamed["notes"])
    for a, b in zip(streamed["results"], whole["results"]):
        assert a["error"] is None and b["error"] is None, (a, b)
        # the same scale for every segment gives the same errors; only float64 sums reorder
        assert a["max_abs_error"] == b["max_abs_error"], a["format"]
        assert a["clip_rate"] == b["clip_rate"] and a["bits_per_value"] == b["bits_per_value"]
        for key in ("mse", "sqnr_db", "rel_rmse"):
            assert math.isclose(a[key], b[key], rel_tol=1e-12), (a["format"], key)
    for key in ("data_min", "data_max", "worst_channel", "beyond_6_sigma"):
        assert streamed[key] == whole[key]
    for key in ("std", "kurtosis", "amax_over_std", "worst_channel_ratio"):
        assert math.isclose(streamed[key], whole[key], rel_tol=1e-12)


def test_whole_tensor_calibrations_are_refused_for_a_streamed_tensor_not_approximated(tmp_path):
    x = np.random.default_rng(1).standard_normal((64, 64)).astype(np.float32)
    C.write_safetensors(tmp_path / "m.safetensors", {"w": x})
    entry = checkpoint.open_checkpoint([tmp_path / "m.safetensors"]).get("w")
    formats = scan.formats_from_specs(["format=int bits=8 calibration=percentile",
                                       "format=int bits=8 calibration=mse",
                                       "format=int bits=8 granularity=channel calibration=mse"])
    row = scan.scan_tensor(entry, formats, whole_values=100, slab_values=512)
    assert "needs all its values in memory" in row["results"][0]["error"]
    assert "needs all its values in memory" in row["results"][1]["error"]
    # per channel along axis 0, each channel is one row: its MSE search is exact in a slab
    assert row["results"][2]["error"] is None
    whole = scan.scan_tensor(entry, formats)
    assert row["results"][2]["max_abs_error"] == whole["results"][2]["max_abs_error"]


def test_statistics_match_brute_force():
    rng = np.random.default_rng(2)
    x = rng.standard_t(3, (40, 30)).astype(np.float32)
    x[:, 7] *= 9
    stats = TensorStats(x.shape)
    stats.add(x)
    stats.add_beyond(x)
    out = stats.finish()
    v = x.astype(np.float64).reshape(-1)
    z = v - v.mean()
    assert math.isclose(out["kurtosis"], (z ** 4).mean() / (z ** 2).mean() ** 2 - 3,
                        rel_tol=1e-10)
    assert math.isclose(out["amax_over_std"], np.abs(v).max() / v.std(), rel_tol=1e-10)
    assert out["beyond_6_sigma"] == np.count_nonzero(np.abs(z) > 6 * v.std()) / v.size
    columns = np.abs(x).max(axis=0)
    rows = np.abs(x).max(axis=1)
    best = max(("column", columns), ("row", rows),
               key=lambda pair: pair[1].max() / np.median(pair[1]))
    assert out["worst_channel"] == f"{best[0]} {int(np.argmax(best[1]))}" == "column 7"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=200),
       st.lists(st.integers(1, 50), min_size=1, max_size=8))
def test_moments_merged_over_any_split_equal_the_whole(values, cuts):
    x = np.array(values)
    whole = Moments()
    whole.add(x)
    merged, at = Moments(), 0
    for n in cuts + [x.size]:
        if at < x.size:
            merged.add(x[at:at + n])
            at += n
    assert merged.n == whole.n
    scale = max(1.0, float(np.abs(x).max()))
    assert math.isclose(merged.mean, whole.mean, rel_tol=1e-9, abs_tol=1e-12 * scale)
    for k, power in (("m2", 2), ("m3", 3), ("m4", 4)):
        assert math.isclose(getattr(merged, k), getattr(whole, k), rel_tol=1e-7,
                            abs_tol=1e-9 * scale ** power * x.size)


@pytest.mark.parametrize("name, layer, role", [
    ("model.layers.12.self_attn.q_proj.weight", 12, "attn_q"),
    ("model.layers.3.self_attn.o_proj.weight", 3, "attn_o"),
    ("model.layers.0.mlp.down_proj.weight", 0, "ffn_down"),
    ("model.layers.0.post_attention_layernorm.weight", 0, "norm"),
    ("model.embed_tokens.weight", None, "embed"),
    ("lm_head.weight", None, "output"),
    ("model.norm.weight", None, "norm"),
    ("blk.5.attn_v.weight", 5, "attn_v"),
    ("blk.5.attn_output.weight", 5, "attn_o"),
    ("blk.5.ffn_gate.weight", 5, "ffn_gate"),
    ("token_embd.weight", None, "embed"),
    ("output.weight", None, "output"),
    ("output_norm.weight", None, "norm"),
    ("bert.encoder.layer.2.attention.self.key.weight", 2, "attn_k"),
    ("bert.encoder.layer.2.attention.output.dense.weight", 2, "attn_o"),
    ("bert.encoder.layer.2.attention.output.LayerNorm.weight", 2, "norm"),
    ("bert.encoder.layer.2.intermediate.dense.weight", 2, "ffn_up"),
    ("bert.encoder.layer.2.output.dense.weight", 2, "ffn_down"),
    ("bert.embeddings.LayerNorm.weight", None, "norm"),
    ("bert.embeddings.word_embeddings.weight", None, "embed"),
    ("transformer.h.4.attn.c_attn.weight", 4, "attn_qkv"),
    ("transformer.h.4.mlp.c_proj.weight", 4, "ffn_down"),
])
def test_layer_and_role_from_hugging_face_bert_and_gguf_names(name, layer, role):
    assert tensor_roles.layer_and_role(name) == (layer, role)


def test_bert_checkpoint_rows_carry_roles_and_1d_tensors_are_marked(tmp_path):
    arrays = C.make_arrays(C.bert_tensors())
    C.write_safetensors(tmp_path / "bert.safetensors", arrays, "F16")
    doc = scan.scan(checkpoint.open_checkpoint([tmp_path / "bert.safetensors"]),
                    scan.formats_from_specs(["format=int bits=8 granularity=channel"]))
    rows = {r["name"]: r for r in doc["tensors"]}
    bias = rows["bert.encoder.layer.0.attention.self.query.bias"]
    assert bias["high_precision"] and "kept in high precision" in bias["notes"][0]
    assert "two or more dimensions" in bias["results"][0]["error"]
    query = rows["bert.encoder.layer.0.attention.self.query.weight"]
    assert query["role"] == "attn_q" and query["dtype"] == "F16" and query["stored_bits"] == 16
    assert doc["totals"][0]["refused"] == sum(r["high_precision"] for r in doc["tensors"])


gguf = pytest.importorskip("gguf", reason="llama.cpp's gguf package is a test dependency")


def test_a_mixed_gguf_scans_floats_and_lists_quantized_tensors_dequantized(tmp_path):
    arrays = C.make_arrays(C.llama_tensors(layers=2, hidden=256, ffn=512, gguf_names=True))
    types = {n: t for n, t in zip(arrays, ["F16", "F32", "Q8_0", "Q4_0", "F32"] * 10)
             if arrays[n].ndim == 2}
    path = tmp_path / "model.gguf"
    C.write_gguf(path, arrays, types)
    model = checkpoint.open_checkpoint([path])
    reader = gguf.GGUFReader(str(path))
    assert [t.name for t in model.tensors] == [t.name for t in reader.tensors]
    for ours, theirs in zip(model.tensors, reader.tensors):
        assert ours.offset == theirs.data_offset and ours.nbytes == theirs.n_bytes
        assert ours.shape == tuple(int(n) for n in reversed(theirs.shape))
    doc = scan.scan(model, scan.formats_from_specs(["q4_k", "format=int bits=8"]))
    for row, theirs in zip(doc["tensors"], reader.tensors):
        kind = types.get(row["name"], "F32")
        if kind in ("Q8_0", "Q4_0"):
            assert row["results"] == [] and not row["original"]
            assert any("already quantized as " + kind in n for n in row["notes"])
            assert row["stored_bits"] == {"Q8_0": 8.5, "Q4_0": 4.5}[kind]
            values = gguf.quants.dequantize(theirs.data, theirs.tensor_type).astype(np.float64)
            assert row["data_max"] == values.max() and row["data_min"] == values.min()
            assert math.isclose(row["std"], values.std(), rel_tol=1e-12)
        else:
            assert len(row["results"]) == 2 and row["results"][1]["error"] is None
            values = np.asarray(theirs.data, np.float32).reshape(row["shape"])
            expected = analysis.analyze(values, scan.formats_from_specs(
                ["format=int bits=8"])[0].config, keep=0).metrics["sqnr_db"]
            assert row["results"][1]["sqnr_db"] == expected


@pytest.mark.parametrize("name", sorted(n for n in ggml_decode.TYPES.values()
                                        if n[0] in ggml_decode._DECODERS))
def test_dequantizing_stored_types_matches_gguf_bit_for_bit(name):
    number = next(k for k, v in ggml_decode.TYPES.items() if v == name)
    raw = np.random.default_rng(number).integers(0, 256, name[2] * 40, dtype=np.uint8)
    with np.errstate(all="ignore"):
        ours = ggml_decode.dequantize(raw, number)
        theirs = gguf.quants.dequantize(raw.reshape(40, name[2]),
                                        gguf.GGMLQuantizationType(number)).reshape(-1)
    assert np.array_equal(ours, theirs.astype(np.float32), equal_nan=True)


def test_npz_with_many_arrays_compressed_or_not_streams_like_np_load(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {f"layer{i}.w": rng.standard_normal((50, 40)).astype(np.float32) for i in range(12)}
    arrays["bias"] = rng.standard_normal(3)  # 1-D float64
    for save in (np.savez, np.savez_compressed):
        path = tmp_path / f"{save.__name__}.npz"
        save(path, **arrays)
        model = checkpoint.open_checkpoint([path])
        assert [t.name for t in model.tensors] == list(arrays)
        for entry in model.tensors:
            slabs = [s for _, s in checkpoint.SlabReader(entry).slabs(7)]
            got = np.concatenate(slabs) if entry.shape and len(entry.shape) > 1 else slabs[0]
            assert np.array_equal(got, np.load(path)[entry.name])


def test_pickles_are_refused_with_the_reason_and_skipped_beside_safetensors(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(QuantcalcError, match="runs code.*safetensors"):
        checkpoint.open_checkpoint([tmp_path / "pytorch_model.bin"])
    with pytest.raises(QuantcalcError, match="pickle"):
        checkpoint.open_checkpoint([tmp_path])
    C.write_safetensors(tmp_path / "model.safetensors", {"w": np.ones((2, 2), np.float32)})
    model = checkpoint.open_checkpoint([tmp_path])
    assert [t.name for t in model.tensors] == ["w"]
    assert "pytorch_model.bin" in model.notes[0]


def test_broken_checkpoints_get_one_clear_message(tmp_path):
    arrays = {"a": np.ones((4, 4), np.float32), "b": np.zeros((4, 4), np.float32)}
    index = C.write_sharded(tmp_path / "m", arrays, shards=2)
    (tmp_path / "m" / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(QuantcalcError, match="missing: 'model-00002-of-00002.safetensors'"):
        checkpoint.open_checkpoint([index])
    C.write_safetensors(tmp_path / "t.safetensors", arrays)
    data = (tmp_path / "t.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[:-10])
    with pytest.raises(QuantcalcError, match="truncated"):
        checkpoint.open_checkpoint([tmp_path / "t.safetensors"])
    (tmp_path / "evil.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "../../etc/passwd"}}))
    with pytest.raises(QuantcalcError, match="outside its folder"):
        checkpoint.open_checkpoint([tmp_path / "evil.safetensors.index.json"])
    C.write_safetensors(tmp_path / "u.safetensors", {"a": np.ones((2, 2), np.float32)})
    C.write_safetensors(tmp_path / "v.safetensors", {"a": np.ones((2, 2), np.float32)})
    with pytest.raises(QuantcalcError, match="in both u.safetensors and v.safetensors"):
        checkpoint.open_checkpoint([tmp_path / "u.safetensors", tmp_path / "v.safetensors"])


def test_nan_and_integer_tensors_are_rows_with_a_reason_not_a_crash(tmp_path):
    x = np.ones((4, 32), np.float32)
    x[1, 2] = np.nan
    path = tmp_path / "m.safetensors"
    C.write_safetensors(path, {"bad": x, "good": np.ones((4, 32), np.float32),
                               "position_ids": np.arange(32).reshape(1, 32)})
    doc = scan.scan(checkpoint.open_checkpoint([path]), scan.formats_from_specs(["q8_0"]))
    bad, good, ids = doc["tensors"]
    assert bad["results"] == [] and "1 values are NaN or infinite" in bad["notes"][-1]
    assert good["results"][0]["error"] is None and good["results"][0]["sqnr_db"] > 40
    assert ids["results"] == [] and "I32 values, not floats" in ids["notes"][-1]
    # every total counts every tensor: those not measured at their stored size, said apart
    total = doc["totals"][0]
    assert total["parameters_covered"] == 128 and total["parameters_kept"] == 160
    assert total["parameters_total"] == 288 and total["refused"] == 0
    assert total["bytes"] == 128 * 8.5 / 8 + 4 * 32 * 4 + 32 * 4  # bad (F32), ids (I32) stored


@pytest.mark.slow
def test_cli_scan_writes_json_csv_pdf_and_worker_processes_give_the_same_rows(llama, tmp_path):
    folder, _, _ = llama
    one = cli("scan", folder, "--format", "q4_k", "--format", "format=int bits=8",
              "--json", tmp_path / "one.json", "--csv", tmp_path / "one.csv",
              "--pdf", tmp_path / "one.pdf")
    assert one.returncode == 0, one.stderr
    assert "worst tensors under Q4_K" in one.stdout
    doc = json.loads((tmp_path / "one.json").read_text())
    assert len(doc["tensors"]) == 291 and [f["label"] for f in doc["formats"]] == ["Q4_K", "INT8"]
    lines = (tmp_path / "one.csv").read_text().splitlines()
    assert len(lines) == 1 + 291 * 2
    assert (tmp_path / "one.pdf").read_bytes()[:5] == b"%PDF-"
    two = cli("scan", folder, "--format", "q4_k", "--format", "format=int bits=8", "--jobs", "2",
              "--json", tmp_path / "two.json")
    assert two.returncode == 0, two.stderr
    assert json.loads((tmp_path / "two.json").read_text()) == doc


def test_cli_scan_bad_input_is_one_line_and_exit_2(tmp_path):
    out = cli("scan", tmp_path / "missing.safetensors", "--format", "q4_k")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cannot read" in out.stderr
    C.write_safetensors(tmp_path / "m.safetensors", {"w": np.ones((2, 32), np.float32)})
    out = cli("scan", tmp_path / "m.safetensors")
    assert out.returncode == 2 and "choose formats" in out.stderr
    out = cli("scan", tmp_path / "m.safetensors", "--format", "q9_z")
    assert out.returncode == 2 and "q9_z" in out.stderr
    out = cli("scan", tmp_path / "m.safetensors", "--format", "q8_0", "--tensor", "nope")
    assert out.returncode == 2 and "'w'" in out.stderr


@pytest.mark.slow
def test_the_same_scan_on_a_dask_cluster_of_two_worker_processes(llama):
    distributed = pytest.importorskip("dask.distributed")
    folder, _, _ = llama
    model = checkpoint.open_checkpoint([folder])
    specs = ["q4_k", "format=int bits=8 granularity=channel"]
    names = {t.name for t in model.tensors[:40]}
    local = scan.scan(model, scan.formats_from_specs(specs), names=names)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = scan_jobs.scan_parallel(model, specs, client.submit, distributed.as_completed,
                                    names=names)
    assert json.dumps(remote, sort_keys=True) == json.dumps(local, sort_keys=True)


def split_into_parts(path, part):
    """What the page's worker mounts for a file larger than its part size."""
    data = Path(path).read_bytes()
    Path(path).unlink()
    for k in range(0, len(data), part):
        Path(f"{path}.qcpart-{k // part:03d}").write_bytes(data[k:k + part])


def test_a_checkpoint_mounted_in_parts_reads_as_the_whole_files(tmp_path):
    """The page mounts files over 1 GiB as slices (Pyodide cannot seek past 2 GiB); scanning
    the slices, with tensors and the header split across them, gives the same rows."""
    arrays = C.make_arrays(C.llama_tensors(layers=2, hidden=64, ffn=128, vocab=128))
    whole, parted = tmp_path / "whole", tmp_path / "parted"
    C.write_sharded(whole, arrays, shards=2)
    C.write_sharded(parted, arrays, shards=2)
    np.savez_compressed(whole / "extra.npz", a=np.arange(600.0).reshape(20, 30))
    np.savez_compressed(parted / "extra.npz", a=np.arange(600.0).reshape(20, 30))
    for path in parted.iterdir():
        if path.suffix != ".json":
            split_into_parts(path, 7_777)  # an odd size: tensors straddle the cuts
    specs = scan.formats_from_specs(["q4_k", "format=int bits=8 granularity=channel"])
    expected = scan.scan(checkpoint.open_checkpoint([whole / "model.safetensors.index.json"]),
                         specs)
    got = scan.scan(checkpoint.open_checkpoint([parted]), specs)
    assert got["tensors"] == expected["tensors"] and got["files"] == expected["files"]
    npz = checkpoint.open_checkpoint([parted / "extra.npz"]).get("a")
    assert np.array_equal(checkpoint.SlabReader(npz).read_all(),
                          np.arange(600.0).reshape(20, 30))


@pytest.mark.slow
def test_ctrl_c_writes_the_reports_of_the_tensors_done(tmp_path):
    import signal
    import time

    arrays = C.make_arrays(C.llama_tensors(layers=24, hidden=512, ffn=1024, vocab=512))
    C.write_safetensors(tmp_path / "m.safetensors", arrays)
    process = subprocess.Popen(
        [sys.executable, "-m", "quantcalc", "scan", str(tmp_path / "m.safetensors"), "--preset",
         "llama.cpp", "--json", str(tmp_path / "done.json"), "--quiet"],
        cwd=ROOT, env={"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell's background job ignores SIGINT and its children inherit that; a terminal's
        # Ctrl-C reaches a process with the default handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4)  # a few tensors in: the whole scan takes minutes
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "interrupted after" in err
    doc = json.loads((tmp_path / "done.json").read_text())
    assert 0 < len(doc["tensors"]) < len(arrays)
    assert [t["name"] for t in doc["tensors"]] == list(arrays)[:len(doc["tensors"])]


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["half-even", "floor", "ceil", "toward-zero",
                                                  "half-away", "stochastic"]),
       st.sampled_from(["symmetric", "asymmetric"]), st.sampled_from([2, 4, 8]),
       st.sampled_from(["tensor", "channel", "group"]), st.booleans())
def test_skipping_the_clip_check_where_no_code_can_clip_changes_nothing(
        seed, rounding, mode, bits, granularity, custom):
    """IntegerScheme.note_data_range lets chunks skip the min/max look when the segments' data
    ranges prove no code leaves the grid: the result is the same as always looking."""
    from quantcalc.formats import schemes

    rng = np.random.default_rng(seed)
    x = (rng.standard_t(3, (16, 64)) * rng.uniform(0.01, 10)).astype(np.float32)
    settings_ = {"format": "int", "bits": bits, "mode": mode, "rounding": rounding,
                 "granularity": granularity, "group_size": 16, "seed": seed}
    if custom:  # a range narrower than the data: values clip, the shortcut must not apply
        settings_.update(calibration="custom", range_min=-0.5, range_max=0.5)
    if granularity != "group":
        settings_.pop("group_size")
    config = Config.from_dict(settings_)
    fast = analysis.analyze(x, config, keep=x.size)
    original = schemes.IntegerScheme.note_data_range
    schemes.IntegerScheme.note_data_range = schemes.Scheme.note_data_range
    try:
        slow = analysis.analyze(x, config, keep=x.size)
    finally:
        schemes.IntegerScheme.note_data_range = original
    if not custom and mode == "symmetric" and rounding == "half-even":
        assert fast.scheme.clip_free  # the shortcut is taken where it should be
    if custom and fast.metrics["clip_count"]:
        assert not fast.scheme.clip_free
    assert fast.metrics == slow.metrics
    assert np.array_equal(fast.per_value.codes, slow.per_value.codes)
    assert np.array_equal(fast.per_value.clipped, slow.per_value.clipped)


def test_progress_counts_every_byte_once_whole_or_streamed(tmp_path):
    arrays = C.make_arrays(C.llama_tensors(layers=1, hidden=128, ffn=256, vocab=300))
    C.write_safetensors(tmp_path / "m.safetensors", arrays, "BF16")
    model = checkpoint.open_checkpoint([tmp_path / "m.safetensors"])
    states = []
    clock = iter(range(10_000))  # every call a second later: every state is told
    progress = scan.Progress(sum(e.nbytes for e in model.tensors), len(model.tensors),
                             states.append, clock=lambda: float(next(clock)))
    for entry in model.tensors:  # streamed (budget 1000 values) and whole tensors alike
        scan.scan_tensor(entry, scan.formats_from_specs(["q8_0"]), whole_values=1000,
                         slab_values=5000, on_bytes=progress.add_bytes)
        progress.tensor_done(entry)
    done = [s["bytes"] for s in states]
    assert done == sorted(done) and done[-1] == states[-1]["total_bytes"]
    assert max(done) == sum(e.nbytes for e in model.tensors)  # never past the total
    assert states[-1]["tensors"] == len(model.tensors)
    assert all(s["seconds_left"] is None or s["seconds_left"] >= 0 for s in states)


def test_the_calculator_reads_one_tensor_of_a_large_file_by_offset(tmp_path):
    """analyze --tensor on a 3 GB safetensors file (sparse on disk) reads that tensor only: the
    command's peak memory stays far below the file's size."""
    import struct

    small = np.arange(64, dtype=np.float32) / 10
    big_bytes = 3 * 2 ** 30
    header = {"big": {"dtype": "F32", "shape": [big_bytes // 4],
                      "data_offsets": [0, big_bytes]},
              "small": {"dtype": "F32", "shape": [8, 8],
                        "data_offsets": [big_bytes, big_bytes + small.nbytes]}}
    text = json.dumps(header).encode()
    path = tmp_path / "shard.safetensors"
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        out.seek(8 + len(text) + big_bytes)  # a hole: no disk used for the big tensor
        out.write(small.tobytes())
    wrapper = ("import runpy, sys\nsys.argv = ['quantcalc'] + sys.argv[1:]\n"
               "try:\n    runpy.run_module('quantcalc', run_name='__main__')\n"
               "except SystemExit as e:\n    assert not e.code\n"
               "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
               "print(int(hwm.split()[1]), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", wrapper, "analyze", str(path), "--tensor",
                           "small", "--json", "-"], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT / "py"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["shape"] == [8, 8] and summary["data_max"] == float(small[-1])
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    assert peak_kib < 400 * 1024  # the file is 3 GiB


@pytest.mark.parametrize("shape", [(64, 48), (16, 6, 40)])
@pytest.mark.parametrize("outliers", ["columns", "rows", "both", "none"])
def test_values_beyond_6_sigma_are_counted_exactly_whichever_is_picked_first(shape, outliers):
    # a few outlier columns make picking columns first cheaper; a few outlier rows, rows first
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    if outliers in ("columns", "both"):
        x[..., [3, 17]] *= 40
    if outliers in ("rows", "both"):
        x[[2, 9]] *= 40
    stats = TensorStats(x.shape)
    for start in range(0, shape[0], 5):  # slabs of 5 rows, as a streamed scan feeds them
        stats.add(x[start:start + 5])
    for start in range(0, shape[0], 5):
        stats.add_beyond(x[start:start + 5], first_row=start)
    v = x.astype(np.float64).reshape(-1)
    z = np.abs(v - stats.moments.mean)
    assert stats.beyond == np.count_nonzero(z > 6 * stats.moments.std)
    assert (stats.beyond > 0) == (outliers != "none")
