#!/usr/bin/python3
"""TorchScript test models, written by Debian's PyTorch (python3-torch 1.13) so that the C++ side proves it reads
what that PyTorch writes.

Run:  /usr/bin/python3 scripts/reference/make_torchscript_fixtures.py      (no network)

Writes tests/fixtures/torchscript/ (see the README there):
  stories260k_scripted/model.pt   stories260K (third_party/stories260K-hf) as a plain-torch Llama with Hugging Face
                                  parameter names, torch.jit.script'ed, its config.json saved inside the archive
  stories260k_traced/model.pt     the same module torch.jit.trace'd, with config.json beside the file
  custom/gru_lm.pt                an architecture the tool does not know (embedding, GRU, two MLP blocks, head):
                                  forward(input_ids, attention_mask) -> (B, T, V) logits, scripted
  custom/gru_lm_traced.pt         the same module traced
  custom/gru_lm_loss.pt           the same weights returning their own loss: forward(input_ids, labels) -> scalar
  custom/classifier.pt            a mean-pooling classifier: forward(input_ids, attention_mask) -> (B, 2) logits
  custom/bad_signature.pt         forward(input_ids, temperature, scale) with two arguments no contract can fill
  custom/no_linear.pt             logits from the embedding matrix alone: no linear layer to adapt
  custom/state_dict.pt            torch.save(state_dict): not a TorchScript archive
The custom modules use the stories260K tokenizer's 512-token vocabulary, so the shipped tokenizer and data train
them. Plain torch only; seeded, so a rerun writes the same archive contents (only the zip entries' timestamps differ).
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "torchscript")
STORIES = os.path.join(ROOT, "third_party", "stories260K-hf")
VOCAB = 512


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        b, e = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[8 + n + b:8 + n + e]), dtype=torch.float32).reshape(info["shape"])
    return out


# ----------------------------------------------------------------------------- a Llama with HF names
class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.heads, self.kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
        self.head_dim = c["hidden_size"] // self.heads
        d = c["hidden_size"]
        self.q_proj = nn.Linear(d, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(d, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t = x.shape[0], x.shape[1]
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
        v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = torch.matmul(q, k.transpose(2, 3)) / (self.head_dim ** 0.5) + mask
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.mlp = Mlp(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([DecoderLayer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    """Hugging Face's eager Llama (tied head), positions 0..T-1, right padding masked out of the keys."""

    def __init__(self, c):
        super().__init__()
        self.model = LlamaModel(c)
        head_dim = c["hidden_size"] // c["num_attention_heads"]
        inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        x = self.model.embed_tokens(input_ids)
        freqs = torch.outer(torch.arange(t, dtype=torch.float32), self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        causal = torch.full((t, t), -1e9).triu(1)
        padding = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -1e9
        mask = causal[None, None] + padding
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        return F.linear(self.model.norm(x), self.model.embed_tokens.weight)


# ----------------------------------------------------------------------------- architectures the tool does not know
class MlpBlock(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc_in = nn.Linear(d, 4 * d)
        self.fc_out = nn.Linear(4 * d, d)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x):
        return x + self.dropout(self.fc_out(F.gelu(self.fc_in(self.norm(x)))))


class GruLM(nn.Module):
    def __init__(self, d: int = 32):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d)
        self.rnn = nn.GRU(d, d, batch_first=True)
        self.blocks = nn.ModuleList([MlpBlock(d), MlpBlock(d)])
        self.head = nn.Linear(d, VOCAB)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x, _ = self.rnn(self.embed(input_ids))
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class GruLMWithLoss(nn.Module):
    """The same network computing Hugging Face's causal-LM loss from labels (-100 = not scored)."""

    def __init__(self, lm: GruLM):
        super().__init__()
        self.embed, self.rnn, self.blocks, self.head = lm.embed, lm.rnn, lm.blocks, lm.head

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x, _ = self.rnn(self.embed(input_ids))
        for block in self.blocks:
            x = block(x)
        logits = self.head(x)
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)


class MeanPoolClassifier(nn.Module):
    def __init__(self, d: int = 32, labels: int = 2):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d)
        self.proj = nn.Linear(d, d)
        self.out = nn.Linear(d, labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(torch.float32)
        pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.out(torch.tanh(self.proj(pooled)))


class BadSignature(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, input_ids: torch.Tensor, temperature: float, scale: float) -> torch.Tensor:
        return self.proj(torch.ones(input_ids.shape[0], 4)) * temperature * scale


class NoLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 8)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        return torch.matmul(x, self.embed.weight.t())


def main():
    os.makedirs(os.path.join(OUT, "custom"), exist_ok=True)
    with open(os.path.join(STORIES, "config.json")) as f:
        config_text = f.read()
    config = json.loads(config_text)
    weights = read_safetensors(os.path.join(STORIES, "model.safetensors"))
    llama = LlamaForCausalLM(config)
    missing, unexpected = llama.load_state_dict(weights, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    llama.eval()
    ids = torch.tensor([[1, 403, 407, 261, 378, 9], [1, 67, 12, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    scripted = torch.jit.script(llama)
    traced = torch.jit.trace(llama, (ids, mask))
    assert torch.allclose(scripted(ids, mask), traced(ids, mask), atol=1e-5)
    os.makedirs(os.path.join(OUT, "stories260k_scripted"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "stories260k_traced"), exist_ok=True)
    scripted.save(os.path.join(OUT, "stories260k_scripted", "model.pt"), _extra_files={"config.json": config_text})
    traced.save(os.path.join(OUT, "stories260k_traced", "model.pt"))
    with open(os.path.join(OUT, "stories260k_traced", "config.json"), "w") as f:
        f.write(config_text)

    torch.manual_seed(1234)
    lm = GruLM().eval()
    torch.jit.script(lm).save(os.path.join(OUT, "custom", "gru_lm.pt"))
    torch.jit.trace(lm, (ids, mask)).save(os.path.join(OUT, "custom", "gru_lm_traced.pt"))
    torch.jit.script(GruLMWithLoss(lm)).save(os.path.join(OUT, "custom", "gru_lm_loss.pt"))
    torch.manual_seed(99)
    torch.jit.script(MeanPoolClassifier()).save(os.path.join(OUT, "custom", "classifier.pt"))
    torch.jit.script(BadSignature()).save(os.path.join(OUT, "custom", "bad_signature.pt"))
    torch.jit.script(NoLinear()).save(os.path.join(OUT, "custom", "no_linear.pt"))
    torch.save(lm.state_dict(), os.path.join(OUT, "custom", "state_dict.pt"))
    print("wrote", OUT, "with PyTorch", torch.__version__)
    print("ALL CHECKS PASSED")


if __name__ == "__main__":
    sys.exit(main())
