#!/usr/bin/python3
"""Independent reference for the GPT-2 family (GPT2LMHeadModel, Hugging Face semantics) and for adapters on it.

Run:  /usr/bin/python3 scripts/reference/make_gpt2_fixtures.py      (Debian python3-torch; no network)

Writes tests/fixtures/gpt2/ (see the README there). Plain torch only, nothing from the C++ code. The forward
pass mirrors transformers' eager GPT-2: learned positions added to the token embeddings, pre-norm LayerNorm
blocks, a fused c_attn split into q, k, v, gelu_new written out as its formula, and Conv1D layers, whose
weights are stored [in, out] and applied as x @ W + b. Runs in float64; logits stored as float32.
Deterministic (fixed seeds, sorted JSON).
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_llama_fixtures import (check, lora_config, peft_matches, prompt_learning_config,  # noqa: E402
                                 read_safetensors, write_json, write_safetensors)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "gpt2")
FAKE_GPT2 = os.environ.get("FAKE_GPT2", "/work/shared/data/fake-gpt2-random-hf")
CONV1D = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def activation(name):
    return {"gelu_new": gelu_new, "relu": torch.relu,
            "gelu": lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))}[name]


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def forward(cfg, weights, ids, mask, lora=None, ia3=None, prompt=None, prefix=None, dtype=torch.float64):
    """Logits [B, T, V]. weights: checkpoint names with the transformer. prefix, Conv1D weights [in, out].
    lora: {module: (A [r, in], B [out, r], s)} adds s * B (A x); ia3: {module: (l, feedforward)} scales the input
    (feed-forward) or the output. prompt [l, H]: virtual tokens at positions 0..l-1 (real tokens shift by l).
    prefix [l, 2 * L * H]: HF PEFT's layout, column block 2i = layer i's keys, 2i + 1 its values, (n_h, d_h)
    each; visible to every query; as HF's past_key_values they count as past tokens, so real positions start at l."""
    W = {k: v.to(dtype) for k, v in weights.items()}
    H, n_h, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    d_h, eps = H // n_h, cfg.get("layer_norm_epsilon", 1e-5)
    act = activation(cfg.get("activation_function", "gelu_new"))
    B, T = ids.shape

    def conv1d(x, name):
        if ia3 and name in ia3 and ia3[name][1]:
            x = x * ia3[name][0].to(dtype).reshape(-1)
        y = x @ W[name + ".weight"] + W[name + ".bias"]
        if lora and name in lora:
            A, Bm, s = lora[name]
            y = y + s * ((x @ A.to(dtype).T) @ Bm.to(dtype).T)
        if ia3 and name in ia3 and not ia3[name][1]:
            y = y * ia3[name][0].to(dtype).reshape(-1)
        return y

    x = W["transformer.wte.weight"][ids]
    l = 0
    if prompt is not None:
        l = prompt.shape[0]
        x = torch.cat([prompt.to(dtype)[None].expand(B, -1, -1), x], dim=1)
        mask = torch.cat([torch.ones(B, l, dtype=mask.dtype), mask], dim=1)
        T = T + l
    past = 0 if prefix is None else prefix.shape[0]
    x = x + W["transformer.wpe.weight"][torch.arange(past, past + T)][None]
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None] & mask.bool()[:, None, None, :]
    if prefix is not None:
        lp = prefix.shape[0]
        P = prefix.to(dtype).view(lp, 2 * L, n_h, d_h)
        allowed = torch.cat([torch.ones(B, 1, T, lp, dtype=torch.bool), allowed.expand(B, 1, T, T)], dim=-1)
    for i in range(L):
        p = f"transformer.h.{i}."
        n = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        q, k, v = conv1d(n, p + "attn.c_attn").split(H, dim=-1)
        q, k, v = (t.view(B, T, n_h, d_h).transpose(1, 2) for t in (q, k, v))  # [B, n_h, T, d_h]
        if prefix is not None:
            k = torch.cat([P[:, 2 * i].permute(1, 0, 2)[None].expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([P[:, 2 * i + 1].permute(1, 0, 2)[None].expand(B, -1, -1, -1), v], dim=2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d_h)
        if cfg.get("scale_attn_by_inverse_layer_idx"):
            scores = scores / (i + 1)
        scores = scores.masked_fill(~allowed, float("-inf"))
        a = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, H)
        x = x + conv1d(a, p + "attn.c_proj")
        n = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        x = x + conv1d(act(conv1d(n, p + "mlp.c_fc")), p + "mlp.c_proj")
    x = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)[:, l:]
    head = W["transformer.wte.weight"] if cfg.get("tie_word_embeddings", True) else W["lm_head.weight"]
    return x @ head.T


def gpt2_config(V=64, H=16, n_h=4, L=2, P=32, inner=None, act="gelu_new", tied=True, inverse_layer=False):
    cfg = {"activation_function": act, "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1, "bos_token_id": 0,
           "embd_pdrop": 0.1, "eos_token_id": 0, "initializer_range": 0.02, "layer_norm_epsilon": 1e-5,
           "model_type": "gpt2", "n_ctx": P, "n_embd": H, "n_head": n_h, "n_inner": inner, "n_layer": L,
           "n_positions": P, "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
           "scale_attn_by_inverse_layer_idx": inverse_layer, "scale_attn_weights": True, "torch_dtype": "float32",
           "use_cache": True, "vocab_size": V}
    if not tied:
        cfg["tie_word_embeddings"] = False
    return cfg


def make_weights(cfg, seed):
    """Checkpoint tensors (transformer. names, Conv1D [in, out]) in a fixed order from one seed."""
    g = torch.Generator().manual_seed(seed)
    V, H, L, P = cfg["vocab_size"], cfg["n_embd"], cfg["n_layer"], cfg["n_positions"]
    I = cfg["n_inner"] or 4 * H
    shapes = {"transformer.wte.weight": [V, H], "transformer.wpe.weight": [P, H],
              "transformer.ln_f.weight": [H], "transformer.ln_f.bias": [H]}
    if cfg.get("tie_word_embeddings") is False:
        shapes["lm_head.weight"] = [V, H]
    conv = {"attn.c_attn": [H, 3 * H], "attn.c_proj": [H, H], "mlp.c_fc": [H, I], "mlp.c_proj": [I, H]}
    for i in range(L):
        p = f"transformer.h.{i}."
        for norm in ("ln_1", "ln_2"):
            shapes[p + norm + ".weight"], shapes[p + norm + ".bias"] = [H], [H]
        for m, s in conv.items():
            shapes[p + m + ".weight"], shapes[p + m + ".bias"] = s, [s[1]]
    W = {}
    for name in sorted(shapes):
        r = torch.randn(shapes[name], generator=g)
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            W[name] = 1.0 + 0.1 * r
        elif name in ("transformer.wte.weight", "transformer.wpe.weight"):
            W[name] = 0.5 * r
        else:
            W[name] = 0.2 * r
    return W


def make_inputs(V, seed, B=2, T=9, pad=3):
    """Row 0 full length; row 1 right-padded by `pad` positions with id 0."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.int64)
    mask[1, T - pad:] = 0
    ids[1, T - pad:] = 0
    return ids, mask


def write_expected(d, ids, mask, logits):
    write_safetensors(os.path.join(d, "expected.safetensors"),
                      {"input_ids": ids, "attention_mask": mask, "logits": logits.float()})


def write_model(name, cfg, W, ids, mask, stored=None):
    """A model directory; `stored` (optional) is what the file holds if it differs from W's naming."""
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "config.json"), cfg)
    write_safetensors(os.path.join(d, "model.safetensors"), stored if stored is not None else W)
    logits = forward(cfg, W, ids, mask)
    write_expected(d, ids, mask, logits)
    return logits


def write_lora(name, cfg, W, ids, mask, r, alpha, targets, seed):
    """A PEFT LoRA adapter on Conv1D layers: lora_A [r, in], lora_B [out, r] as for nn.Linear, fan_in_fan_out
    true (PEFT sets it for Conv1D targets)."""
    g = torch.Generator().manual_seed(seed)
    lora, tensors = {}, {}
    for i in range(cfg["n_layer"]):
        for m in CONV1D:
            path = f"transformer.h.{i}.{m}"
            if not peft_matches(targets, path):
                continue
            in_f, out_f = W[path + ".weight"].shape
            A, Bm = 0.2 * torch.randn(r, in_f, generator=g), 0.2 * torch.randn(out_f, r, generator=g)
            lora[path] = (A, Bm, alpha / r)
            tensors[f"base_model.model.{path}.lora_A.weight"] = A
            tensors[f"base_model.model.{path}.lora_B.weight"] = Bm
    config = lora_config(r, alpha, targets, False)
    config.update(base_model_name_or_path="gpt2_tiny", fan_in_fan_out=True)
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "adapter_config.json"), config, newline=False)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors)
    logits = forward(cfg, W, ids, mask, lora=lora)
    write_expected(d, ids, mask, logits)
    return lora, logits


def write_ia3(name, cfg, W, ids, mask, targets, feedforward, seed):
    """A PEFT (IA)3 adapter: ia3_l [out, 1] scales a target's output, [1, in] a feed-forward target's input."""
    g = torch.Generator().manual_seed(seed)
    ia3, tensors = {}, {}
    for i in range(cfg["n_layer"]):
        for m in CONV1D:
            path = f"transformer.h.{i}.{m}"
            if not peft_matches(targets, path):
                continue
            ff = peft_matches(feedforward, path)
            in_f, out_f = W[path + ".weight"].shape
            l = 1.0 + 0.3 * torch.randn([1, in_f] if ff else [out_f, 1], generator=g)
            ia3[path] = (l, ff)
            tensors[f"base_model.model.{path}.ia3_l"] = l
    config = {"auto_mapping": None, "base_model_name_or_path": "gpt2_tiny", "exclude_modules": None,
              "fan_in_fan_out": True, "feedforward_modules": feedforward, "inference_mode": True,
              "init_ia3_weights": True, "modules_to_save": None, "peft_type": "IA3", "revision": None,
              "target_modules": targets, "task_type": "CAUSAL_LM"}
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "adapter_config.json"), config, newline=False)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors)
    logits = forward(cfg, W, ids, mask, ia3=ia3)
    write_expected(d, ids, mask, logits)
    return logits


def write_prompt_learning(name, cfg, W, ids, mask, kind, l, seed):
    g = torch.Generator().manual_seed(seed)
    H, n_h, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    if kind == "prompt":
        table = torch.rand(l, H, generator=g) - 0.5
        config = prompt_learning_config("PROMPT_TUNING", {"num_hidden_layers": L}, l, H, n_h,
                                        {"prompt_tuning_init": "RANDOM", "prompt_tuning_init_text": None,
                                         "tokenizer_kwargs": None, "tokenizer_name_or_path": None})
        logits = forward(cfg, W, ids, mask, prompt=table)
    else:
        table = torch.randn(l, 2 * L * H, generator=g)
        config = prompt_learning_config("PREFIX_TUNING", {"num_hidden_layers": L}, l, H, n_h,
                                        {"encoder_hidden_size": H, "prefix_projection": False})
        logits = forward(cfg, W, ids, mask, prefix=table)
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), {"prompt_embeddings": table})
    write_json(os.path.join(d, "adapter_config.json"), config, newline=False)
    write_expected(d, ids, mask, logits)
    return logits


def self_checks(cfg, W, ids, mask, logits, lora, lora_logits):
    ok = True
    f32 = forward(cfg, W, ids, mask, dtype=torch.float32)
    err = (f32.double() - logits).abs().max().item() / logits.abs().max().item()
    ok &= check("float32 run == float64 reference", err < 1e-5, f"max |diff| / max |logit| {err:.2e}")
    ids2 = ids.clone()
    ids2[0, -1] = 3 if ids[0, -1] != 3 else 4
    l2 = forward(cfg, W, ids2, mask)
    ok &= check("causal: later token leaves earlier logits", torch.equal(l2[0, :-1], logits[0, :-1]), "")
    n = int(mask[1].sum())
    alone = forward(cfg, W, ids[1:, :n], mask[1:, :n])
    err = (alone - logits[1:, :n]).abs().max().item()
    ok &= check("right padding: padded row == same row unpadded", err < 1e-12, f"max |diff| {err:.2e}")
    # gelu_new as written == torch's tanh approximation (two independent spellings of the formula)
    x = torch.linspace(-6, 6, 101, dtype=torch.float64)
    err = (gelu_new(x) - torch.nn.functional.gelu(x, approximate="tanh")).abs().max().item()
    ok &= check("gelu_new formula == torch gelu(tanh)", err < 1e-12, f"{err:.2e}")
    # Conv1D: x @ W + b is nn.Linear with the transposed weight
    name = "transformer.h.0.mlp.c_fc"
    xin = torch.randn(3, W[name + ".weight"].shape[0], dtype=torch.float64)
    err = (xin @ W[name + ".weight"].double() -
           torch.nn.functional.linear(xin, W[name + ".weight"].double().T)).abs().max().item()
    ok &= check("Conv1D == Linear on the transpose", err < 1e-12, f"{err:.2e}")
    merged = dict(W)
    for path, (A, Bm, s) in lora.items():  # fan_in_fan_out merge: W += (s B A)^T
        merged[path + ".weight"] = W[path + ".weight"].double() + (s * Bm.double() @ A.double()).T
    err = (forward(cfg, merged, ids, mask) - lora_logits).abs().max().item()
    ok &= check("LoRA merged with the transpose == unmerged", err < 1e-9, f"max |diff| {err:.2e}")
    return ok


def main():
    os.makedirs(OUT, exist_ok=True)
    ok = True
    cfg = gpt2_config()
    W = make_weights(cfg, 201)
    ids, mask = make_inputs(cfg["vocab_size"], 1201)
    logits = write_model("gpt2_tiny", cfg, W, ids, mask)
    lora, lora_logits = write_lora("gpt2_tiny_lora", cfg, W, ids, mask, 4, 8, ["c_attn", "mlp.c_proj"], 202)
    write_ia3("gpt2_tiny_ia3", cfg, W, ids, mask, ["c_attn", "mlp.c_proj"], ["mlp.c_proj"], 203)
    write_prompt_learning("gpt2_tiny_prompt", cfg, W, ids, mask, "prompt", 3, 204)
    write_prompt_learning("gpt2_tiny_prefix", cfg, W, ids, mask, "prefix", 3, 205)
    print("gpt2_tiny:")
    ok &= self_checks(cfg, W, ids, mask, logits, lora, lora_logits)

    # The original OpenAI layout: no transformer. prefix, causal-mask buffers h.N.attn.bias, an untied head,
    # explicit n_inner, exact gelu and the inverse-layer scaling.
    cfg2 = gpt2_config(V=40, H=12, n_h=3, L=3, P=24, inner=20, act="gelu", tied=False, inverse_layer=True)
    W2 = make_weights(cfg2, 211)
    stored = {(k[len("transformer."):] if k.startswith("transformer.") else k): v for k, v in W2.items()}
    for i in range(cfg2["n_layer"]):
        stored[f"h.{i}.attn.bias"] = torch.tril(torch.ones(24, 24)).view(1, 1, 24, 24)
    ids2, mask2 = make_inputs(cfg2["vocab_size"], 1211)
    write_model("gpt2_bare_names", cfg2, W2, ids2, mask2, stored=stored)

    if os.path.isdir(FAKE_GPT2):  # the random GPT-2 shipped in ../shared/data
        cfg3 = __import__("json").load(open(os.path.join(FAKE_GPT2, "config.json")))
        W3 = read_safetensors(os.path.join(FAKE_GPT2, "model.safetensors"))
        ids3 = torch.tensor([[15496, 11, 995, 0, 50256, 464, 2068], [40, 588, 257, 3797, 0, 0, 0]])
        mask3 = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])
        # 50257-wide logits would make a 2.8 MB fixture: keep the first 1024 columns and, for the whole
        # vocabulary, each position's logsumexp.
        logits3 = forward(cfg3, W3, ids3, mask3)
        write_safetensors(os.path.join(OUT, "fake_gpt2_expected.safetensors"),
                          {"input_ids": ids3, "attention_mask": mask3, "logits_head": logits3[..., :1024].float(),
                           "logsumexp": torch.logsumexp(logits3, dim=-1).float()})
    else:
        print(f"  (no {FAKE_GPT2}: fake_gpt2_expected.safetensors not rewritten)")
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
