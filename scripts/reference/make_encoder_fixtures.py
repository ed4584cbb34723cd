#!/usr/bin/python3
"""Independent reference for BERT and RoBERTa sequence classifiers (Hugging Face semantics).

Run:  /usr/bin/python3 scripts/reference/make_encoder_fixtures.py      (Debian python3-torch; no network)

Writes tests/fixtures/encoders/ (see the README there). Plain torch, nothing from the C++ code. Mirrors
transformers' eager BertForSequenceClassification and RobertaForSequenceClassification in eval mode:
embeddings (word + position + token type, LayerNorm), post-LN blocks (attention, then feed-forward, each
followed by LayerNorm of output + residual), exact gelu; BERT pools token 0 through dense + tanh into the
classifier; RoBERTa numbers positions from padding_idx + 1 over non-pad tokens and classifies token 0 with
dense + tanh + out_proj. Runs in float64; logits stored as float32. Deterministic.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_llama_fixtures import check, read_safetensors, write_json, write_safetensors  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "encoders")
BERT_TINIEST = os.environ.get("BERT_TINIEST", "/work/shared/data/bert-tiniest-random-hf")


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = (x - mean).pow(2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def forward(cfg, weights, ids, mask, token_types=None, lora=None, dtype=torch.float64):
    """Classification logits [B, num_labels]. weights: HF names (bert. / roberta. prefixes, classifier.*).
    lora: {module: (A [r, in], B [out, r], s)}."""
    W = {k: v.to(dtype) for k, v in weights.items()}
    roberta = cfg["model_type"] == "roberta"
    base = "roberta." if roberta else "bert."
    H, n_h, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    d_h, eps = H // n_h, cfg["layer_norm_eps"]
    B, T = ids.shape

    def linear(x, name):
        y = x @ W[name + ".weight"].T + W[name + ".bias"]
        if lora and name in lora:
            A, Bm, s = lora[name]
            y = y + s * ((x @ A.to(dtype).T) @ Bm.to(dtype).T)
        return y

    if roberta:  # create_position_ids_from_input_ids: padding_idx + cumulative count of non-pad tokens
        pad = cfg["pad_token_id"]
        real = (ids != pad).long()
        positions = torch.cumsum(real, dim=1) * real + pad
    else:
        positions = torch.arange(T)[None].expand(B, T)
    if token_types is None:
        token_types = torch.zeros_like(ids)
    e = base + "embeddings."
    x = W[e + "word_embeddings.weight"][ids] + W[e + "position_embeddings.weight"][positions] + \
        W[e + "token_type_embeddings.weight"][token_types]
    x = layer_norm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"], eps)
    allowed = mask.bool()[:, None, None, :]  # [B, 1, 1, T]: every query sees every real key
    for i in range(L):
        p = f"{base}encoder.layer.{i}."
        heads = lambda t: t.view(B, T, n_h, d_h).transpose(1, 2)
        q = heads(linear(x, p + "attention.self.query"))
        k = heads(linear(x, p + "attention.self.key"))
        v = heads(linear(x, p + "attention.self.value"))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d_h)
        scores = scores.masked_fill(~allowed, float("-inf"))
        a = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, H)
        h = layer_norm(linear(a, p + "attention.output.dense") + x, W[p + "attention.output.LayerNorm.weight"],
                       W[p + "attention.output.LayerNorm.bias"], eps)
        f = linear(gelu(linear(h, p + "intermediate.dense")), p + "output.dense")
        x = layer_norm(f + h, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    first = x[:, 0]
    if roberta:
        return linear(torch.tanh(linear(first, "classifier.dense")), "classifier.out_proj")
    pooled = torch.tanh(linear(first, base + "pooler.dense"))
    return linear(pooled, "classifier")


def encoder_config(kind, V=60, H=16, n_h=4, L=2, I=24, P=40, labels=3):
    cfg = {"architectures": ["RobertaForSequenceClassification" if kind == "roberta" else
                             "BertForSequenceClassification"],
           "attention_probs_dropout_prob": 0.1, "classifier_dropout": None, "hidden_act": "gelu",
           "hidden_dropout_prob": 0.1, "hidden_size": H, "initializer_range": 0.02, "intermediate_size": I,
           "layer_norm_eps": 1e-12 if kind == "bert" else 1e-5, "max_position_embeddings": P, "model_type": kind,
           "num_attention_heads": n_h, "num_hidden_layers": L, "position_embedding_type": "absolute",
           "torch_dtype": "float32", "type_vocab_size": 2 if kind == "bert" else 1, "vocab_size": V,
           "id2label": {str(i): f"LABEL_{i}" for i in range(labels)},
           "label2id": {f"LABEL_{i}": i for i in range(labels)}}
    if kind == "roberta":
        cfg.update(pad_token_id=1, bos_token_id=0, eos_token_id=2)
    else:
        cfg.update(pad_token_id=0)
    return cfg


def make_weights(cfg, seed, labels):
    g = torch.Generator().manual_seed(seed)
    roberta = cfg["model_type"] == "roberta"
    base = "roberta." if roberta else "bert."
    V, H, I, L, P = (cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"],
                     cfg["max_position_embeddings"])
    e = base + "embeddings."
    shapes = {e + "word_embeddings.weight": [V, H], e + "position_embeddings.weight": [P, H],
              e + "token_type_embeddings.weight": [cfg["type_vocab_size"], H],
              e + "LayerNorm.weight": [H], e + "LayerNorm.bias": [H]}
    lin = {"attention.self.query": [H, H], "attention.self.key": [H, H], "attention.self.value": [H, H],
           "attention.output.dense": [H, H], "intermediate.dense": [I, H], "output.dense": [H, I]}
    for i in range(L):
        p = f"{base}encoder.layer.{i}."
        for m, s in lin.items():
            shapes[p + m + ".weight"], shapes[p + m + ".bias"] = s, [s[0]]
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + norm + ".weight"], shapes[p + norm + ".bias"] = [H], [H]
    if roberta:
        shapes.update({"classifier.dense.weight": [H, H], "classifier.dense.bias": [H],
                       "classifier.out_proj.weight": [labels, H], "classifier.out_proj.bias": [labels]})
    else:
        shapes.update({base + "pooler.dense.weight": [H, H], base + "pooler.dense.bias": [H],
                       "classifier.weight": [labels, H], "classifier.bias": [labels]})
    W = {}
    for name in sorted(shapes):
        r = torch.randn(shapes[name], generator=g)
        W[name] = 1.0 + 0.1 * r if name.endswith("LayerNorm.weight") else (0.5 * r if "embeddings" in name else
                                                                            0.3 * r)
    return W


def make_inputs(V, seed, pad_id, B=3, T=8):
    """Row 0 full; rows 1 and 2 right-padded with pad_id. Token types: row 2 is a pair (second half type 1)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, V, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.int64)
    mask[1, 5:] = 0
    mask[2, 7:] = 0
    ids[mask == 0] = pad_id
    types = torch.zeros(B, T, dtype=torch.int64)
    types[2, 4:7] = 1
    return ids, mask, types


def write_case(name, cfg, W, ids, mask, types):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "config.json"), cfg)
    write_safetensors(os.path.join(d, "model.safetensors"), W)
    logits = forward(cfg, W, ids, mask, types)
    write_safetensors(os.path.join(d, "expected.safetensors"),
                      {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "logits": logits.float()})
    return logits


def self_checks(cfg, W, ids, mask, types, logits):
    ok = True
    f32 = forward(cfg, W, ids, mask, types, dtype=torch.float32)
    err = (f32.double() - logits).abs().max().item() / logits.abs().max().item()
    ok &= check("float32 run == float64 reference", err < 1e-5, f"{err:.2e}")
    n = int(mask[1].sum())
    alone = forward(cfg, W, ids[1:2, :n], mask[1:2, :n], types[1:2, :n])
    err = (alone - logits[1:2]).abs().max().item()
    ok &= check("padding: padded row == same row unpadded", err < 1e-12, f"{err:.2e}")
    ids2 = ids.clone()
    ids2[0, -1] = 3 if ids[0, -1] != 3 else 4
    ok &= check("bidirectional: the last token changes the first position's output",
                not torch.equal(forward(cfg, W, ids2, mask, types)[0], logits[0]), "")
    return ok


def main():
    os.makedirs(OUT, exist_ok=True)
    ok = True
    for kind, seed in (("bert", 301), ("roberta", 302)):
        cfg = encoder_config(kind)
        W = make_weights(cfg, seed, 3)
        ids, mask, types = make_inputs(cfg["vocab_size"], seed + 1000, cfg["pad_token_id"])
        if kind == "roberta":
            types = torch.zeros_like(types)  # type_vocab_size 1
        logits = write_case(f"{kind}_tiny", cfg, W, ids, mask, types)
        print(f"{kind}_tiny:")
        ok &= self_checks(cfg, W, ids, mask, types, logits)

    if os.path.isdir(BERT_TINIEST):  # the random BERT shipped in ../shared/data, with a seeded 2-label head
        cfg = __import__("json").load(open(os.path.join(BERT_TINIEST, "config.json")))
        W = read_safetensors(os.path.join(BERT_TINIEST, "model.safetensors"))
        g = torch.Generator().manual_seed(303)
        head = {"bert.pooler.dense.weight": 0.3 * torch.randn(4, 4, generator=g),
                "bert.pooler.dense.bias": 0.3 * torch.randn(4, generator=g),
                "classifier.weight": 0.3 * torch.randn(2, 4, generator=g),
                "classifier.bias": 0.3 * torch.randn(2, generator=g)}
        ids = torch.tensor([[101, 7592, 1010, 2088, 999, 102], [101, 2023, 2003, 102, 0, 0]])
        mask = (ids != 0).long()
        types = torch.zeros_like(ids)
        logits = forward(dict(cfg, model_type="bert"), dict(W, **head), ids, mask, types)
        write_safetensors(os.path.join(OUT, "bert_tiniest_head.safetensors"), head)
        write_safetensors(os.path.join(OUT, "bert_tiniest_expected.safetensors"),
                          {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                           "logits": logits.float()})
    else:
        print(f"  (no {BERT_TINIEST}: bert_tiniest fixtures not rewritten)")
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
