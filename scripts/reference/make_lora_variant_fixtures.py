#!/usr/bin/python3
"""Independent float64 reference for LoRA variants in Hugging Face PEFT semantics: DoRA, PiSSA / OLoRA
initialisation, PEFT's PiSSA -> plain LoRA conversion on save, and modules_to_save on a tied head.

Run:  /usr/bin/python3 scripts/reference/make_lora_variant_fixtures.py      (Debian python3-torch; no network)

Writes tests/fixtures/lora_variants/ (see the README there). Reads the base models
tests/fixtures/llama/llama_plain and tests/fixtures/llama/llama_mlp_bias (run make_llama_fixtures.py first if
they are missing). Everything is plain torch: no transformers, safetensors or peft package, nothing from the C++
code. The safetensors reader/writer, the Llama forward pass and the PEFT config helpers come from
make_llama_fixtures.py (same folder). Computation is float64; stored tensors are F32 and every expected output
is computed from the F32-rounded stored values. Deterministic (one seeded Generator per case, sorted JSON), so a
rerun reproduces identical bytes. Exits non-zero if any self-check fails.

The semantics follow huggingface/peft main (v0.20.0-47-g5d602fdbf); the README lists each rule and its source.
"""
import importlib.util
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
LLAMA = os.path.join(ROOT, "tests", "fixtures", "llama")
OUT = os.path.join(ROOT, "tests", "fixtures", "lora_variants")

_spec = importlib.util.spec_from_file_location("make_llama_fixtures", os.path.join(HERE, "make_llama_fixtures.py"))
LL = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(LL)
write_safetensors, read_safetensors, write_json = LL.write_safetensors, LL.read_safetensors, LL.write_json
check, forward, peft_matches, LINEARS = LL.check, LL.forward, LL.peft_matches, LL.LINEARS

F64 = torch.float64


def f32(t):
    """Round to the stored precision, then keep computing in float64 on exactly the stored values."""
    return t.float().double()


def load_base(name):
    import json
    d = os.path.join(LLAMA, name)
    cfg = json.load(open(os.path.join(d, "config.json")))
    W = read_safetensors(os.path.join(d, "model.safetensors"))
    exp = read_safetensors(os.path.join(d, "expected.safetensors"))
    return cfg, W, exp["input_ids"], exp["attention_mask"], exp["logits"]


def adapter_config(base, r, alpha, targets, use_dora=False, init=True):
    """The key set of tests/fixtures/llama/llama_plain_lora/adapter_config.json (PEFT's LoraConfig fields)."""
    c = LL.lora_config(r, alpha, targets, rslora=False)
    c.update(base_model_name_or_path=base, use_dora=use_dora, init_lora_weights=init)
    return c


def targeted(cfg, W, targets):
    out = []
    for i in range(cfg["num_hidden_layers"]):
        for m in LINEARS:
            path = f"model.layers.{i}.{m}"
            if peft_matches(targets, path):
                assert path + ".weight" in W, path
                out.append(path)
    assert out, f"no module matched {targets!r}"
    return out


def write_expected(path, ids, mask, logits):
    write_safetensors(path, {"input_ids": ids, "attention_mask": mask, "logits": logits.float()})


def read_back_ok(path, tensors):
    back = read_safetensors(path)
    return back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k].contiguous()) for k in tensors)


# ----------------------------------------------------------------------------- DoRA
def row_norm(M):
    """PEFT DoraLinearLayer.get_weight_norm: torch.linalg.norm(W + s * B @ A, dim=1) on the [out, in] weight,
    i.e. one L2 norm per output feature (per row), shape [out]."""
    return torch.linalg.norm(M, dim=1)


def dora_linear_peft(x, W, b, A, Bm, m, s):
    """PEFT's eval-mode (or lora_dropout == 0) DoRA Linear forward, step by step as in
    lora/layer.py Linear.forward -> lora/variants.py DoraLinearVariant.forward -> lora/dora.py DoraLinearLayer.forward:
      result      = base_layer(x)                           (= x W^T + b)
      base_result = result - bias                           (bias removed again, so it is not rescaled)
      norm        = ||W + s * (B @ A)||_row  (detached)
      f           = m / norm                                [1, out]
      result      = result + (f - 1) * base_result + f * (s * B(A x))
    """
    result = x @ W.T + (b if b is not None else 0)
    base_result = result - b if b is not None else result
    f = (m / row_norm(W + s * (Bm @ A))).view(1, -1)
    lora_result = (x @ A.T) @ Bm.T
    return result + ((f - 1) * base_result + f * lora_result * s)


def dora_as_lora(W, A, Bm, m, s):
    """The same extra term (f - 1) W x + f s B(A x) written as one low-rank-style pair so that
    make_llama_fixtures.forward (which adds s' * B'(A' x) to W x + b) computes PEFT's unmerged DoRA forward:
    A' = [W; A]  [out + r, in],  B' = [diag(f - 1) | f * s * B]  [out, out + r],  s' = 1."""
    f = m / row_norm(W + s * (Bm @ A))
    A2 = torch.cat([W, A], dim=0)
    B2 = torch.cat([torch.diag(f - 1), f[:, None] * s * Bm], dim=1)
    return A2, B2, 1.0


def dora_merged_weight(W, A, Bm, m, s):
    """PEFT DoraLinearVariant.merge_safe / merge_unsafe: delta = s * B @ A (get_delta_weight),
    norm = ||W + delta||_row (get_weight_norm with scaling=1), W' = (m / norm)[:, None] * (W + delta). The bias
    of the base layer is left as it is."""
    delta = s * (Bm @ A)
    return (m / row_norm(W + delta))[:, None] * (W + delta)


def write_dora(name, base, targets, r, alpha, seed):
    cfg, W32, ids, mask, base_logits = load_base(base)
    W = {k: v.double() for k, v in W32.items()}
    s = alpha / r
    g = torch.Generator().manual_seed(seed)
    tensors, unmerged, plain, wrong_bias, merged, init_mag = {}, {}, {}, {}, dict(W), {}
    merged_store = {}
    for path in targeted(cfg, W, targets):
        Wm = W[path + ".weight"]
        out_f, in_f = Wm.shape
        A = f32(0.1 * torch.randn(r, in_f, generator=g, dtype=F64))
        Bm = f32(0.1 * torch.randn(out_f, r, generator=g, dtype=F64))
        norm = row_norm(Wm + s * (Bm @ A))  # what PEFT's DoRA init stores as the magnitude (update_layer)
        m = f32(norm * (1 + 0.1 * torch.randn(out_f, generator=g, dtype=F64)))  # "trained": away from the init
        key = f"base_model.model.{path}"
        tensors[key + ".lora_A.weight"] = A.float()
        tensors[key + ".lora_B.weight"] = Bm.float()
        tensors[key + ".lora_magnitude_vector"] = m.float()  # no ".weight" suffix, shape [out]
        unmerged[path] = dora_as_lora(Wm, A, Bm, m, s)
        plain[path] = (A, Bm, s)
        init_mag[path] = dora_as_lora(Wm, A, Bm, norm, s)
        Wp = dora_merged_weight(Wm, A, Bm, m, s)
        merged[path + ".weight"] = Wp
        merged_store[path + ".weight"] = Wp.float()
        # negative control: a DoRA that also scales the bias, (m / norm) (W x + b) + ..., i.e. the merged weight
        # with the bias multiplied by f
        if path + ".bias" in W:
            f = m / norm
            wrong_bias[path] = (f, W[path + ".bias"])

    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "adapter_config.json"), adapter_config(base, r, alpha, targets, use_dora=True),
               newline=False)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors)
    logits = forward(cfg, W, ids, mask, lora=unmerged)
    merged_logits = forward(cfg, merged, ids, mask)
    write_expected(os.path.join(d, "expected.safetensors"), ids, mask, logits)
    write_expected(os.path.join(d, "merged_expected.safetensors"), ids, mask, merged_logits)
    write_safetensors(os.path.join(d, "merged_weights.safetensors"), merged_store)

    print(f"{name}: base {base}, {len(unmerged)} DoRA modules, r {r}, alpha {alpha} (s = {s:g})")
    ok = True
    ok &= check("adapter files read back bit-exactly",
                read_back_ok(os.path.join(d, "adapter_model.safetensors"), tensors), f"{len(tensors)} tensors")
    err = (forward(cfg, W32, ids, mask).float() - base_logits).abs().max().item()
    ok &= check("base model reproduces its stored logits", err < 1e-5, f"max |diff| {err:.1e}")
    # layer level: PEFT's step-by-step forward == the augmented pair == the merged weight, with and without bias
    worst = 0.0
    for path, (A2, B2, _) in unmerged.items():
        Wm, b = W[path + ".weight"], W.get(path + ".bias")
        A, Bm, _ = plain[path]
        m = tensors[f"base_model.model.{path}.lora_magnitude_vector"].double()
        xi = torch.randn(5, Wm.shape[1], generator=g, dtype=F64)
        ref = dora_linear_peft(xi, Wm, b, A, Bm, m, s)
        aug = xi @ Wm.T + (b if b is not None else 0) + (xi @ A2.T) @ B2.T
        mer = xi @ merged[path + ".weight"].T + (b if b is not None else 0)
        worst = max(worst, (ref - aug).abs().max().item(), (ref - mer).abs().max().item())
    ok &= check("layer: PEFT DoRA forward == augmented form == merged weight (+ unscaled bias)", worst < 1e-12,
                f"max |diff| {worst:.1e}")
    err = (merged_logits - logits).abs().max().item()
    moved = (logits - base_logits.double()).abs().max().item()
    ok &= check("model: merged DoRA logits == unmerged", err < 1e-10,
                f"max |diff| {err:.1e}; DoRA moves logits by {moved:.3f}")
    lora_logits = forward(cfg, W, ids, mask, lora=plain)
    init_logits = forward(cfg, W, ids, mask, lora=init_mag)
    err = (init_logits - lora_logits).abs().max().item()
    ok &= check("magnitude = initial norm ||W + sBA|| gives plain LoRA", err < 1e-10, f"max |diff| {err:.1e}")
    diff = (logits - lora_logits).abs().max().item()
    ok &= check("the stored (trained) magnitude matters", diff > 1e-2, f"DoRA vs plain LoRA: {diff:.3f}")
    if wrong_bias:
        wb = dict(merged)
        for path, (f, b) in wrong_bias.items():
            wb[path + ".bias"] = f * b
        diff = (forward(cfg, wb, ids, mask) - logits).abs().max().item()
        ok &= check("negative control: scaling the bias by m/||W+sBA|| changes the logits", diff > 1e-3,
                    f"max |diff| {diff:.3f} ({len(wrong_bias)} biased DoRA modules)")
    n = int(mask[1].sum())
    alone = forward(cfg, W, ids[1:, :n], mask[1:, :n], lora=unmerged)
    err = (alone - logits[1:, :n]).abs().max().item()
    ok &= check("padded row == row alone", err < 1e-12, f"max |diff| {err:.1e}")
    return ok


# ----------------------------------------------------------------------------- PiSSA / OLoRA initialisation
def pissa_init(W, r, s):
    """PEFT LoraLayer.pissa_init with init_lora_weights="pissa" (full SVD, torch.linalg.svd(W, full_matrices=False)
    on the [out, in] weight): W = V diag(S) Uh;  Sr = S[:r] / s;  A = diag(sqrt(Sr)) Uh[:r]  [r, in];
    B = V[:, :r] diag(sqrt(Sr))  [out, r];  base weight <- W - s B A."""
    V, S, Uh = torch.linalg.svd(W, full_matrices=False)
    Sr = S[:r] / s
    A = torch.diag(Sr.sqrt()) @ Uh[:r]
    Bm = V[:, :r] @ torch.diag(Sr.sqrt())
    return A, Bm, W - s * (Bm @ A), S


def olora_init(W, r, s):
    """PEFT LoraLayer.olora_init: Q, R = torch.linalg.qr(W) (reduced) on the [out, in] weight;
    A = R[:r]  [r, in];  B = Q[:, :r]  [out, r]  (no division by the scaling);  base weight <- W - s B A."""
    Q, R = torch.linalg.qr(W)
    A, Bm = R[:r], Q[:, :r]
    return A, Bm, W - s * (Bm @ A)


def write_pissa_olora(r, alpha):
    cfg, W32, *_ = load_base("llama_plain")
    s = alpha / r
    mods = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj"]
    out, ok = {}, True
    print(f"pissa_olora: r {r}, lora_alpha {alpha} (s = {s:g}) on {mods}")
    for mod in mods:
        W = W32[mod + ".weight"].double()
        out[mod + ".weight"] = W32[mod + ".weight"]
        A, Bm, res, S = pissa_init(W, r, s)
        delta = s * (Bm @ A)
        out[mod + ".pissa.delta"] = delta.float()
        out[mod + ".pissa.residual"] = res.float()
        out[mod + ".pissa.A_row_norms"] = torch.linalg.norm(A, dim=1).float()
        out[mod + ".pissa.B_col_norms"] = torch.linalg.norm(Bm, dim=0).float()
        tail = S[r:].pow(2).sum().sqrt().item()
        ok &= check(f"{mod} pissa: residual + delta == W", (res + delta - W).abs().max() < 1e-12, "")
        ok &= check(f"{mod} pissa: ||residual||_F == sqrt(sum_(i>r) S_i^2) (Eckart-Young)",
                    abs(torch.linalg.norm(res).item() - tail) < 1e-12, f"{tail:.6f}")
        ok &= check(f"{mod} pissa: A row norms == B col norms == sqrt(S_i / s)",
                    torch.allclose(torch.linalg.norm(A, dim=1), (S[:r] / s).sqrt(), atol=1e-12) and
                    torch.allclose(torch.linalg.norm(Bm, dim=0), (S[:r] / s).sqrt(), atol=1e-12), "")
        # sign invariance: flipping the sign of one singular pair leaves delta unchanged
        A2, B2 = A.clone(), Bm.clone()
        A2[1] *= -1
        B2[:, 1] *= -1
        ok &= check(f"{mod} pissa: delta is sign-invariant", torch.allclose(s * (B2 @ A2), delta, atol=1e-14), "")

        A, Bm, res = olora_init(W, r, s)
        delta = s * (Bm @ A)
        out[mod + ".olora.delta"] = delta.float()
        out[mod + ".olora.residual"] = res.float()
        out[mod + ".olora.A_row_norms"] = torch.linalg.norm(A, dim=1).float()
        out[mod + ".olora.B_col_norms"] = torch.linalg.norm(Bm, dim=0).float()
        ok &= check(f"{mod} olora: residual + delta == W", (res + delta - W).abs().max() < 1e-12, "")
        # independent of the QR: Q_r R_r = Q_r Q_r^T W = P W, P the orthogonal projector onto span(W[:, :r])
        C = W[:, :r]
        P = C @ torch.linalg.pinv(C)
        err = (s * (P @ W) - delta).abs().max().item()
        ok &= check(f"{mod} olora: delta == s * proj_span(W[:, :r]) W", err < 1e-12, f"max |diff| {err:.1e}")
        ok &= check(f"{mod} olora: B has orthonormal columns", (Bm.T @ Bm - torch.eye(r, dtype=F64)).abs().max() < 1e-12,
                    "")
        err = ((out[mod + ".pissa.residual"].double() + out[mod + ".pissa.delta"].double()) - W).abs().max().item()
        ok &= check(f"{mod}: stored F32 residual + delta == W to F32 rounding", err < 1e-5, f"max |diff| {err:.1e}")
    d = os.path.join(OUT, "pissa_olora")
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "init.safetensors"), out)
    ok &= check("init.safetensors reads back bit-exactly", read_back_ok(os.path.join(d, "init.safetensors"), out),
                f"{len(out)} tensors")
    return ok


# ----------------------------------------------------------------------------- PiSSA -> LoRA conversion on save
def write_pissa_converted(r, alpha, targets, seed):
    cfg, W32, ids, mask, base_logits = load_base("llama_plain")
    W = {k: v.double() for k, v in W32.items()}
    s = alpha / r
    g = torch.Generator().manual_seed(seed)
    init_t, trained_t, conv_t, residual_t = {}, {}, {}, {}
    trained, converted, initial = {}, {}, {}
    Wres = dict(W)
    Wres32 = dict(W)
    for path in targeted(cfg, W, targets):
        Wm = W[path + ".weight"]
        A0, B0, _, _ = pissa_init(Wm, r, s)
        A0, B0 = f32(A0), f32(B0)  # the stored initial adapter
        res = Wm - s * (B0 @ A0)  # the residual base weight PEFT leaves in the model
        A = f32(A0 + 0.05 * torch.randn(A0.shape, generator=g, dtype=F64))  # "training"
        Bm = f32(B0 + 0.05 * torch.randn(B0.shape, generator=g, dtype=F64))
        A1 = torch.cat([A, A0], dim=0)  # [2r, in]
        B1 = torch.cat([Bm, -B0], dim=1)  # [out, 2r]
        key = f"base_model.model.{path}"
        init_t[key + ".lora_A.weight"], init_t[key + ".lora_B.weight"] = A0.float(), B0.float()
        trained_t[key + ".lora_A.weight"], trained_t[key + ".lora_B.weight"] = A.float(), Bm.float()
        conv_t[key + ".lora_A.weight"], conv_t[key + ".lora_B.weight"] = A1.float(), B1.float()
        residual_t[path + ".weight"] = res.float()
        Wres[path + ".weight"] = res
        Wres32[path + ".weight"] = f32(res)
        initial[path], trained[path], converted[path] = (A0, B0, s), (A, Bm, s), (A1, B1, (2 * alpha) / (2 * r))

    d = os.path.join(OUT, "pissa_converted")
    for sub in ("", "initial", "trained"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    write_json(os.path.join(d, "adapter_config.json"), adapter_config("llama_plain", 2 * r, 2 * alpha, targets),
               newline=False)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), conv_t)
    write_json(os.path.join(d, "initial", "adapter_config.json"), adapter_config("llama_plain", r, alpha, targets),
               newline=False)
    write_safetensors(os.path.join(d, "initial", "adapter_model.safetensors"), init_t)
    write_json(os.path.join(d, "trained", "adapter_config.json"),
               adapter_config("llama_plain", r, alpha, targets, init="pissa"), newline=False)
    write_safetensors(os.path.join(d, "trained", "adapter_model.safetensors"), trained_t)
    write_safetensors(os.path.join(d, "residual.safetensors"), residual_t)
    logits = forward(cfg, Wres, ids, mask, lora=trained)  # residual base + trained PiSSA adapter
    write_expected(os.path.join(d, "expected.safetensors"), ids, mask, logits)

    print(f"pissa_converted: {len(trained)} modules, PiSSA r {r} alpha {alpha} -> LoRA r {2 * r} alpha {2 * alpha}")
    ok = True
    ok &= check("adapter files read back bit-exactly",
                read_back_ok(os.path.join(d, "adapter_model.safetensors"), conv_t) and
                read_back_ok(os.path.join(d, "trained", "adapter_model.safetensors"), trained_t), "")
    conv_logits = forward(cfg, W, ids, mask, lora=converted)
    err = (conv_logits - logits).abs().max().item()
    ok &= check("original base + converted LoRA == residual base + trained PiSSA", err < 1e-10, f"max |diff| {err:.1e}")
    worst = max((W[p + ".weight"] + c * (B1 @ A1) - (Wres[p + ".weight"] + s * (Bm @ A))).abs().max().item()
                for p, ((A1, B1, c), (A, Bm, _)) in ((p, (converted[p], trained[p])) for p in trained))
    ok &= check("weights: W + s(A'B') == W_res + s(BA)", worst < 1e-13, f"max |diff| {worst:.1e}")
    init_logits = forward(cfg, Wres, ids, mask, lora=initial)
    err = (init_logits - forward(cfg, W, ids, mask)).abs().max().item()
    ok &= check("residual base + initial PiSSA adapter == original model", err < 1e-12, f"max |diff| {err:.1e}")
    err = (forward(cfg, Wres32, ids, mask, lora=trained) - logits).abs().max().item()
    ok &= check("F32-stored residual + trained adapter == expected to F32 rounding", err < 1e-5, f"max |diff| {err:.1e}")
    moved = (logits - base_logits.double()).abs().max().item()
    ok &= check("training moved the logits", moved > 1e-2, f"{moved:.3f}")
    return ok


# ----------------------------------------------------------------------------- modules_to_save
def write_modules_to_save(targets, r, alpha, seed):
    """LoRA plus modules_to_save ["lm_head"] on a base whose head is tied to its embeddings. PEFT's
    ModulesToSaveWrapper trains a deep copy of lm_head, so the embedding keeps the base's values and the head is the
    saved base_model.model.lm_head.weight (get_peft_model_state_dict drops "modules_to_save.default")."""
    cfg, W32, ids, mask, base_logits = load_base("llama_gqa_tied")
    assert cfg.get("tie_word_embeddings"), "llama_gqa_tied must tie its head"
    W = {k: v.double() for k, v in W32.items()}
    s = alpha / r
    g = torch.Generator().manual_seed(seed)
    tensors, lora = {}, {}
    for path in targeted(cfg, W, targets):
        out_f, in_f = W[path + ".weight"].shape
        A = f32(0.1 * torch.randn(r, in_f, generator=g, dtype=F64))
        Bm = f32(0.1 * torch.randn(out_f, r, generator=g, dtype=F64))
        tensors[f"base_model.model.{path}.lora_A.weight"], tensors[f"base_model.model.{path}.lora_B.weight"] = \
            A.float(), Bm.float()
        lora[path] = (A, Bm, s)
    embed = W["model.embed_tokens.weight"]
    head = f32(embed + 0.2 * torch.randn(embed.shape, generator=g, dtype=F64))  # the trained copy
    tensors["base_model.model.lm_head.weight"] = head.float()

    d = os.path.join(OUT, "lora_lm_head_tied")
    os.makedirs(d, exist_ok=True)
    config = adapter_config("llama_gqa_tied", r, alpha, targets)
    config["modules_to_save"] = ["lm_head"]
    write_json(os.path.join(d, "adapter_config.json"), config, newline=False)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors)
    untied = dict(cfg, tie_word_embeddings=False)
    logits = forward(untied, dict(W, **{"lm_head.weight": head}), ids, mask, lora=lora)
    write_expected(os.path.join(d, "expected.safetensors"), ids, mask, logits)

    print(f"lora_lm_head_tied: LoRA on {len(lora)} modules + lm_head [{head.shape[0]}, {head.shape[1]}]")
    ok = check("adapter file reads back bit-exactly", read_back_ok(os.path.join(d, "adapter_model.safetensors"), tensors),
               "")
    # Had the copy stayed tied, the embeddings would have changed too: the fixture tells the two apart.
    tied = forward(cfg, dict(W, **{"model.embed_tokens.weight": head}), ids, mask, lora=lora)
    gap = (tied - logits).abs().max().item()
    ok &= check("untied head differs from a head trained in place of the tied matrix", gap > 1e-2, f"{gap:.3f}")
    moved = (logits - base_logits.double()).abs().max().item()
    ok &= check("the adapter moved the logits", moved > 1e-2, f"{moved:.3f}")
    return ok


def main():
    for base in ("llama_plain", "llama_mlp_bias", "llama_gqa_tied"):
        if not os.path.exists(os.path.join(LLAMA, base, "model.safetensors")):
            print(f"missing {base}: run scripts/reference/make_llama_fixtures.py first")
            return 1
    os.makedirs(OUT, exist_ok=True)
    ok = True
    ok &= write_dora("llama_plain_dora", "llama_plain", ["q_proj", "v_proj", "down_proj"], r=4, alpha=8, seed=301)
    ok &= write_dora("llama_mlp_bias_dora", "llama_mlp_bias", ["o_proj", "up_proj"], r=4, alpha=8, seed=302)
    ok &= write_pissa_olora(r=4, alpha=8)
    ok &= write_pissa_converted(r=4, alpha=8, targets=["q_proj", "v_proj"], seed=304)
    ok &= write_modules_to_save(targets=["q_proj", "v_proj"], r=4, alpha=8, seed=305)
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
