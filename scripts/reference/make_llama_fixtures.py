#!/usr/bin/python3
"""Independent reference for the Llama-family forward pass and LoRA math (Hugging Face semantics).

Run:  /usr/bin/python3 scripts/reference/make_llama_fixtures.py      (Debian python3-torch; no network)

Writes tests/fixtures/llama/ (see the README there). Everything is plain torch: no transformers,
safetensors, peft or sentencepiece package, and nothing from the C++ code, so the fixtures are an
independent check of it. The forward pass mirrors transformers' *eager* Llama / Qwen2 / Mistral code and
runs in float64; logits are stored as float32. Deterministic: one fixed seed per case, sorted JSON,
so rerunning reproduces identical bytes.
"""
import json
import math
import os
import re
import struct
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "llama")
STORIES = os.environ.get("STORIES260K_HF", "/work/shared/data/stories260K-hf")
PAD_ID = 0  # token id written at right-padded positions (attention_mask 0)

# ----------------------------------------------------------------------------- safetensors by hand
DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64}
NAMES = {v: k for k, v in DTYPES.items()}


def write_safetensors(path, tensors):
    """u64 LE header length, compact sorted JSON header padded with spaces to 8 bytes, then data in key order."""
    assert sys.byteorder == "little"
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        # numpy has no bfloat16: reinterpret 2-byte floats as int16 to get their raw bytes
        raw = (t.view(torch.int16) if t.dtype in (torch.float16, torch.bfloat16) else t).numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    js = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))
    return off  # bytes of tensor data (for the shard index's total_size)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    buf = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(buf[b:e]), dtype=DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_json(path, obj, newline=True):
    with open(path, "w") as f:  # indent 2 + sorted keys, as transformers / peft save them
        f.write(json.dumps(obj, indent=2, sort_keys=True) + ("\n" if newline else ""))


# ----------------------------------------------------------------------------- the forward pass
def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def rope_cos_sin(T, d_h, theta, dtype):
    # HF rotate_half convention: dimension i pairs with i + d_h/2, both using inv_freq[i mod d_h/2]
    inv_freq = 1.0 / theta ** (torch.arange(0, d_h, 2, dtype=torch.float64) / d_h)
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)  # [T, d_h/2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [T, d_h]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def dims(cfg):
    n_h = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads") or n_h
    d_h = cfg.get("head_dim") or cfg["hidden_size"] // n_h
    return n_h, n_kv, d_h


def forward(cfg, weights, ids, mask, lora=None, dtype=torch.float64, prompt=None, prefix=None, embeds=None,
            before_block=None, collect=None, hidden_only=False):
    """Logits [B, T, V]. lora: {module path: (A [r, in], B [out, r], scale)} added as s * B (A x).
    prompt [l, H]: virtual tokens before the input (positions 0..l-1, real tokens shifted by l, mask extended,
    their outputs dropped). prefix [l, 2*L*n_kv*d_h] in HF PEFT's layout: column block 2i = layer i's keys,
    2i+1 its values, each (n_kv, d_h); joined after RoPE, unrotated, visible to every query; like HF's
    past_key_values they count as past tokens, so the real tokens' positions start at l.
    For Ladder Side-Tuning: embeds [B, T, H] replace the embedding lookup, before_block(i, x) gives block i's
    input, collect (a list) receives the embeddings and every block's output, hidden_only returns the final
    normed hidden states instead of logits."""
    W = {k: v.to(dtype) for k, v in weights.items()}
    n_h, n_kv, d_h = dims(cfg)
    eps = cfg["rms_norm_eps"]
    B, T = ids.shape

    def linear(x, name):
        y = x @ W[name + ".weight"].T
        if name + ".bias" in W:  # optional biases are inferred from which tensors exist
            y = y + W[name + ".bias"]
        if lora and name in lora:
            A, Bm, s = lora[name]
            y = y + s * ((x @ A.to(dtype).T) @ Bm.to(dtype).T)
        return y

    x = W["model.embed_tokens.weight"][ids] if embeds is None else embeds.to(dtype)  # [B, T, H]
    if collect is not None:
        collect.append(x)
    l = 0
    if prompt is not None:
        l = prompt.shape[0]
        x = torch.cat([prompt.to(dtype)[None].expand(B, -1, -1), x], dim=1)
        mask = torch.cat([torch.ones(B, l, dtype=mask.dtype), mask], dim=1)
        T = T + l
    # [T, d_h], positions 0..T-1 for every row; after a prefix (HF's past_key_values) they start at its length
    past = 0 if prefix is None else prefix.shape[0]
    cos, sin = rope_cos_sin(past + T, d_h, cfg["rope_theta"], dtype)
    cos, sin = cos[past:], sin[past:]
    # query t may see key j iff j <= t and key j is a real token: [B, 1, T, T]
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, None] & mask.bool()[:, None, None, :]
    if prefix is not None:
        lp = prefix.shape[0]
        P = prefix.to(dtype).view(lp, 2 * cfg["num_hidden_layers"], n_kv, d_h)
        allowed = torch.cat([torch.ones(B, 1, T, lp, dtype=torch.bool), allowed.expand(B, 1, T, T)], dim=-1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        if before_block is not None:
            x = before_block(i, x)
        n = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = linear(n, p + "self_attn.q_proj").view(B, T, n_h, d_h).transpose(1, 2)  # [B, n_h, T, d_h]
        k = linear(n, p + "self_attn.k_proj").view(B, T, n_kv, d_h).transpose(1, 2)  # [B, n_kv, T, d_h]
        v = linear(n, p + "self_attn.v_proj").view(B, T, n_kv, d_h).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        if prefix is not None:  # [n_kv, l, d_h] per layer, the same for every row
            k = torch.cat([P[:, 2 * i].permute(1, 0, 2)[None].expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([P[:, 2 * i + 1].permute(1, 0, 2)[None].expand(B, -1, -1, -1), v], dim=2)
        # GQA as HF repeat_kv: query head h reads kv head h // (n_h / n_kv)
        k, v = k.repeat_interleave(n_h // n_kv, dim=1), v.repeat_interleave(n_h // n_kv, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d_h)  # [B, n_h, T, (l +) T]
        scores = scores.masked_fill(~allowed, float("-inf"))  # never a fully masked row: key 0 is real
        a = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, n_h * d_h)
        h = x + linear(a, p + "self_attn.o_proj")
        n = rms_norm(h, W[p + "post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(linear(n, p + "mlp.gate_proj")) * linear(n, p + "mlp.up_proj")
        x = h + linear(g, p + "mlp.down_proj")
        if collect is not None:
            collect.append(x)
    x = rms_norm(x, W["model.norm.weight"], eps)[:, l:]
    if hidden_only:
        return x
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.T


def prompt_learning_config(peft_type, cfg, l, token_dim, heads, extra):
    base = {"auto_mapping": None, "base_model_name_or_path": "reference", "inference_mode": True,
            "modules_to_save": None, "num_attention_heads": heads, "num_layers": cfg["num_hidden_layers"],
            "num_transformer_submodules": 1, "num_virtual_tokens": l, "peft_type": peft_type, "revision": None,
            "task_type": "CAUSAL_LM", "token_dim": token_dim}
    base.update(extra)
    return base


def write_prompt_learning(name, cfg, W, ids, mask, kind, l, seed):
    """A PROMPT_TUNING or PREFIX_TUNING adapter in HF PEFT's layout, with the logits it must give."""
    g = torch.Generator().manual_seed(seed)
    n_h, n_kv, d_h = dims(cfg)
    if kind == "prompt":
        table = torch.rand(l, cfg["hidden_size"], generator=g) - 0.5
        config = prompt_learning_config("PROMPT_TUNING", cfg, l, cfg["hidden_size"], n_h,
                                        {"prompt_tuning_init": "RANDOM", "prompt_tuning_init_text": None,
                                         "tokenizer_kwargs": None, "tokenizer_name_or_path": None})
        logits = forward(cfg, W, ids, mask, prompt=table)
    else:
        table = torch.randn(l, 2 * cfg["num_hidden_layers"] * n_kv * d_h, generator=g)
        config = prompt_learning_config("PREFIX_TUNING", cfg, l, n_kv * d_h, n_kv,
                                        {"encoder_hidden_size": cfg["hidden_size"], "prefix_projection": False})
        logits = forward(cfg, W, ids, mask, prefix=table)
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), {"prompt_embeddings": table})
    write_json(os.path.join(d, "adapter_config.json"), config, newline=False)
    write_safetensors(os.path.join(d, "expected.safetensors"),
                      {"input_ids": ids, "attention_mask": mask, "logits": logits.float()})
    return table, logits


def lst_forward(cfg, W, side, ids, mask, layers, r, temperature=0.1, dtype=torch.float64):
    """Ladder Side-Tuning (decoder-only): the backbone's embeddings and block outputs feed a side network of the
    same block type at width H/r (head dim d_h/r, feed-forward I/r) through gated ladders
    s <- mu_k s + (1 - mu_k) Down_{k+1}(b_{layers[k]}), mu_k = sigmoid(alpha_k / T), s_0 = Down_0(E(x));
    logits = head(Up(SideNorm(s))). side: the adapter's tensors without the base_model.model.side_network. prefix."""
    states = []
    forward(cfg, W, ids, mask, dtype=dtype, collect=states)
    S = {k: v.to(dtype) for k, v in side.items()}
    down = lambda i, x: x @ S[f"downsamplers.{i}.weight"].T + S[f"downsamplers.{i}.bias"]
    mu = torch.sigmoid(S["gates"] / temperature)
    n_h, n_kv, d_h = dims(cfg)
    side_cfg = dict(cfg, hidden_size=cfg["hidden_size"] // r, head_dim=d_h // r,
                    intermediate_size=cfg["intermediate_size"] // r, num_hidden_layers=len(layers))
    side_weights = {"model." + k[len("stack."):]: v for k, v in S.items() if k.startswith("stack.")}
    ladder = lambda k, x: mu[k] * x + (1 - mu[k]) * down(k + 1, states[layers[k] + 1])
    hidden = forward(side_cfg, side_weights, ids, mask, dtype=dtype, embeds=down(0, states[0]),
                     before_block=ladder, hidden_only=True)
    up = hidden @ S["upsampler.weight"].T + S["upsampler.bias"]
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return up @ head.to(dtype).T


def write_lst(name, cfg, W, ids, mask, r, layers, seed):
    """An LST adapter (this tool's format, docs/ADAPTER_FORMATS.md) with random side weights and gates away from
    zero, and the logits it must give."""
    g = torch.Generator().manual_seed(seed)
    n_h, n_kv, d_h = dims(cfg)
    H, I, n = cfg["hidden_size"], cfg["intermediate_size"], len(layers)
    h, dh, i = H // r, d_h // r, I // r
    shapes = {"gates": [n], "upsampler.weight": [H, h], "upsampler.bias": [H], "stack.norm.weight": [h]}
    for k in range(n + 1):
        shapes[f"downsamplers.{k}.weight"] = [h, H]
        shapes[f"downsamplers.{k}.bias"] = [h]
    block = {"self_attn.q_proj.weight": [n_h * dh, h], "self_attn.k_proj.weight": [n_kv * dh, h],
             "self_attn.v_proj.weight": [n_kv * dh, h], "self_attn.o_proj.weight": [h, n_h * dh],
             "mlp.gate_proj.weight": [i, h], "mlp.up_proj.weight": [i, h], "mlp.down_proj.weight": [h, i],
             "input_layernorm.weight": [h], "post_attention_layernorm.weight": [h]}
    for k in range(n):
        for m, shape in block.items():
            shapes[f"stack.layers.{k}.{m}"] = shape
    side = {}
    for key in sorted(shapes):
        t = torch.randn(shapes[key], generator=g)
        side[key] = 1.0 + 0.1 * t if key.endswith("norm.weight") else 0.3 * t
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"),
                      {"base_model.model.side_network." + k: v for k, v in side.items()})
    write_json(os.path.join(d, "adapter_config.json"),
               {"base_model_name_or_path": "reference", "gate_temperature": 0.1, "inference_mode": True,
                "init": "random", "layers": layers, "peft_type": "LST", "reduction_factor": r, "side_head_dim": dh,
                "side_hidden_size": h, "side_intermediate_size": i, "task_type": "CAUSAL_LM"}, newline=False)
    logits = lst_forward(cfg, W, side, ids, mask, layers, r)
    write_safetensors(os.path.join(d, "expected.safetensors"),
                      {"input_ids": ids, "attention_mask": mask, "logits": logits.float()})
    return side, logits


# ----------------------------------------------------------------------------- random tiny models
def hf_config(arch, V=48, H=24, I=32, L=2, n_h=4, n_kv=2, tied=False, head_dim=None, theta=10000.0,
              eps=1e-5, attention_bias=False, mlp_bias=False, dtype="float32"):
    model_type = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "MistralForCausalLM": "mistral"}[arch]
    cfg = {"architectures": [arch], "model_type": model_type, "vocab_size": V, "hidden_size": H,
           "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": n_h,
           "num_key_value_heads": n_kv, "max_position_embeddings": 128, "rms_norm_eps": eps,
           "rope_theta": theta, "hidden_act": "silu", "tie_word_embeddings": tied, "bos_token_id": 1,
           "eos_token_id": 2, "torch_dtype": dtype, "initializer_range": 0.02, "use_cache": True,
           "attention_dropout": 0.0}
    if model_type == "llama":
        cfg.update(attention_bias=attention_bias, mlp_bias=mlp_bias, rope_scaling=None, pretraining_tp=1)
    elif model_type == "qwen2":  # Qwen2 has no attention_bias key: q/k/v always carry a bias, o_proj never
        cfg.update(use_sliding_window=False, sliding_window=4096, max_window_layers=L, rope_scaling=None)
    else:  # mistral: no bias keys at all; sliding_window null (v0.3 style) so the mask is plain causal
        cfg.update(sliding_window=None)
    if head_dim is not None:
        cfg["head_dim"] = head_dim
    return cfg


def make_weights(cfg, seed):
    """HF tensor names -> float32 tensors; which biases exist follows the architecture's rules."""
    g = torch.Generator().manual_seed(seed)
    V, H, I, L = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    n_h, n_kv, d_h = dims(cfg)
    qwen2 = cfg["model_type"] == "qwen2"
    qkv_bias = qwen2 or cfg.get("attention_bias", False)
    o_bias = (not qwen2) and cfg.get("attention_bias", False)  # Llama's attention_bias also covers o_proj
    shapes = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H]}
    if not cfg["tie_word_embeddings"]:
        shapes["lm_head.weight"] = [V, H]
    lin = {"self_attn.q_proj": [n_h * d_h, H], "self_attn.k_proj": [n_kv * d_h, H],
           "self_attn.v_proj": [n_kv * d_h, H], "self_attn.o_proj": [H, n_h * d_h],
           "mlp.gate_proj": [I, H], "mlp.up_proj": [I, H], "mlp.down_proj": [H, I]}
    for i in range(L):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = [H]
        shapes[p + "post_attention_layernorm.weight"] = [H]
        for m, s in lin.items():
            shapes[p + m + ".weight"] = s
            if (m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj") and qkv_bias) or \
               (m == "self_attn.o_proj" and o_bias) or (m.startswith("mlp.") and cfg.get("mlp_bias", False)):
                shapes[p + m + ".bias"] = [s[0]]
    W = {}
    for name in sorted(shapes):  # fixed order -> fixed random stream
        r = torch.randn(shapes[name], generator=g)
        if name.endswith("norm.weight"):
            W[name] = 1.0 + 0.1 * r  # away from 1 so a missing/misapplied norm weight shows
        elif name == "model.embed_tokens.weight":
            W[name] = r  # std 1: tied heads then give O(sqrt(H)) logits
        elif name == "lm_head.weight":
            W[name] = 0.2 * r
        else:
            W[name] = 0.1 * r  # linears and biases
    return W


def make_inputs(V, seed, B=2, T=10, pad=3):
    """Row 0 full length; row 1 right-padded by `pad` positions. Both start with BOS (1)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, V, (B, T), generator=g)
    ids[:, 0] = 1
    mask = torch.ones(B, T, dtype=torch.int64)
    mask[1, T - pad:] = 0
    ids[1, T - pad:] = PAD_ID
    return ids, mask


def round_to(W, dtype):
    return {k: v.to(dtype) for k, v in W.items()}


# (case name, config, storage dtype or None for float32, seed)
CASES = [
    ("llama_plain", hf_config("LlamaForCausalLM", n_kv=4, tied=False), None, 101),
    ("llama_gqa_tied", hf_config("LlamaForCausalLM", n_kv=2, tied=True), None, 102),
    ("qwen2_bias", hf_config("Qwen2ForCausalLM", V=56, n_kv=2, tied=True, theta=1000000.0, eps=1e-6), None, 103),
    ("mistral_head_dim", hf_config("MistralForCausalLM", n_kv=2, head_dim=8, tied=False), None, 104),
    ("llama_mlp_bias", hf_config("LlamaForCausalLM", n_kv=2, attention_bias=True, mlp_bias=True), None, 105),
    ("llama_bf16", hf_config("LlamaForCausalLM", n_kv=2, tied=True, dtype="bfloat16"), torch.bfloat16, 106),
    ("llama_f16", hf_config("LlamaForCausalLM", n_kv=2, tied=True, dtype="float16"), torch.float16, 107),
    ("llama_sharded", hf_config("LlamaForCausalLM", L=3, n_kv=2, tied=False), None, 108),
]


def write_case(name, cfg, store_dtype, seed):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    W = make_weights(cfg, seed)
    if store_dtype is not None:
        W = round_to(W, store_dtype)  # the reference then runs on exactly the stored (rounded) values
    write_json(os.path.join(d, "config.json"), cfg)
    if name == "llama_sharded":  # shard 1: embeddings + layer 0; shard 2: the rest
        files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        first = lambda k: k == "model.embed_tokens.weight" or k.startswith("model.layers.0.")
        wmap = {k: files[0] if first(k) else files[1] for k in W}
        total = sum(write_safetensors(os.path.join(d, f), {k: v for k, v in W.items() if wmap[k] == f})
                    for f in files)
        write_json(os.path.join(d, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total}, "weight_map": wmap})
    else:
        write_safetensors(os.path.join(d, "model.safetensors"), W)
    ids, mask = make_inputs(cfg["vocab_size"], seed + 1000)
    logits = forward(cfg, W, ids, mask)
    write_safetensors(os.path.join(d, "expected.safetensors"),
                      {"input_ids": ids, "attention_mask": mask, "logits": logits.float()})
    return W, ids, mask, logits


# ----------------------------------------------------------------------------- LoRA adapters (HF PEFT layout)
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def peft_matches(target, module):
    """PEFT target matching: a string is a regex that must match the whole name; a list matches a name
    exactly or as a '.suffix'."""
    if isinstance(target, str):
        return re.fullmatch(target, module) is not None
    return any(module == t or module.endswith("." + t) for t in target)


def lora_config(r, alpha, targets, rslora):
    return {"alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "llama_plain", "bias": "none",
            "corda_config": None, "eva_config": None, "exclude_modules": None, "fan_in_fan_out": False,
            "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
            "layers_pattern": None, "layers_to_transform": None, "loftq_config": {}, "lora_alpha": alpha,
            "lora_bias": False, "lora_dropout": 0.0, "megatron_config": None, "megatron_core": "megatron.core",
            "modules_to_save": None, "peft_type": "LORA", "r": r, "rank_pattern": {}, "revision": None,
            "target_modules": targets, "task_type": "CAUSAL_LM", "trainable_token_indices": None,
            "use_dora": False, "use_rslora": rslora}


def write_lora(name, cfg, W, ids, mask, r, alpha, targets, rslora, seed):
    """Random NON-zero A and B (a fresh PEFT adapter has B = 0, which would test nothing)."""
    g = torch.Generator().manual_seed(seed)
    scale = alpha / math.sqrt(r) if rslora else alpha / r
    lora, tensors = {}, {}
    for i in range(cfg["num_hidden_layers"]):
        for m in LINEARS:
            path = f"model.layers.{i}.{m}"
            if not peft_matches(targets, path):
                continue
            out_f, in_f = W[path + ".weight"].shape
            A = 0.1 * torch.randn(r, in_f, generator=g)  # [r, in]
            Bm = 0.1 * torch.randn(out_f, r, generator=g)  # [out, r]
            lora[path] = (A, Bm, scale)
            tensors[f"base_model.model.{path}.lora_A.weight"] = A
            tensors[f"base_model.model.{path}.lora_B.weight"] = Bm
    assert lora, f"{name}: no module matched {targets!r}"
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "adapter_config.json"), lora_config(r, alpha, targets, rslora), newline=False)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors)
    logits = forward(cfg, W, ids, mask, lora=lora)
    write_safetensors(os.path.join(d, "expected.safetensors"),
                      {"input_ids": ids, "attention_mask": mask, "logits": logits.float()})
    return lora, logits


# ----------------------------------------------------------------------------- stories260K (real model)
def read_sentencepiece(path):
    """Minimal protobuf walk of a SentencePiece ModelProto: field 1 = pieces {1: piece, 2: score, 3: type}."""
    def varint(b, i):
        v = s = 0
        while True:
            c = b[i]
            i += 1
            v |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return v, i

    def fields(b):
        i = 0
        while i < len(b):
            key, i = varint(b, i)
            wt = key & 7
            if wt == 0:
                v, i = varint(b, i)
            elif wt == 1:
                v, i = b[i:i + 8], i + 8
            elif wt == 2:
                n, i = varint(b, i)
                v, i = b[i:i + n], i + n
            elif wt == 5:
                v, i = b[i:i + 4], i + 4
            else:
                raise ValueError("unsupported wire type")
            yield key >> 3, v

    pieces = []
    for f, v in fields(open(path, "rb").read()):
        if f == 1:
            d = dict(fields(v))
            pieces.append((d[1].decode(), struct.unpack("<f", d.get(2, b"\0\0\0\0"))[0]))
    return pieces


def sp_encode(pieces, text):
    """SentencePiece BPE the way llama2.c does it: dummy prefix, chars (byte fallback), best-score merges."""
    vocab = {p: i for i, (p, _) in enumerate(pieces)}
    text = "\u2581" + text.replace(" ", "\u2581")
    ids = []
    for ch in text:
        ids += [vocab[ch]] if ch in vocab else [vocab["<0x%02X>" % b] for b in ch.encode()]
    while True:
        best = None
        for j in range(len(ids) - 1):
            m = vocab.get(pieces[ids[j]][0] + pieces[ids[j + 1]][0])
            if m is not None and (best is None or pieces[m][1] > pieces[best[1]][1]):
                best = (j, m)
        if best is None:
            return ids
        ids[best[0]:best[0] + 2] = [best[1]]


def sp_decode(pieces, ids):
    out = b""
    for i in ids:
        p = pieces[i][0]
        out += bytes([int(p[3:5], 16)]) if re.fullmatch(r"<0x[0-9A-F]{2}>", p) else p.encode()
    return out.decode(errors="replace").replace("\u2581", " ")


# The fixture's input ids come from this fixed sentence (first line of the TinyStories validation split),
# so they never depend on what else is on disk; the loss check uses the whole paragraph when available.
STORY = 'Spot. Spot saw the shiny car and said, "Wow, Kitty, your car is so bright and clean!"'
# Start of llama2.c's golden greedy output for stories260K (test_all.py expected_stdout): an outside anchor.
GOLDEN = ("Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
          "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said,")
STORY_FILE = os.path.join(os.path.dirname(STORIES), "tinystories_sample", "tinystories_val_head.txt")


# ----------------------------------------------------------------------------- self-checks
def check(label, ok, detail):
    print(f"  [{'ok' if ok else 'FAIL'}] {label}: {detail}")
    return ok


def self_checks(cfg, W, ids, mask, logits, lora=None, lora_logits=None):
    ok = True
    f32 = forward(cfg, W, ids, mask, dtype=torch.float32)
    err = (f32.double() - logits).abs().max().item() / logits.abs().max().item()
    ok &= check("float32 run == float64 reference", err < 1e-5, f"max |diff| / max |logit| {err:.2e}")
    ids2 = ids.clone()
    ids2[0, -1] = 3 if ids[0, -1] != 3 else 4  # change only the last token of row 0
    l2 = forward(cfg, W, ids2, mask)
    ok &= check("causal: later token leaves earlier logits", torch.equal(l2[0, :-1], logits[0, :-1]),
                f"last-position change {(l2[0, -1] - logits[0, -1]).abs().max().item():.3f}")
    n = int(mask[1].sum())
    alone = forward(cfg, W, ids[1:, :n], mask[1:, :n])
    err = (alone - logits[1:, :n]).abs().max().item()
    ok &= check("right padding: padded row == same row unpadded", err < 1e-12, f"max |diff| {err:.2e}")
    ids3 = ids.clone()
    ids3[1, n:] = 5  # padded positions' token ids must not matter for real positions
    err = (forward(cfg, W, ids3, mask)[1, :n] - logits[1, :n]).abs().max().item()
    ok &= check("key padding mask hides pad tokens", err < 1e-12, f"max |diff| {err:.2e}")
    if lora is None:
        return ok
    merged = dict(W)
    for path, (A, Bm, s) in lora.items():
        merged[path + ".weight"] = W[path + ".weight"].double() + s * Bm.double() @ A.double()
    err = (forward(cfg, merged, ids, mask) - lora_logits).abs().max().item()
    delta = (lora_logits - logits).abs().max().item()
    ok &= check("LoRA merged == unmerged", err < 1e-10, f"max |diff| {err:.2e}; adapter moves logits by {delta:.3f}")
    return ok


def stories_case():
    if not os.path.exists(os.path.join(STORIES, "model.safetensors")):
        print(f"  [skip] stories260K: {STORIES} not found; existing fixture left as is")
        return True
    cfg = json.load(open(os.path.join(STORIES, "config.json")))
    W = read_safetensors(os.path.join(STORIES, "model.safetensors"))
    pieces = read_sentencepiece(os.path.join(STORIES, "tokenizer.model"))
    x = torch.tensor([[1] + sp_encode(pieces, STORY)[:15]])  # [1, 16]: BOS + 15 tokens
    logits = forward(cfg, W, x, torch.ones_like(x))
    write_safetensors(os.path.join(OUT, "stories260K_expected.safetensors"), {"input_ids": x, "logits": logits.float()})
    print(f"  input_ids {x[0].tolist()} = {sp_decode(pieces, x[0, 1:].tolist())!r}")
    text = open(STORY_FILE).read().split("\n\n")[0] if os.path.exists(STORY_FILE) else STORY
    ids = torch.tensor([[1] + sp_encode(pieces, text)])  # BOS + the story
    ok = check("tokenizer round trip", sp_decode(pieces, ids[0, 1:].tolist())[1:] == text, f"{ids.shape[1] - 1} tokens")
    full = forward(cfg, W, ids, torch.ones_like(ids))
    nll = torch.nn.functional.cross_entropy(full[0, :-1], ids[0, 1:]).item()
    ok &= check("TinyStories loss well under ln(512)=6.24", nll < 2.5,
                f"mean NLL {nll:.3f} over {ids.shape[1] - 1} tokens")
    seq = [1]
    for _ in range(60):  # greedy decode, no cache: the model is tiny
        t = torch.tensor([seq])
        seq.append(int(forward(cfg, W, t, torch.ones_like(t))[0, -1].argmax()))
    txt = sp_decode(pieces, seq[1:])
    ok &= check("greedy decode from BOS == llama2.c golden output", len(txt) > 100 and GOLDEN.startswith(txt.strip()),
                repr(txt))
    return ok


def main():
    torch.manual_seed(0)  # not relied on (every draw uses its own seeded Generator), set for good measure
    os.makedirs(OUT, exist_ok=True)
    ok = True
    results = {}
    for name, cfg, store_dtype, seed in CASES:
        results[name] = write_case(name, cfg, store_dtype, seed)
        W, ids, mask, logits = results[name]
        print(f"{name}: logits std {logits.std().item():.2f}")
        # whatever was written must read back bit-exactly
        d = os.path.join(OUT, name)
        back = {}
        for f in sorted(os.listdir(d)):
            if f.startswith("model") and f.endswith(".safetensors"):
                back.update(read_safetensors(os.path.join(d, f)))
        ok &= check("weights read back bit-exactly", back.keys() == W.keys() and
                    all(torch.equal(back[k], W[k]) for k in W), f"{len(W)} tensors")
    cfg = CASES[0][1]
    W, ids, mask, logits = results["llama_plain"]
    lora, lora_logits = write_lora("llama_plain_lora", cfg, W, ids, mask, r=4, alpha=16,
                                   targets=["q_proj", "v_proj", "down_proj"], rslora=False, seed=201)
    rs, rs_logits = write_lora("llama_plain_rslora", cfg, W, ids, mask, r=8, alpha=16,
                               targets=r".*\.(q_proj|o_proj)", rslora=True, seed=202)
    print(f"llama_plain_lora: {len(lora)} adapted modules; llama_plain_rslora: {sorted(rs)}")
    gqa_cfg = CASES[1][1]
    gW, gids, gmask, glogits = results["llama_gqa_tied"]
    prompt, prompt_logits = write_prompt_learning("llama_gqa_tied_prompt", gqa_cfg, gW, gids, gmask, "prompt", 5, 203)
    prefix, prefix_logits = write_prompt_learning("llama_gqa_tied_prefix", gqa_cfg, gW, gids, gmask, "prefix", 4, 204)
    print("self-checks on prompt and prefix tuning (llama_gqa_tied):")
    # A prompt made of real tokens' embeddings is those tokens as input: same logits at the real positions.
    context = torch.tensor([5, 9, 3])
    as_prompt = forward(gqa_cfg, gW, gids, gmask, prompt=gW["model.embed_tokens.weight"][context])
    as_input = forward(gqa_cfg, gW, torch.cat([context[None].expand(2, -1), gids], 1),
                       torch.cat([torch.ones(2, 3, dtype=gmask.dtype), gmask], 1))[:, 3:]
    ok &= check("prompt of token embeddings == those tokens as input", torch.allclose(as_prompt, as_input, atol=1e-10),
                f"max diff {(as_prompt - as_input).abs().max().item():.1e}")
    ok &= check("prompt and prefix change the logits", (prompt_logits - glogits).abs().max() > 1e-3 and
                (prefix_logits - glogits).abs().max() > 1e-3, "")
    # Padded row 1 gives, at its real positions, what it gives alone.
    real = int(gmask[1].sum())
    alone = forward(gqa_cfg, gW, gids[1:, :real], gmask[1:, :real], prefix=prefix)
    ok &= check("prefix: padded row == row alone", torch.allclose(alone[0], prefix_logits[1, :real].double(), atol=1e-5),
                "")
    print("self-checks on LST (mistral_head_dim, r = 2, side layers from backbone layers 0 and 1):")
    mcfg = CASES[3][1]
    mW, mids, mmask, mlogits = results["mistral_head_dim"]
    side, lst_logits = write_lst("mistral_head_dim_lst", mcfg, mW, mids, mmask, 2, [0, 1], 205)
    real = int(mmask[1].sum())
    alone = lst_forward(mcfg, mW, side, mids[1:, :real], mmask[1:, :real], [0, 1], 2)
    ok &= check("LST: padded row == row alone", torch.allclose(alone[0], lst_logits[1, :real], atol=1e-10), "")
    # Gates far negative (mu -> 0) make each side layer read only its ladder: the earlier side layers stop
    # mattering, so changing side layer 0's weights leaves the logits unchanged.
    closed = dict(side, gates=torch.full_like(side["gates"], -100.0))
    changed = dict(closed, **{"stack.layers.0.mlp.up_proj.weight": 2 * side["stack.layers.0.mlp.up_proj.weight"]})
    a = lst_forward(mcfg, mW, closed, mids, mmask, [0, 1], 2)
    b = lst_forward(mcfg, mW, changed, mids, mmask, [0, 1], 2)
    ok &= check("LST: closed gates cut the side path between ladders", torch.allclose(a, b, atol=1e-12),
                f"max diff {(a - b).abs().max().item():.1e}")
    print("self-checks on llama_plain + LoRA, llama_plain + rsLoRA:")
    ok &= self_checks(cfg, W, ids, mask, logits, lora, lora_logits)
    ok &= self_checks(cfg, W, ids, mask, logits, rs, rs_logits)
    for name, c, _, _ in CASES[1:]:
        print(f"self-checks on {name}:")
        ok &= self_checks(c, *results[name])
    print("stories260K:")
    ok &= stories_case()
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
