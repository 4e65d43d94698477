"""The planner on every real architecture: BERT, GPT-2, Llama, Gemma 3, Qwen2 (q/k/v biases, tied
embeddings), Phi-3 (fused qkv_proj and gate_up_proj), Mixtral and Qwen2-MoE (per-expert 2-D
tensors in safetensors, 3-D ffn_*_exps in GGUF). Each is a small checkpoint with the real names
and shape pattern (tests/support/architectures.py), scanned with llama.cpp's preset as a
safetensors checkpoint with its config.json and as the F16 GGUF convert_hf_to_gguf.py writes,
then planned at 4.5 and 6.0 bits per weight:

- every parameter is counted, and every tensor of the GGUF has its name (quantcalc's table,
  set beside gguf-py's TensorNameMap here);
- each `--tensor-type PATTERN=TYPE` names a ggml type and finds a tensor of that GGUF, and
  applied as llama-quantize applies them they give each tensor its planned type;
- roles are the GGUF name's, from either spelling;
- llama.cpp's presets give each tensor the type llama-quant.cpp gives it: tied embeddings take
  the output's rule, MoE layers by their block number, 8-expert models' attention bumps;
- an already-quantized GGUF of each gets one line saying why there is nothing to plan.
"""

import pytest

from quantcalc import api
from quantcalc.engine.compare import PRESETS
from quantcalc.plan import compressed_tensors, llama_presets, llama_quantize
from quantcalc.plan import report as plan_report
from quantcalc.scan import model_scan
from quantcalc.scan.roles import layer_and_role
from quantcalc.schema import gguf_names
from tests.support import architectures as A

gguf = pytest.importorskip("gguf", reason="gguf (llama.cpp's gguf-py) names what convert writes")

ARCHS = {make.__name__: make for make in A.ALL}
TARGETS = (4.5, 6.0)


class Model:
    """An architecture written both ways and scanned: its safetensors scan and GGUF scan,
    convert's names for each Hugging Face tensor, and the GGUF's tensor names."""

    def __init__(self, arch, folder):
        self.arch = arch
        self.hf_path = A.write_safetensors(folder / "hf", arch)
        self.gguf_path = folder / f"{arch.key}-f16.gguf"
        self.names = A.write_gguf(self.gguf_path, arch, "F16")
        self.gguf_tensors = set(A.converted(arch, arch.arrays())[0])
        self.docs = {"safetensors": scan(self.hf_path), "gguf": scan(self.gguf_path)}


def scan(path):
    reply = api.scan_model([str(path)], PRESETS["llama.cpp"], whole_values=1 << 26)
    assert "error" not in reply, reply
    return reply["document"]


def plan(doc, bpw):
    reply = api.plan(doc, {"target_bpw": bpw})
    assert "error" not in reply, reply["error"]
    return reply["plan"]


@pytest.fixture(scope="module", params=sorted(ARCHS))
def model(request, tmp_path_factory):
    return Model(ARCHS[request.param](), tmp_path_factory.mktemp(request.param))


def split(line):
    pattern, kind = line.rsplit("=", 1)
    return pattern, kind.upper()


# ---------------------------------------------------------------- the plan and its export
@pytest.mark.parametrize("source", ["safetensors", "gguf"])
def test_every_architecture_plans_and_exports_gguf_names(model, source):
    doc = model.docs[source]
    assert doc["model"]["architecture"] == model.arch.gguf_arch, doc["model"]
    assert doc["model"]["block_count"] == model.arch.block_count
    stored = sum(x.size for x in (model.arch.arrays() if source == "safetensors" else
                                  A.converted(model.arch, model.arch.arrays())[0]).values())
    for bpw in TARGETS:
        planned = plan(doc, bpw)
        assert stored == sum(r["parameters"] for r in doc["tensors"])
        # a tensor convert drops is not in the GGUF: no bits, not counted in its bits per weight
        dropped = sum(r["parameters"] for r in planned["tensors"] if r["gguf_name"] is None
                      and "drops" in (r["kept"] or ""))
        assert planned["parameters"] == stored - dropped
        assert planned["bits_per_weight"] <= bpw * (1 + 1e-9)
        assert not any("not among" in note or "guess" in note for note in planned["notes"])
        lq = planned["llama_quantize"]
        assert lq["made"] and lq["base"] and not lq["unmapped"], lq
        assert " " not in lq["command"].split()[-2]
        wanted = {}
        for row in planned["tensors"]:
            if row["gguf_name"] and llama_quantize.quantizes(row["gguf_name"], llama_quantize.ggml_dims(row["shape"])) \
                    and not row["kept"]:
                wanted[row["gguf_name"]] = row["format"]
        lines = [split(line) for line in lq["tensor_types"]]
        for line, (pattern, kind) in zip(lq["tensor_types"], lines):
            assert " " not in line and kind in gguf_names.GGML_TYPES, line
            assert any(llama_quantize.effective([(pattern, kind)], None, model.gguf_tensors)
                       .values()), f"{pattern} finds no tensor of the GGUF convert writes"
        assert llama_quantize.effective(lines, lq["base"], wanted) == wanted
        assert set(wanted) <= model.gguf_tensors


@pytest.mark.parametrize("source", ["safetensors", "gguf"])
def test_each_tensor_has_the_gguf_name_convert_gives_it(model, source):
    """quantcalc's names (its table, plan/naming.py) against gguf-py's TensorNameMap with
    convert's renaming, stacking and dropping done in the test."""
    rows = plan(model.docs[source], 6.0)["tensors"]
    if source == "gguf":
        assert {r["name"] for r in rows} == model.gguf_tensors
        assert all(r["gguf_name"] == r["name"] for r in rows)
        return
    got = {r["name"]: r for r in rows}
    for name, _ in model.arch.tensors:
        expected = model.names.get(name)
        if expected is None:  # convert drops it (BERT's pooler, GPT-2's mask buffers)
            assert got[name]["gguf_name"] is None and got[name]["kept"], name
            assert "drops" in got[name]["kept"] or len(got[name]["shape"]) < 2 or \
                "not floats" in got[name]["kept"], got[name]["kept"]
        elif A.expert_index(name) is not None:  # stacked: planned as one tensor
            assert name not in got and expected in {r["gguf_name"] for r in rows}, name
        else:
            assert got[name]["gguf_name"] == expected, name


def test_a_layers_experts_are_planned_as_the_one_tensor_convert_stacks(model):
    """The stack's error under its format is the sum of its experts' errors, its shape the
    GGUF's, and it lists the experts (an llm-compressor recipe targets their modules)."""
    if not model.arch.experts:
        return
    doc = model.docs["safetensors"]
    by_name = {r["name"]: r for r in doc["tensors"]}
    gguf_shapes = {n: list(x.shape) for n, x in
                   A.converted(model.arch, model.arch.arrays())[0].items()}
    stacks = [r for r in plan(doc, 4.5)["tensors"] if r.get("experts")]
    assert len(stacks) == 3 * model.arch.block_count
    for row in stacks:
        assert len(row["experts"]) == model.arch.experts and row["shape"] == \
            gguf_shapes[row["gguf_name"]]
        members = [by_name[n] for n in row["experts"]]
        error = sum(next(r["mse"] for r in m["results"] if r["format"] == row["format"])
                    * m["parameters"] for m in members)
        assert row["error"] == pytest.approx(error, rel=1e-12)
        assert row["parameters"] == sum(m["parameters"] for m in members)
    targets = compressed_tensors.recipe(
        [{**stacks[0], "format": "INT4"}], {"INT4": {"settings": {
            "format": "int", "bits": "4", "granularity": "channel"}}})["groups"][0]["targets"]
    assert targets == [n[:-len(".weight")] for n in stacks[0]["experts"]]


# ---------------------------------------------------------------- roles
ROLE_OF_KIND = {"token_embd": "embed", "position_embd": "embed", "token_types": "embed",
                "output": "output", "attn_q": "attn_q", "attn_k": "attn_k", "attn_v": "attn_v",
                "attn_qkv": "attn_qkv", "attn_output": "attn_o", "ffn_gate_inp": "other",
                "ffn_gate_inp_shexp": "other"}


def role_of_gguf_name(name):
    """The role of a GGUF tensor: llama.cpp's category (experts and shared experts are FFN
    tensors to llama-quant.cpp too), norms, routers as other."""
    kind = name.rsplit(".", 1)[0].split(".")[-1]
    if kind.endswith("norm"):
        return "norm"
    if kind in ROLE_OF_KIND:
        return ROLE_OF_KIND[kind]
    for part in ("ffn_gate", "ffn_up", "ffn_down"):
        if kind.startswith(part):
            return part
    raise AssertionError(f"no role expected for {name}")


def test_roles_are_the_gguf_names_in_either_spelling(model):
    for doc in model.docs.values():
        for row in doc["tensors"]:
            gguf_name = model.names.get(row["name"], row["name"])
            if gguf_name not in model.gguf_tensors:
                continue  # dropped by convert
            assert row["role"] == role_of_gguf_name(gguf_name), (row["name"], row["role"])
            assert row["layer"] == layer_and_role(gguf_name)[0], row["name"]


# ---------------------------------------------------------------- llama.cpp's presets
def gguf_types(doc, preset):
    """{GGUF name: type} of llama.cpp's preset as the plan prices it (a safetensors scan's
    tensors under their GGUF names, its experts stacked)."""
    prepared = plan_report.prepare(model_scan.from_plain(doc))
    assert preset in {p["preset"] for p in prepared.presets}, prepared.missing
    names = prepared.naming
    types = llama_presets.assign(prepared.doc["tensors"], preset, names["names"],
                                 names["block_count"])
    return {names["names"][name]: kind for name, kind in types.items()}


def expected_q4_k_m(arch, gguf_tensors):
    """Q4_K_M by llama-quant.cpp for two blocks: use_more_bits(i, 2) is true for block 1 only,
    so attn_v / attn_qkv and ffn_down (experts and shared experts too: with experts the layer is
    the name's block number) take Q6_K there; output Q6_K, and token_embd Q6_K too when there is
    no output.weight (tied); with 8 experts attn_v and attn_k take Q8_0 and attn_output Q5_K."""
    tied = "output.weight" not in gguf_tensors
    out = {}
    for name in gguf_tensors:
        if not llama_quantize.quantizes(name, 2) or "ffn_gate_inp" in name:
            continue
        kind, block = "Q4_K", layer_and_role(name)[0]
        if name == "output.weight" or (tied and name == "token_embd.weight"):
            kind = "Q6_K"
        elif arch.experts == 8 and (".attn_v." in name or ".attn_k." in name):
            kind = "Q8_0"
        elif arch.experts == 8 and ".attn_output." in name:
            kind = "Q5_K"
        elif any(f".{k}." in name for k in ("attn_v", "attn_qkv")) or ".ffn_down" in name:
            kind = "Q6_K" if block == 1 else "Q4_K"
        out[name] = kind
    return out


@pytest.mark.parametrize("source", ["safetensors", "gguf"])
def test_presets_give_each_tensor_what_llama_quant_gives_it(model, source):
    types = gguf_types(model.docs[source], "Q4_K_M")
    expected = expected_q4_k_m(model.arch, model.gguf_tensors)
    assert {n: t for n, t in types.items() if n in expected} == expected
    assert set(types) - set(expected) == set()


def test_the_safetensors_scan_prices_presets_as_its_gguf(model):
    for preset in ("Q2_K", "Q3_K_M", "Q4_K_S", "Q5_K_M", "Q6_K"):
        assert gguf_types(model.docs["safetensors"], preset) == \
            gguf_types(model.docs["gguf"], preset), preset


# ---------------------------------------------------------------- other GGUF inputs
@pytest.mark.parametrize("key, outtype", [("llama", "BF16"), ("qwen2", "F32")])
def test_bf16_and_f32_ggufs_plan_under_their_own_names(tmp_path, key, outtype):
    arch = ARCHS[key]()
    path = tmp_path / f"{key}-{outtype.lower()}.gguf"
    A.write_gguf(path, arch, outtype)
    doc = scan(path)
    names = set(A.converted(arch, arch.arrays())[0])
    planned = plan(doc, 4.5)
    assert {r["name"] for r in planned["tensors"]} == names
    assert all(r["gguf_name"] == r["name"] for r in planned["tensors"])
    assert planned["llama_quantize"]["made"] and path.name in planned["llama_quantize"]["command"]


@pytest.mark.parametrize("key", sorted(ARCHS))
def test_an_already_quantized_gguf_says_in_one_line_why_nothing_is_planned(tmp_path, key):
    arch = ARCHS[key]()
    path = tmp_path / f"{key}-q8_0.gguf"
    A.write_gguf(path, arch, "Q8_0")
    reply = api.plan(scan(path), {"target_bpw": 4.5}, name=path.name)
    message = reply["error"]["message"]
    assert "nothing to plan" in message and "already quantized" in message, message
    assert "\n" not in message and "--allow-requantize" in message
    # and known from the headers, before any scan (the command line refuses a plan up front)
    early = api.scan_inputs([str(path)])["plan_refusal"]
    assert early is not None and "nothing to plan" in early, key


# ---------------------------------------------------------------- presets in llama.cpp's order
def _rows(names_and_shapes):
    out = []
    for name, shape in names_and_shapes:
        layer, role = layer_and_role(name)
        out.append({"name": name, "shape": list(shape), "role": role, "layer": layer})
    return out


def test_presets_count_blocks_in_llama_cpp_order_not_file_order():
    """llama.cpp walks tensors sorted by block number (weight_name_comparer); a safetensors
    header lists them by name, so layer 10 comes before layer 2."""
    names = sorted(f"model.layers.{i}.{part}.weight" for i in range(12)
                   for part in ("self_attn.v_proj", "mlp.down_proj"))
    rows = _rows([(n, (256, 256)) for n in names])
    mapping = {n: gguf_names.name_map("llama", 12).get(n) for n in names}
    types = llama_presets.assign(rows, "Q4_K_M", mapping, block_count=12)
    more = [llama_presets.use_more_bits(i, 12) for i in range(12)]
    for i in range(12):
        expected = "Q6_K" if more[i] else "Q4_K"
        assert types[f"model.layers.{i}.self_attn.v_proj.weight"] == expected, i
        assert types[f"model.layers.{i}.mlp.down_proj.weight"] == expected, i


def test_moe_ffn_down_goes_by_the_block_number_of_all_blocks():
    """With experts, llama.cpp takes ffn_down's layer from its name and counts the model's
    blocks (hparams.n_layer), not the ffn_down tensors (an expert and a shared-expert ffn_down
    per block here)."""
    names = []
    for i in range(8):
        names += [(f"blk.{i}.ffn_down_exps.weight", (4, 256, 256)),
                  (f"blk.{i}.ffn_down_shexp.weight", (256, 256)),
                  (f"blk.{i}.attn_v.weight", (256, 256))]
    rows = _rows(names)
    types = llama_presets.assign(rows, "Q4_K_M", {n: n for n, _ in names}, block_count=8)
    for i in range(8):
        expected = "Q6_K" if llama_presets.use_more_bits(i, 8) else "Q4_K"
        assert types[f"blk.{i}.ffn_down_exps.weight"] == expected, i
        assert types[f"blk.{i}.ffn_down_shexp.weight"] == expected, i


def test_ggml_counts_a_tensor_of_one_row_as_1_d():
    assert llama_quantize.ggml_dims([1, 256]) == 1 and llama_quantize.ggml_dims([256]) == 1
    assert llama_quantize.ggml_dims([8, 1, 256]) == 3 and llama_quantize.ggml_dims([1, 1, 2]) == 1


@pytest.mark.parametrize("config, expected", [
    ({"model_type": "mixtral", "architectures": ["MixtralForCausalLM"]}, "llama"),
    ({"model_type": "mistral", "architectures": ["MistralForCausalLM"]}, "llama"),
    ({"model_type": "phi", "architectures": ["PhiForCausalLM"]}, "phi2"),
    ({"model_type": "phi3", "architectures": ["Phi3ForCausalLM"]}, "phi3"),
    ({"model_type": "qwen2_moe", "architectures": ["Qwen2MoeForCausalLM"]}, "qwen2moe"),
    ({"model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"]}, "gemma3"),
    ({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}, "gpt2"),
])
def test_config_json_names_the_architecture_convert_writes(config, expected):
    assert gguf_names.architecture_of_config(config)[0] == expected
