#!/usr/bin/python3
"""Independent float64 reference for more decoder families and RoPE / sliding-window variants (HF semantics).

Run:  /usr/bin/python3 scripts/reference/make_family_fixtures.py      (Debian python3-torch; no network)

Writes tests/fixtures/families/ (see the README there): Llama with llama3 / linear / dynamic / transformers-5
`rope_parameters` RoPE, Qwen2 with YaRN, Mistral with a sliding window, Qwen3 (q_norm/k_norm, sliding layers
from max_window_layers), Gemma 2 (soft-capping, alternating sliding layers, (1+w) norms, GeGLU), Gemma 3 (text and
the multimodal checkpoint layout; local/global RoPE), Phi-3 (fused qkv/gate_up, partial rotary, sliding window,
LongRoPE). Everything is plain torch: no transformers, safetensors or numpy-free shortcuts, nothing from the C++
code. The safetensors reader/writer and small helpers come from make_llama_fixtures.py (same folder). The
forward pass runs in float64; logits are stored as float32. Deterministic: one fixed seed per case, sorted JSON,
so rerunning reproduces identical bytes. Exits non-zero if any self-check fails.

The semantics follow Hugging Face transformers as of 4.5x / 5.x (current main); the README there lists the exact
rules and where each comes from.
"""
import copy
import importlib.util
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "families")

_spec = importlib.util.spec_from_file_location("make_llama_fixtures", os.path.join(HERE, "make_llama_fixtures.py"))
LL = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(LL)
write_safetensors, read_safetensors, write_json = LL.write_safetensors, LL.read_safetensors, LL.write_json
check, make_inputs, rotate_half = LL.check, LL.make_inputs, LL.rotate_half

T_DEFAULT = 12
MM_PREFIX = "language_model."  # Gemma3ForConditionalGeneration hub checkpoints: language_model.model.layers.0...


# ----------------------------------------------------------------------------- RoPE inverse frequencies (float64)
def inv_freq_default(base, dim):
    return 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)


def inv_freq_llama3(base, dim, rp):
    """Llama 3.1: wavelength < orig/high_freq_factor kept, > orig/low_freq_factor divided by factor, in between
    smoothly interpolated with s = (orig/wavelen - low) / (high - low): (1 - s) inv/factor + s inv."""
    inv = inv_freq_default(base, dim)
    factor, low, high = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
    orig = rp["original_max_position_embeddings"]
    low_wl, high_wl = orig / low, orig / high
    wl = 2 * math.pi / inv
    out = torch.where(wl > low_wl, inv / factor, inv)
    s = (orig / wl - low) / (high - low)
    smoothed = (1 - s) * out / factor + s * out
    medium = ~(wl < high_wl) & ~(wl > low_wl)
    return torch.where(medium, smoothed, out)


def llama3_bands(base, dim, rp):
    wl = 2 * math.pi / inv_freq_default(base, dim)
    orig = rp["original_max_position_embeddings"]
    lo, hi = orig / rp["low_freq_factor"], orig / rp["high_freq_factor"]
    return int((wl < hi).sum()), int(((wl >= hi) & (wl <= lo)).sum()), int((wl > lo).sum())


def yarn_params(base, dim, rp, max_pos):
    """YaRN as transformers' current _compute_yarn_parameters: correction range from
    original_max_position_embeddings, floor/ceil only when truncate (default True), ramp over dim/2,
    attention_factor = 0.1 ln(factor) + 1 (no mscale keys) multiplying cos and sin."""
    factor = rp.get("factor")
    orig = rp.get("original_max_position_embeddings") or max_pos
    if factor is None:
        factor = max_pos / orig
    att = rp.get("attention_factor")
    if att is None:
        att = 1.0 if factor <= 1 else 0.1 * math.log(factor) + 1.0
    beta_fast = rp.get("beta_fast") or 32
    beta_slow = rp.get("beta_slow") or 1
    truncate = rp.get("truncate", True)

    def corr_dim(rot):
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    low, high = corr_dim(beta_fast), corr_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
    pos = base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    extra = 1 - ramp  # weight of the unscaled (extrapolated) frequency
    inv = (1.0 / (factor * pos)) * (1 - extra) + (1.0 / pos) * extra
    return inv, att, (low, high)


def longrope_params(base, dim, rp, max_pos, orig, seq_len):
    factor = rp.get("factor") or max_pos / orig
    att = rp.get("attention_factor")
    if att is None:
        att = 1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(orig))
    ext = torch.tensor(rp["long_factor"] if seq_len > orig else rp["short_factor"], dtype=torch.float64)
    return 1.0 / (ext * base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)), att


def rope_spec(rp, theta, max_pos, orig_top):
    """One standardized RoPE dict: rope_type, rope_theta, scaling keys, original max positions."""
    rp = dict(rp or {})
    rp["rope_type"] = rp.get("rope_type", rp.get("type", "default"))
    rp.setdefault("rope_theta", theta)
    if rp["rope_type"] in ("llama3", "yarn", "longrope"):
        if orig_top is not None:  # Phi-3 keeps it at the top level, and it wins
            rp["original_max_position_embeddings"] = orig_top
        rp.setdefault("original_max_position_embeddings", max_pos)
    return rp


def rope_tables(rp, head_dim, partial, max_pos, T, seq_len, dtype):
    """cos, sin [T, rot_dim] for positions 0..T-1 (attention scaling folded in). seq_len = max(position_ids) + 1 of
    the batch, which dynamic and longrope read."""
    dim = int(head_dim * partial)
    base, kind = rp["rope_theta"], rp["rope_type"]
    att = 1.0
    if kind == "default":
        inv = inv_freq_default(base, dim)
    elif kind == "linear":
        inv = inv_freq_default(base, dim) / rp["factor"]
    elif kind == "dynamic":
        seq = max(seq_len, max_pos)
        f = rp["factor"]
        inv = inv_freq_default(base * ((f * seq / max_pos) - (f - 1)) ** (dim / (dim - 2)), dim)
    elif kind == "llama3":
        inv = inv_freq_llama3(base, dim, rp)
    elif kind == "yarn":
        inv, att, _ = yarn_params(base, dim, rp, max_pos)
    elif kind == "longrope":
        inv, att = longrope_params(base, dim, rp, max_pos, rp["original_max_position_embeddings"], seq_len)
    else:
        raise ValueError(kind)
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv)
    emb = torch.cat([freqs, freqs], dim=-1)
    return (emb.cos() * att).to(dtype), (emb.sin() * att).to(dtype)


# ----------------------------------------------------------------------------- resolving a config
def text_cfg(cfg):
    return cfg.get("text_config", cfg)


def resolve(cfg):
    """The family's structural choices, read from an HF-style config.json the way transformers reads it."""
    c = text_cfg(cfg)
    mt = c["model_type"]
    L, H = c["num_hidden_layers"], c["hidden_size"]
    n_h = c["num_attention_heads"]
    n_kv = c.get("num_key_value_heads") or n_h
    A = {"mt": mt, "L": L, "H": H, "n_h": n_h, "n_kv": n_kv, "eps": c["rms_norm_eps"],
         "d_h": c.get("head_dim") or H // n_h, "gemma": mt in ("gemma2", "gemma3_text"),
         "qk_norm": mt in ("qwen3", "gemma3_text"), "fused": mt == "phi3",
         "partial": c.get("partial_rotary_factor", 1.0), "max_pos": c["max_position_embeddings"],
         "tied": c.get("tie_word_embeddings", mt in ("gemma2", "gemma3_text")),
         "act": c.get("hidden_activation") or c.get("hidden_act", "silu"),
         "attn_cap": c.get("attn_logit_softcapping"), "final_cap": c.get("final_logit_softcapping"),
         "prefix": MM_PREFIX if "text_config" in cfg else ""}
    A["scale"] = c["query_pre_attn_scalar"] ** -0.5 if A["gemma"] else A["d_h"] ** -0.5
    # which layers slide, and the window
    if mt in ("mistral", "phi3"):
        sw = c.get("sliding_window")
        types = ["sliding_attention" if sw is not None else "full_attention"] * L
    elif mt in ("qwen2", "qwen3"):
        sw = c.get("sliding_window") if c.get("use_sliding_window") else None
        types = c.get("layer_types") or [
            "sliding_attention" if sw is not None and i >= c["max_window_layers"] else "full_attention"
            for i in range(L)]
    elif mt == "gemma2":
        sw = c.get("sliding_window")
        types = c.get("layer_types") or ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(L)]
    elif mt == "gemma3_text":
        sw = c.get("sliding_window")
        pattern = c.get("sliding_window_pattern", 6)
        types = c.get("layer_types") or [
            "sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(L)]
    else:  # llama
        sw, types = None, ["full_attention"] * L
    A["types"] = types
    A["windows"] = [sw if t == "sliding_attention" else None for t in types]
    # RoPE per layer type
    rp = c.get("rope_parameters")
    if mt == "gemma3_text":
        if rp and "full_attention" in rp:  # transformers-5 nested form
            g = rope_spec(rp["full_attention"], 1_000_000.0, A["max_pos"], None)
            l = rope_spec(rp["sliding_attention"], 10_000.0, A["max_pos"], None)
        else:  # rope_scaling only for the global layers; local layers: default RoPE at rope_local_base_freq
            g = rope_spec(c.get("rope_scaling"), c.get("rope_theta", 1_000_000.0), A["max_pos"], None)
            l = rope_spec(None, c.get("rope_local_base_freq", 10_000.0), A["max_pos"], None)
        A["rope"] = {"full_attention": g, "sliding_attention": l}
    else:
        one = rope_spec(rp or c.get("rope_scaling"), c.get("rope_theta", 10_000.0), A["max_pos"],
                        c.get("original_max_position_embeddings") if mt == "phi3" else None)
        A["rope"] = {"full_attention": one, "sliding_attention": one}
    return A


# ----------------------------------------------------------------------------- the forward pass
def act(name, x):
    if name == "silu":
        return torch.nn.functional.silu(x)
    if name == "gelu_pytorch_tanh":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    raise ValueError(name)


def forward(cfg, weights, ids, mask, dtype=torch.float64, rope_seq_len=None):
    """Logits [B, T, V] of the causal LM described by cfg (HF config.json dict) with HF-named weights."""
    A = resolve(cfg)
    pre = A["prefix"]
    W = {k[len(pre):]: v.to(dtype) for k, v in weights.items() if k.startswith(pre)}
    n_h, n_kv, d_h, eps, H = A["n_h"], A["n_kv"], A["d_h"], A["eps"], A["H"]
    B, T = ids.shape
    seq_len = T if rope_seq_len is None else rope_seq_len  # HF: max(position_ids) + 1 over the batch

    def norm(x, name):  # RMSNorm; Gemma scales by (1 + w)
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        return y * (1.0 + W[name]) if A["gemma"] else y * W[name]

    def linear(x, name):
        y = x @ W[name + ".weight"].T
        if name + ".bias" in W:
            y = y + W[name + ".bias"]
        return y

    x = W["model.embed_tokens.weight"][ids]
    if A["gemma"]:  # normalizer sqrt(H) rounded to the model dtype (float32 here), as HF casts it
        x = x * torch.tensor(math.sqrt(H), dtype=torch.float32).to(dtype)
    tables = {t: rope_tables(A["rope"][t], d_h, A["partial"], A["max_pos"], T, seq_len, dtype)
              for t in set(A["types"])}
    i_idx = torch.arange(T)[:, None]
    j_idx = torch.arange(T)[None, :]
    key_ok = mask.bool()[:, None, None, :]
    for i in range(A["L"]):
        p = f"model.layers.{i}."
        n = norm(x, p + "input_layernorm.weight")
        if A["fused"]:  # Phi-3: rows q | k | v
            qkv = linear(n, p + "self_attn.qkv_proj")
            q, k, v = qkv.split([n_h * d_h, n_kv * d_h, n_kv * d_h], dim=-1)
        else:
            q, k, v = (linear(n, p + f"self_attn.{m}_proj") for m in "qkv")
        q = q.view(B, T, n_h, d_h)
        k = k.view(B, T, n_kv, d_h)
        if A["qk_norm"]:  # per-head RMSNorm over head_dim, before RoPE
            q, k = norm(q, p + "self_attn.q_norm.weight"), norm(k, p + "self_attn.k_norm.weight")
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = v.view(B, T, n_kv, d_h).transpose(1, 2)
        cos, sin = tables[A["types"][i]]
        r = cos.shape[-1]  # partial rotary: only the first r dims of each head rotate

        def rope(t):
            return torch.cat([t[..., :r] * cos + rotate_half(t[..., :r]) * sin, t[..., r:]], dim=-1)

        q, k = rope(q), rope(k)
        k, v = k.repeat_interleave(n_h // n_kv, dim=1), v.repeat_interleave(n_h // n_kv, dim=1)
        s = (q @ k.transpose(-1, -2)) * A["scale"]
        if A["attn_cap"] is not None:
            s = torch.tanh(s / A["attn_cap"]) * A["attn_cap"]
        allowed = (j_idx <= i_idx)
        w = A["windows"][i]
        if w is not None:  # masking_utils.sliding_window_overlay: kv_idx > q_idx - sliding_window
            allowed = allowed & (i_idx - j_idx < w)
        allowed = allowed[None, None] & key_ok
        assert bool(allowed.any(-1).all()), "a fully masked query row"
        s = s.masked_fill(~allowed, float("-inf"))
        a = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, n_h * d_h)
        o = linear(a, p + "self_attn.o_proj")
        if A["gemma"]:
            x = x + norm(o, p + "post_attention_layernorm.weight")
            m = norm(x, p + "pre_feedforward_layernorm.weight")
        else:
            x = x + o
            m = norm(x, p + "post_attention_layernorm.weight")
        if A["fused"]:  # Phi-3: gate_up rows = gate | up
            gate, up = linear(m, p + "mlp.gate_up_proj").chunk(2, dim=-1)
        else:
            gate, up = linear(m, p + "mlp.gate_proj"), linear(m, p + "mlp.up_proj")
        m = linear(act(A["act"], gate) * up, p + "mlp.down_proj")
        x = x + (norm(m, p + "post_feedforward_layernorm.weight") if A["gemma"] else m)
    x = norm(x, "model.norm.weight")
    head = W["model.embed_tokens.weight"] if A["tied"] else W["lm_head.weight"]
    logits = x @ head.T
    if A["final_cap"] is not None:
        logits = torch.tanh(logits / A["final_cap"]) * A["final_cap"]
    return logits


# ----------------------------------------------------------------------------- configs (HF config.json style)
def base_keys(V, H, I, L, n_h, n_kv, max_pos, eps, tied):
    return {"vocab_size": V, "hidden_size": H, "intermediate_size": I, "num_hidden_layers": L,
            "num_attention_heads": n_h, "num_key_value_heads": n_kv, "max_position_embeddings": max_pos,
            "rms_norm_eps": eps, "tie_word_embeddings": tied, "bos_token_id": 1, "eos_token_id": 2,
            "initializer_range": 0.02, "use_cache": True, "attention_dropout": 0.0, "torch_dtype": "float32"}


def llama_cfg(V=48, H=24, I=32, L=2, n_h=4, n_kv=2, head_dim=None, theta=10000.0, rope_scaling=None,
              max_pos=128, tied=False, arch="LlamaForCausalLM"):
    c = base_keys(V, H, I, L, n_h, n_kv, max_pos, 1e-5, tied)
    c.update(architectures=[arch], model_type="llama", hidden_act="silu", rope_theta=theta,
             rope_scaling=rope_scaling, attention_bias=False, mlp_bias=False, pretraining_tp=1)
    if head_dim is not None:
        c["head_dim"] = head_dim
    return c


def mistral_cfg(sliding_window):
    c = base_keys(48, 24, 32, 2, 4, 2, 128, 1e-5, False)
    c.update(architectures=["MistralForCausalLM"], model_type="mistral", hidden_act="silu", rope_theta=10000.0,
             sliding_window=sliding_window)
    return c


def qwen2_cfg(rope_scaling):
    # head_dim = hidden / heads = 16 (Qwen2 has no head_dim key); q/k/v always carry a bias, o_proj never
    c = base_keys(48, 32, 32, 2, 2, 1, 256, 1e-6, True)
    c.update(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_act="silu", rope_theta=1000000.0,
             rope_scaling=rope_scaling, use_sliding_window=False, sliding_window=4096, max_window_layers=2)
    return c


def qwen3_cfg(L=2, use_sliding_window=False, sliding_window=None, max_window_layers=None):
    c = base_keys(48, 24, 32, L, 4, 2, 128, 1e-6, True)
    c.update(architectures=["Qwen3ForCausalLM"], model_type="qwen3", hidden_act="silu", head_dim=8,
             rope_theta=1000000.0, rope_scaling=None, attention_bias=False, use_sliding_window=use_sliding_window,
             sliding_window=sliding_window, max_window_layers=L if max_window_layers is None else max_window_layers)
    return c


def gemma2_cfg():
    c = base_keys(48, 24, 32, 3, 4, 2, 128, 1e-6, True)
    c.update(architectures=["Gemma2ForCausalLM"], model_type="gemma2", head_dim=8, hidden_act="gelu_pytorch_tanh",
             hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=12, attn_logit_softcapping=0.5,
             final_logit_softcapping=8.0, sliding_window=4, rope_theta=10000.0, attention_bias=False,
             cache_implementation="hybrid", pad_token_id=0)
    return c


def gemma3_text_cfg(with_layer_types=True):
    c = base_keys(48, 24, 32, 3, 4, 2, 128, 1e-6, True)
    c.update(architectures=["Gemma3ForCausalLM"], model_type="gemma3_text", head_dim=8,
             hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=12, attn_logit_softcapping=None,
             final_logit_softcapping=None, sliding_window=4, sliding_window_pattern=2, rope_theta=1000000.0,
             rope_local_base_freq=10000.0, rope_scaling={"factor": 2.0, "rope_type": "linear"},
             attention_bias=False, cache_implementation="hybrid", pad_token_id=0)
    if with_layer_types:
        c["layer_types"] = ["sliding_attention", "full_attention", "sliding_attention"]
    return c


def gemma3_mm_cfg():
    t = gemma3_text_cfg(with_layer_types=False)  # as the released gemma-3 checkpoints: sliding_window_pattern only
    t.pop("architectures")
    vision = {"model_type": "siglip_vision_model", "hidden_size": 16, "intermediate_size": 32,
              "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 4, "patch_size": 2,
              "num_channels": 3, "layer_norm_eps": 1e-6, "vision_use_head": False}
    return {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": t,
            "vision_config": vision, "mm_tokens_per_image": 4, "boi_token_index": 45, "eoi_token_index": 46,
            "image_token_index": 47, "initializer_range": 0.02, "torch_dtype": "float32", "bos_token_id": 1,
            "eos_token_id": 2, "pad_token_id": 0}


def phi3_cfg(sliding_window, rope_scaling=None, max_pos=128, orig=128):
    c = base_keys(48, 32, 32, 2, 4, 2, max_pos, 1e-5, False)  # head_dim = 32 / 4 = 8, rotary dims 6
    c.update(architectures=["Phi3ForCausalLM"], model_type="phi3", hidden_act="silu", rope_theta=10000.0,
             rope_scaling=rope_scaling, original_max_position_embeddings=orig, partial_rotary_factor=0.75,
             sliding_window=sliding_window, attention_bias=False, resid_pdrop=0.0, embd_pdrop=0.0, pad_token_id=0)
    return c


# ----------------------------------------------------------------------------- random weights
def weight_shapes(cfg):
    A = resolve(cfg)
    c = text_cfg(cfg)
    V, H, I = c["vocab_size"], A["H"], c["intermediate_size"]
    n_h, n_kv, d_h = A["n_h"], A["n_kv"], A["d_h"]
    pre = A["prefix"]
    shapes = {pre + "model.embed_tokens.weight": [V, H], pre + "model.norm.weight": [H]}
    if not A["tied"]:
        shapes[pre + "lm_head.weight"] = [V, H]
    for i in range(A["L"]):
        p = f"{pre}model.layers.{i}."
        norms = ["input_layernorm", "post_attention_layernorm"]
        if A["gemma"]:
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        for nm in norms:
            shapes[p + nm + ".weight"] = [H]
        if A["fused"]:
            shapes[p + "self_attn.qkv_proj.weight"] = [(n_h + 2 * n_kv) * d_h, H]
            shapes[p + "mlp.gate_up_proj.weight"] = [2 * I, H]
        else:
            shapes[p + "self_attn.q_proj.weight"] = [n_h * d_h, H]
            shapes[p + "self_attn.k_proj.weight"] = [n_kv * d_h, H]
            shapes[p + "self_attn.v_proj.weight"] = [n_kv * d_h, H]
            shapes[p + "mlp.gate_proj.weight"] = [I, H]
            shapes[p + "mlp.up_proj.weight"] = [I, H]
            if A["mt"] == "qwen2":
                for m in "qkv":
                    shapes[p + f"self_attn.{m}_proj.bias"] = [(n_h if m == "q" else n_kv) * d_h]
        shapes[p + "self_attn.o_proj.weight"] = [H, n_h * d_h]
        shapes[p + "mlp.down_proj.weight"] = [H, I]
        if A["qk_norm"]:
            shapes[p + "self_attn.q_norm.weight"] = [d_h]
            shapes[p + "self_attn.k_norm.weight"] = [d_h]
    if pre:  # dummy vision tower / projector tensors a text-only loader must skip
        v = cfg["vision_config"]
        Hv, P = v["hidden_size"], v["patch_size"]
        shapes.update({"vision_tower.vision_model.embeddings.patch_embedding.weight": [Hv, 3, P, P],
                       "vision_tower.vision_model.embeddings.patch_embedding.bias": [Hv],
                       "vision_tower.vision_model.post_layernorm.weight": [Hv],
                       "multi_modal_projector.mm_input_projection_weight": [Hv, H],
                       "multi_modal_projector.mm_soft_emb_norm.weight": [Hv]})
    return shapes, A


def make_weights(cfg, seed):
    shapes, A = weight_shapes(cfg)
    g = torch.Generator().manual_seed(seed)
    W = {}
    for name in sorted(shapes):  # fixed order -> fixed random stream
        r = torch.randn(shapes[name], generator=g)
        if name.endswith("norm.weight") and not name.startswith(("vision_tower", "multi_modal")):
            W[name] = 0.1 * r if A["gemma"] else 1.0 + 0.1 * r  # Gemma scales by (1 + w)
        elif name.endswith("embed_tokens.weight"):
            W[name] = r
        elif name.endswith("lm_head.weight"):
            W[name] = 0.2 * r
        else:
            W[name] = 0.1 * r
    return W


# ----------------------------------------------------------------------------- cases
LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 32}
LONG = {"type": "longrope", "long_factor": [1.0, 3.0, 9.0], "short_factor": [1.0, 1.25, 1.5]}


def cfg_rope_parameters():
    c = llama_cfg(H=32, n_h=2, n_kv=1, head_dim=16)
    del c["rope_theta"], c["rope_scaling"], c["torch_dtype"]
    c["dtype"] = "float32"  # transformers 5 writes `dtype`
    c["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                            "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    return c


# name, config, seed, T
CASES = [
    ("llama3_rope", llama_cfg(H=32, n_h=2, n_kv=1, head_dim=16, rope_scaling=dict(LLAMA3)), 301, T_DEFAULT),
    ("llama_linear_rope", llama_cfg(rope_scaling={"type": "linear", "factor": 2.5}), 302, T_DEFAULT),
    ("llama_rope_parameters", cfg_rope_parameters(), 303, T_DEFAULT),
    ("qwen2_yarn", qwen2_cfg({"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}), 304,
     T_DEFAULT),
    ("llama_dynamic_rope",
     llama_cfg(H=32, n_h=2, n_kv=1, head_dim=16, rope_scaling={"type": "dynamic", "factor": 2.0}, max_pos=8),
     305, T_DEFAULT),
    ("mistral_sliding", mistral_cfg(4), 306, T_DEFAULT),
    ("qwen3", qwen3_cfg(), 307, T_DEFAULT),
    ("qwen3_sliding", qwen3_cfg(L=3, use_sliding_window=True, sliding_window=4, max_window_layers=1), 308,
     T_DEFAULT),
    ("gemma2", gemma2_cfg(), 309, T_DEFAULT),
    ("gemma3", gemma3_text_cfg(), 310, T_DEFAULT),
    ("gemma3_multimodal", gemma3_mm_cfg(), 310, T_DEFAULT),  # same seed: the same text tower as gemma3
    ("phi3", phi3_cfg(5), 312, T_DEFAULT),
    ("phi3_longrope", phi3_cfg(None, rope_scaling=dict(LONG), max_pos=32, orig=8), 313, T_DEFAULT),
]


def write_case(name, cfg, seed, T):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    W = make_weights(cfg, seed)
    if name == "gemma3_multimodal":  # identical text tower to `gemma3`, renamed; plus the dummy vision tensors
        text = make_weights(dict((n, c) for n, c, _, _ in CASES)["gemma3"], seed)
        W.update({MM_PREFIX + k: v for k, v in text.items()})
    write_json(os.path.join(d, "config.json"), cfg)
    write_safetensors(os.path.join(d, "model.safetensors"), W)
    ids, mask = make_inputs(text_cfg(cfg)["vocab_size"], seed + 1000, T=T)
    logits = forward(cfg, W, ids, mask)
    write_safetensors(os.path.join(d, "expected.safetensors"),
                      {"input_ids": ids, "attention_mask": mask, "logits": logits.float()})
    back = read_safetensors(os.path.join(d, "model.safetensors"))
    ok = check("weights read back bit-exactly",
               back.keys() == W.keys() and all(torch.equal(back[k], W[k]) for k in W), f"{len(W)} tensors")
    return W, ids, mask, logits, ok


# ----------------------------------------------------------------------------- self-checks
def common_checks(cfg, W, ids, mask, logits, fixed_seq_len=False):
    """float32 == float64; causality; padded row == row alone; pad ids don't matter. fixed_seq_len: the RoPE
    depends on the batch's max position (dynamic), so the row run alone keeps seq_len = T."""
    ok = True
    f32 = forward(cfg, W, ids, mask, dtype=torch.float32)
    err = (f32.double() - logits).abs().max().item() / logits.abs().max().item()
    ok &= check("float32 run == float64 reference", err < 2e-5, f"max |diff| / max |logit| {err:.2e}")
    ids2 = ids.clone()
    ids2[0, -1] = 3 if ids[0, -1] != 3 else 4
    l2 = forward(cfg, W, ids2, mask)
    err = (l2[0, :-1] - logits[0, :-1]).abs().max().item()
    ok &= check("causal: later token leaves earlier logits", err < 1e-12,
                f"earlier max diff {err:.1e}, last-position change {(l2[0, -1] - logits[0, -1]).abs().max():.3f}")
    n = int(mask[1].sum())
    alone = forward(cfg, W, ids[1:, :n], mask[1:, :n], rope_seq_len=ids.shape[1] if fixed_seq_len else None)
    err = (alone - logits[1:, :n]).abs().max().item()
    ok &= check("padded row == same row unpadded", err < 1e-12, f"max |diff| {err:.2e}")
    ids3 = ids.clone()
    ids3[1, n:] = 5
    err = (forward(cfg, W, ids3, mask)[1, :n] - logits[1, :n]).abs().max().item()
    ok &= check("pad token ids don't matter", err < 1e-12, f"max |diff| {err:.2e}")
    return ok


def differs(label, a, b, mask, thr=1e-3):
    m = mask.bool()
    d = (a - b).abs()[m].max().item()
    return check(label, d > thr, f"max |diff| at real positions {d:.4f} (> {thr})")


def with_cfg(cfg, **changes):
    c = copy.deepcopy(cfg)
    t = text_cfg(c)
    for k, v in changes.items():
        if v is _DEL:
            t.pop(k, None)
        else:
            t[k] = v
    return c


_DEL = object()


def feature_checks(name, cfg, W, ids, mask, logits):
    f = lambda c, w=W, **kw: forward(c, w, ids, mask, **kw)
    ok = True
    if name == "llama3_rope":
        bands = llama3_bands(10000.0, 16, LLAMA3)
        ok &= check("frequencies fall in all three llama3 bands", all(b > 0 for b in bands),
                    f"(kept, smoothed, divided) = {bands}")
        ok &= differs("llama3 scaling changes the logits", logits, f(with_cfg(cfg, rope_scaling=None)), mask)
    elif name == "llama_linear_rope":
        ok &= differs("linear scaling changes the logits", logits, f(with_cfg(cfg, rope_scaling=None)), mask)
    elif name == "llama_rope_parameters":
        rp = cfg["rope_parameters"]
        bands = llama3_bands(rp["rope_theta"], 16, rp)
        ok &= check("frequencies fall in all three llama3 bands", all(b > 0 for b in bands),
                    f"(kept, smoothed, divided) = {bands}")
        ok &= differs("llama3 scaling changes the logits", logits,
                      f(with_cfg(cfg, rope_parameters={"rope_type": "default", "rope_theta": 500000.0})), mask)
        ok &= differs("rope_theta inside rope_parameters matters (vs 1e4)", logits,
                      f(with_cfg(cfg, rope_parameters=dict(rp, rope_theta=10000.0))), mask)
    elif name == "qwen2_yarn":
        rs = cfg["rope_scaling"]
        _, att, (lo, hi) = yarn_params(1e6, 16, rs, cfg["max_position_embeddings"])
        _, _, (lo2, hi2) = yarn_params(1e6, 16, dict(rs, truncate=False), cfg["max_position_embeddings"])
        print(f"  yarn: attention_factor {att:.6f}; correction range truncated ({lo}, {hi}), "
              f"untruncated ({lo2:.4f}, {hi2:.4f})")
        ok &= differs("yarn changes the logits", logits, f(with_cfg(cfg, rope_scaling=None)), mask)
        ok &= differs("truncate=false would change them", logits,
                      f(with_cfg(cfg, rope_scaling=dict(rs, truncate=False))), mask)
        ok &= differs("attention_factor matters (vs 1.0)", logits,
                      f(with_cfg(cfg, rope_scaling=dict(rs, attention_factor=1.0))), mask)
        ok &= differs("correction range from original_max_position_embeddings, not max_position_embeddings",
                      logits, f(with_cfg(cfg, rope_scaling=dict(rs, original_max_position_embeddings=256))), mask)
    elif name == "llama_dynamic_rope":
        ok &= differs("dynamic rescale (T=12 > 8) changes the logits", logits,
                      f(with_cfg(cfg, rope_scaling=None)), mask)
        ok &= differs("rescale uses seq_len = T (vs the padded row's own 9)", logits,
                      f(cfg, rope_seq_len=9), mask)
    elif name in ("mistral_sliding", "phi3"):
        ok &= differs("sliding window changes the logits", logits, f(with_cfg(cfg, sliding_window=None)), mask)
        ok &= differs("window boundary: i - j < w (vs <= w)", logits,
                      f(with_cfg(cfg, sliding_window=cfg["sliding_window"] + 1)), mask)
        if name == "phi3":
            ok &= differs("partial rotary (0.75) vs full", logits,
                          f(with_cfg(cfg, partial_rotary_factor=1.0)), mask)
            swapped = dict(W)
            for k in W:
                if k.endswith("gate_up_proj.weight"):
                    g, u = W[k].chunk(2, dim=0)
                    swapped[k] = torch.cat([u, g], 0)
            ok &= differs("gate_up order (gate first) matters", logits, f(cfg, swapped), mask)
    elif name in ("qwen3", "gemma3"):
        neutral = 0.0 if name == "gemma3" else 1.0
        plain = {k: (torch.full_like(v, neutral) if k.endswith(("q_norm.weight", "k_norm.weight")) else v)
                 for k, v in W.items()}
        ok &= differs("q_norm/k_norm weights matter", logits, f(cfg, plain), mask)
        if name == "gemma3":
            ok &= differs("sliding window changes the logits", logits, f(with_cfg(cfg, sliding_window=1000)), mask)
            g = {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e6}
            ok &= differs("rope_scaling applies to global layers only (vs local too)", logits,
                          f(with_cfg(cfg, rope_parameters={"full_attention": g, "sliding_attention": dict(
                              g, rope_theta=1e4)})), mask)
            ok &= differs("local layers use rope_local_base_freq (vs rope_theta)", logits,
                          f(with_cfg(cfg, rope_local_base_freq=1e6)), mask)
            ok &= differs("global linear scaling changes the logits", logits,
                          f(with_cfg(cfg, rope_scaling=None)), mask)
            ok &= differs("layer pattern matters (vs [F, S, F])", logits, f(with_cfg(
                cfg, layer_types=["full_attention", "sliding_attention", "full_attention"])), mask)
    elif name == "qwen3_sliding":
        A = resolve(cfg)
        ok &= check("layers differ", len(set(A["types"])) == 2, str(A["types"]))
        ok &= differs("sliding layers change the logits", logits,
                      f(with_cfg(cfg, use_sliding_window=False)), mask)
        ok &= differs("rule i >= max_window_layers (vs reversed)", logits, f(with_cfg(
            cfg, layer_types=["sliding_attention", "full_attention", "full_attention"])), mask)
    elif name == "gemma2":
        ok &= differs("attn_logit_softcapping matters", logits, f(with_cfg(cfg, attn_logit_softcapping=None)), mask)
        ok &= differs("final_logit_softcapping matters", logits,
                      f(with_cfg(cfg, final_logit_softcapping=None)), mask)
        ok &= differs("sliding layers change the logits", logits, f(with_cfg(cfg, sliding_window=1000)), mask)
        ok &= differs("layer pattern matters (vs [F, S, F])", logits, f(with_cfg(
            cfg, layer_types=["full_attention", "sliding_attention", "full_attention"])), mask)
        ok &= differs("query_pre_attn_scalar (12) vs head_dim (8)", logits,
                      f(with_cfg(cfg, query_pre_attn_scalar=8)), mask)
        sat = (logits.abs() > math.tanh(2.0) * 8.0).double().mean().item()  # |raw logit| > 2 cap
        ok &= check("final cap 8 bounds the logits without saturating most", logits.abs().max() < 8.0 and sat < 0.05,
                    f"max |logit| {logits.abs().max().item():.3f}, {100 * sat:.1f}% beyond tanh(2) cap")
    elif name == "phi3_longrope":
        pass  # checked in main together with the short file
    return ok


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    ok = True
    res = {}
    for name, cfg, seed, T in CASES:
        print(f"{name}:")
        W, ids, mask, logits, wok = write_case(name, cfg, seed, T)
        res[name] = (W, ids, mask, logits)
        A = resolve(cfg)
        print(f"  logits std {logits.std().item():.2f}; layers {A['types']}; windows {A['windows']}")
        ok &= wok
        ok &= common_checks(cfg, W, ids, mask, logits, fixed_seq_len=(name == "llama_dynamic_rope"))
        ok &= feature_checks(name, cfg, W, ids, mask, logits)
    print("gemma3 vs gemma3_multimodal:")
    # Gemma 3 multimodal: same text tower, same inputs -> bit-identical expected logits
    a, b = res["gemma3"], res["gemma3_multimodal"]
    ok &= check("gemma3_multimodal logits == gemma3 logits", torch.equal(a[1], b[1]) and torch.equal(a[3], b[3]),
                "same inputs and logits")
    # Phi-3 LongRoPE: T = 8 (<= original 8: short factors) in a second file
    name, cfg = "phi3_longrope", CASES[-1][1]
    W = res[name][0]
    ids, mask = make_inputs(cfg["vocab_size"], 313 + 2000, T=8)
    short = forward(cfg, W, ids, mask)
    write_safetensors(os.path.join(OUT, name, "expected_short.safetensors"),
                      {"input_ids": ids, "attention_mask": mask, "logits": short.float()})
    print("phi3_longrope, expected_short (T = 8):")
    ok &= common_checks(cfg, W, ids, mask, short)
    lids, lmask, llog = res[name][1:]
    f = lambda c, i, m: forward(c, W, i, m)
    # T = 12 with the short factors would be: seq_len forced to 8 (attention factor unchanged)
    ok &= differs("T=12: long factors (vs short)", llog, forward(cfg, W, lids, lmask, rope_seq_len=8), lmask)
    ok &= differs("T=8: short factors (vs long)", short, forward(cfg, W, ids, mask, rope_seq_len=12), mask)
    ok &= differs("attention factor sqrt(1 + ln4/ln8) matters", llog,
                  f(with_cfg(cfg, rope_scaling=dict(cfg["rope_scaling"], attention_factor=1.0)), lids, lmask), lmask)
    att = math.sqrt(1 + math.log(32 / 8) / math.log(8))
    print(f"  longrope attention factor {att:.9f}")
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
