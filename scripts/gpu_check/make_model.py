#!/usr/bin/python3
"""A randomly initialised Llama in Hugging Face layout, for scripts/gpu_check.sh.

Run:  python3 scripts/gpu_check/make_model.py OUT_DIR [--hidden 1536 --layers 20 --intermediate 4096 --heads 16 --kv-heads 4]

Plain torch only (no transformers or safetensors package): config.json, model.safetensors written by hand and the
stories260K tokenizer (vocab 512) copied beside them, so that the tool and transformers load the same model and
tokenize the same text. The default shape has about 0.5B parameters. Deterministic (seed 0).
"""
import argparse
import json
import os
import shutil
import struct
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def write_safetensors(path, tensors):
    """u64 LE header length, JSON header padded with spaces to 8 bytes, then the data in key order."""
    assert sys.byteorder == "little"
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    names = sorted(tensors)
    for name in names:
        t = tensors[name]
        size = t.numel() * t.element_size()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in names:
            f.write(tensors[name].contiguous().numpy().tobytes())
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--hidden", type=int, default=1536)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--intermediate", type=int, default=4096)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=512)
    args = parser.parse_args()
    d, f, n_h, n_kv, V = args.hidden, args.intermediate, args.heads, args.kv_heads, args.vocab
    d_h = d // n_h
    torch.manual_seed(0)
    std = 0.02
    tensors = {"model.embed_tokens.weight": torch.randn(V, d) * std, "model.norm.weight": torch.ones(d),
               "lm_head.weight": torch.randn(V, d) * std}
    for i in range(args.layers):
        p = f"model.layers.{i}."
        for name, shape in [("self_attn.q_proj", (n_h * d_h, d)), ("self_attn.k_proj", (n_kv * d_h, d)),
                            ("self_attn.v_proj", (n_kv * d_h, d)), ("self_attn.o_proj", (d, n_h * d_h)),
                            ("mlp.gate_proj", (f, d)), ("mlp.up_proj", (f, d)), ("mlp.down_proj", (d, f))]:
            tensors[p + name + ".weight"] = torch.randn(*shape) * std
        tensors[p + "input_layernorm.weight"] = torch.ones(d)
        tensors[p + "post_attention_layernorm.weight"] = torch.ones(d)
    os.makedirs(args.out, exist_ok=True)
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": V, "hidden_size": d,
              "intermediate_size": f, "num_hidden_layers": args.layers, "num_attention_heads": n_h,
              "num_key_value_heads": n_kv, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False, "bos_token_id": 1,
              "eos_token_id": 2, "torch_dtype": "float32", "attention_bias": False, "mlp_bias": False}
    with open(os.path.join(args.out, "config.json"), "w") as out:
        json.dump(config, out, indent=2)
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors)
    stories = os.path.join(ROOT, "third_party", "stories260K-hf")
    for name in os.listdir(stories):
        if name.startswith("tokenizer"):
            shutil.copy(os.path.join(stories, name), args.out)
    count = sum(t.numel() for t in tensors.values())
    print(f"random Llama with {count / 1e6:.0f}M parameters written to {args.out}")


if __name__ == "__main__":
    main()
