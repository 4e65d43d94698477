"""The audit of GGUF files against their Hugging Face originals, the GGUF made as llama.cpp makes
it (tests/support/audit_pairs.py: gguf-py's names and GGUFWriter, LlamaModel.permute of q/k,
ggml's own quantization through libggml): every SQNR against gguf-py's own dequantization of the
file, `reproduced` true exactly where the file was made without an importance matrix, the rope
permutation undone, stacked experts and unpaired tensors."""

import json

import numpy as np
import pytest

from quantcalc import api
from tests.support import audit_pairs as ap

pytest.importorskip("libggml", reason="ggml makes the GGUF side")

TYPES = ["q4_K", "q6_K", "q8_0", "q4_0", "q5_1", "iq4_xs", "q3_K", "q2_K", "q5_K", "iq4_nl",
         "q5_0", "q4_1"]


def typed(tensors, seed=0):
    """A llama.cpp type for each matrix (every type quantcalc makes), F16 for one."""
    matrices = sorted(n for n, x in tensors.items() if x.ndim == 2)
    types = {n: TYPES[i % len(TYPES)] for i, n in enumerate(matrices)}
    types[matrices[-1]] = "F16"
    return types


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit")
    arrays, config = ap.hf_llama(folder / "hf", seed=3, layers=2, hidden=256, heads=4,
                                 kv_heads=2, ffn=512, vocab=256)
    tensors = ap.gguf_tensors(arrays, config)
    return folder, arrays, config, tensors


def rows_by_name(doc):
    return {r["name"]: r for r in doc["tensors"]}


def audit(original, quantized, **options):
    reply = api.audit_model([str(original)], [str(quantized)], **options)
    assert "error" not in reply, reply
    return reply["document"]


def test_every_sqnr_is_that_of_gguf_pys_dequantization_and_every_block_is_reproduced(llama):
    folder, _, config, tensors = llama
    types = typed(tensors)
    ap.write_gguf(folder / "plain.gguf", tensors, config, types)
    reference = ap.dequantized(folder / "plain.gguf")
    doc = audit(folder / "hf", folder / "plain.gguf", slab_values=1 << 12)
    rows = rows_by_name(doc)
    assert set(rows) == set(tensors)
    for name, x in tensors.items():
        row = rows[name]
        assert row["side"] == "both" and row["reason"] is None, row
        expected = ap.sqnr_db(x, reference[name])
        if np.isinf(expected):
            assert row["sqnr_db"] == np.inf and row["mse"] == 0
        else:
            assert row["sqnr_db"] == pytest.approx(expected, abs=1e-9), name
        assert row["stored_format"] == ("F32" if x.ndim == 1 else types[name].upper())
        assert row["reproduced"] is True and row["reproduced_as"] == "plain", name
        if x.ndim == 2 and types[name] != "F16":  # the plain quantization is the file itself
            assert row["plain_sqnr_db"] == row["sqnr_db"]
    q = rows["blk.1.attn_q.weight"]
    assert q["original_name"] == "model.layers.1.self_attn.q_proj.weight"
    assert any("permutes q (4 heads)" in n for n in q["notes"])
    assert any("permutes k (2 heads)" in n for n in rows["blk.0.attn_k.weight"]["notes"])
    totals = doc["totals"]
    assert totals["reproduced"] == {"true": len(tensors), "false": 0, "null": 0}
    assert totals["tensors"] == totals["tensors_measured"] == len(tensors)
    assert totals["bytes"] == sum(r["bytes"] for r in doc["tensors"])


def test_reproduced_is_true_exactly_where_no_importance_matrix_was_used(llama):
    folder, _, config, tensors = llama
    types = typed(tensors)
    weights = ap.importance_for(tensors)
    # an imatrix for every other matrix (Q8_0 ignores one: ggml's quantize_q8_0)
    used = {n: w for i, (n, w) in enumerate(sorted(weights.items()))
            if i % 2 == 0 and types[n] not in ("q8_0", "F16")}
    ap.write_gguf(folder / "imatrix.gguf", tensors, config, types, imatrix=used)
    ap.write_imatrix(folder / "model.imatrix.gguf", used)
    reference = ap.dequantized(folder / "imatrix.gguf")

    rows = rows_by_name(audit(folder / "hf", folder / "imatrix.gguf"))
    for name, x in tensors.items():
        row = rows[name]
        assert row["reproduced"] is (name not in used), name
        assert row["sqnr_db"] == pytest.approx(ap.sqnr_db(x, reference[name]), abs=1e-9)
        if name in used:  # the weighted search trades plain SQNR for weighted error
            assert row["plain_sqnr_db"] != row["sqnr_db"]

    given = rows_by_name(audit(folder / "hf", folder / "imatrix.gguf",
                               imatrix_path=str(folder / "model.imatrix.gguf")))
    for name in tensors:
        row = given[name]
        assert row["reproduced"] is True, name
        assert row["reproduced_as"] == ("imatrix" if name in used else "plain")
        assert (row["weighted_sqnr_db"] is not None) == (name in used)


def test_a_file_quantized_from_f16_values_is_reproduced_via_f16(llama):
    folder, _, config, tensors = llama
    rounded = {n: x.astype(np.float16).astype(np.float32) for n, x in tensors.items()}
    types = {n: "q4_K" for n, x in tensors.items() if x.ndim == 2}
    ap.write_gguf(folder / "via_f16.gguf", rounded, config, types)
    rows = rows_by_name(audit(folder / "hf", folder / "via_f16.gguf"))
    matrix = rows["blk.0.ffn_up.weight"]
    assert matrix["reproduced"] is True and matrix["reproduced_as"] == "plain via F16"
    norm = rows["blk.0.attn_norm.weight"]  # F32 of F16-rounded values: not the original's F32
    assert norm["reproduced"] is False and norm["sqnr_db"] > 60


def test_without_the_rope_permutation_undone_q_and_k_are_noise(llama):
    """A GGUF converted without LlamaModel.permute (q/k rows in Hugging Face's order): the audit
    undoes a permutation the file does not have, and says what that costs (about -3 dB):
    the same as comparing a permuted file to the original without undoing it."""
    folder, arrays, config, _ = llama
    wrong = ap.gguf_tensors(arrays, config, permuted=False)
    ap.write_gguf(folder / "unpermuted.gguf", wrong, config, {n: "F32" for n in wrong})
    rows = rows_by_name(audit(folder / "hf", folder / "unpermuted.gguf"))
    for name in ("blk.0.attn_q.weight", "blk.1.attn_k.weight"):
        assert rows[name]["sqnr_db"] < 0
    assert rows["blk.0.attn_v.weight"]["sqnr_db"] == np.inf


def test_tensors_on_one_side_only_and_mismatched_shapes_are_listed_with_their_reason(llama):
    folder, _, config, tensors = llama
    changed = dict(tensors)
    del changed["output.weight"]
    changed["rope_freqs.weight"] = np.ones(32, np.float32)
    changed["blk.0.ffn_up.weight"] = tensors["blk.0.ffn_up.weight"][:256]       # rows cut
    changed["blk.0.ffn_down.weight"] = np.ascontiguousarray(tensors["blk.0.ffn_down.weight"].T)
    ap.write_gguf(folder / "changed.gguf", changed, config, {})
    doc = audit(folder / "hf", folder / "changed.gguf")
    rows = rows_by_name(doc)
    assert rows["rope_freqs.weight"]["side"] == "quantized"
    assert rows["rope_freqs.weight"]["reason"].startswith("only in the quantized file")
    assert rows["lm_head.weight"]["side"] == "original"
    assert rows["lm_head.weight"]["reason"].startswith("only in the original")
    assert rows["blk.0.ffn_up.weight"]["reason"].startswith("shape mismatch")
    assert rows["blk.0.ffn_down.weight"]["reason"].startswith("transposed layout")
    for name in ("rope_freqs.weight", "lm_head.weight", "blk.0.ffn_up.weight",
                 "blk.0.ffn_down.weight"):
        assert rows[name]["sqnr_db"] is None and rows[name]["mse"] is None
    assert doc["totals"]["tensors_not_paired"] == 4
    assert "lm_head.weight" not in doc["totals"]["worst"]


def test_experts_stacked_into_one_gguf_tensor_are_paired_one_by_one(tmp_path):
    rng = np.random.default_rng(4)
    config = ap.llama_config(layers=1, hidden=256, heads=4, kv_heads=4, ffn=256, vocab=256)
    config.update(num_local_experts=3, architectures=["MixtralForCausalLM"])
    experts = {f"model.layers.0.block_sparse_moe.experts.{e}.w{k}.weight":
               (rng.standard_normal((256, 256)) * 0.05).astype(np.float32)
               for e in range(3) for k in (1, 2, 3)}
    arrays = {"model.embed_tokens.weight": rng.standard_normal((256, 256)).astype(np.float32),
              **experts}
    (tmp_path / "hf").mkdir()
    ap.checkpoints.write_safetensors(tmp_path / "hf" / "model.safetensors", arrays)
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    stacked = {"token_embd.weight": arrays["model.embed_tokens.weight"]}
    for k, kind in ((1, "gate"), (2, "down"), (3, "up")):
        stacked[f"blk.0.ffn_{kind}_exps.weight"] = np.stack(
            [experts[f"model.layers.0.block_sparse_moe.experts.{e}.w{k}.weight"]
             for e in range(3)])
    ap.write_gguf(tmp_path / "moe.gguf", stacked, config, {n: "q4_K" for n in stacked})
    reference = ap.dequantized(tmp_path / "moe.gguf")
    rows = rows_by_name(audit(tmp_path / "hf", tmp_path / "moe.gguf"))
    for e in range(3):
        row = rows[f"blk.0.ffn_down_exps.weight[{e}]"]
        assert row["original_name"] == f"model.layers.0.block_sparse_moe.experts.{e}.w2.weight"
        expected = ap.sqnr_db(experts[row["original_name"]],
                              reference["blk.0.ffn_down_exps.weight"][e])
        assert row["sqnr_db"] == pytest.approx(expected, abs=1e-9)
        assert row["reproduced"] is True and row["shape"] == [256, 256]


def test_slab_size_changes_no_result_beyond_summation_order(llama):
    folder, _, config, tensors = llama
    ap.write_gguf(folder / "slabs.gguf", tensors, config, {n: "q4_K" for n in tensors})
    small = rows_by_name(audit(folder / "hf", folder / "slabs.gguf", slab_values=1000))
    large = rows_by_name(audit(folder / "hf", folder / "slabs.gguf", slab_values=1 << 24))
    for name, row in small.items():
        assert row["sqnr_db"] == pytest.approx(large[name]["sqnr_db"], rel=1e-12, abs=1e-12)
        assert row["reproduced"] == large[name]["reproduced"] is True
        assert row["max_abs_error"] == large[name]["max_abs_error"]


def test_a_bf16_original_converted_through_f16_is_reproduced_block_by_block(tmp_path):
    """BF16 weights that F16 rounds only where they are tiny (below 2^-17): the blocks the
    rounding leaves alone are the plain quantization's, the others are quantized again; one
    block of tiny values makes the plain quantization differ from the file."""
    arrays, config = ap.hf_llama(tmp_path / "hf", seed=9, dtype="BF16", layers=1, hidden=256,
                                 heads=4, kv_heads=2, ffn=256, vocab=256)
    tiny = np.float32(3e-7) * np.arange(1, 33, dtype=np.float32)
    bits = ap.checkpoints.to_bf16_bits(tiny).astype(np.uint32) << 16
    arrays["model.layers.0.mlp.up_proj.weight"][5, 64:96] = bits.view(np.float32)
    ap.checkpoints.write_safetensors(tmp_path / "hf" / "model.safetensors", arrays, "BF16")
    tensors = ap.gguf_tensors(arrays, config)
    rounded = {n: x.astype(np.float16).astype(np.float32) for n, x in tensors.items()}
    ap.write_gguf(tmp_path / "m.gguf", rounded, config,
                  {n: "q8_0" if "ffn_up" in n else "q4_K" for n in rounded})
    rows = rows_by_name(audit(tmp_path / "hf", tmp_path / "m.gguf", slab_values=1 << 14))
    assert rows["blk.0.ffn_up.weight"]["reproduced_as"] == "plain via F16"
    assert all(r["reproduced"] for r in rows.values())


def test_a_gguf_against_the_f16_gguf_it_was_quantized_from(llama):
    """llama-quantize's own input as the original: the same names and row order on both sides
    (no permutation to undo), every block reproduced from the F16 values."""
    folder, _, config, tensors = llama
    ap.write_gguf(folder / "f16.gguf", tensors, config, {n: "F16" for n in tensors})
    f16 = {n: x.astype(np.float16).astype(np.float32) if x.ndim == 2 else x
           for n, x in tensors.items()}
    ap.write_gguf(folder / "from_f16.gguf", f16, config, {n: "q5_K" for n in tensors})
    rows = rows_by_name(audit(folder / "f16.gguf", folder / "from_f16.gguf"))
    assert all(r["reproduced_as"] == "plain" and r["original_name"] == n
               for n, r in rows.items())
    assert not any("permutes" in note for r in rows.values() for note in r["notes"])


def test_a_pair_mounted_in_parts_audits_as_the_whole_files(llama, tmp_path):
    """The page mounts files over 1 GiB as slices of at most 1 GiB (Pyodide cannot seek past
    2 GiB): the audit of both sides split into parts, at an odd size so that headers, tensors
    and blocks straddle the cuts, is the audit of the whole files, digit for digit
    (bench/audit_page.py checks the same on a 2.26 GiB original in the page)."""
    import shutil

    from tests.scan.test_scan import split_into_parts

    folder, _, config, tensors = llama
    ap.write_gguf(folder / "parts.gguf", tensors, config, typed(tensors, seed=1))
    whole = audit(folder / "hf", folder / "parts.gguf", slab_values=1 << 12)
    parted = tmp_path / "parted"
    shutil.copytree(folder / "hf", parted / "hf")
    shutil.copy(folder / "parts.gguf", parted / "model.gguf")
    split_into_parts(parted / "hf" / "model.safetensors", 9_973)
    split_into_parts(parted / "model.gguf", 7_777)
    assert not (parted / "model.gguf").exists()
    got = audit(parted / "hf", parted / "model.gguf", slab_values=1 << 12)
    assert len(got["tensors"]) == len(tensors)
    assert json.dumps(got["tensors"], sort_keys=True) == json.dumps(whole["tensors"],
                                                                    sort_keys=True)
    assert got["totals"] == whole["totals"]


def test_sides_given_the_other_way_round_are_noticed(llama):
    """A Q4_K GGUF given as the original and the float model as the quantized one audits
    without a word (found by the new-user walk): the document now asks, and only then."""
    folder, _, config, tensors = llama
    ap.write_gguf(folder / "sides.gguf", tensors, config, {n: "q4_K" for n in tensors
                                                             if tensors[n].ndim == 2})
    right = audit(folder / "hf", folder / "sides.gguf")
    assert not [n for n in right["notes"] if "other way round" in n]
    swapped = audit(folder / "sides.gguf", folder / "hf")
    held = sum(1 for x in tensors.values() if x.ndim == 2)
    [note] = [n for n in swapped["notes"] if "other way round" in n]
    assert note.startswith(f"the original holds {held} quantized tensors and the quantized "
                           f"side none")
