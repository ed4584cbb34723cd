#!/usr/bin/python3
"""Independent reference for the quantized base (model.quantize): NF4 with and without double quantization, and
int8, in bitsandbytes' layout and arithmetic; and a checkpoint saved as bitsandbytes saves a 4-bit model.

Run:  /usr/bin/python3 scripts/reference/make_quant_fixtures.py      (Debian python3-torch; no network)

Writes tests/fixtures/quant/ (see the README there). Reads tests/fixtures/llama/llama_plain. Plain torch only: no
bitsandbytes, transformers or safetensors package, nothing from the C++ code. Quantization runs the float32
operations bitsandbytes' PyTorch backend runs (x * (1 / absmax), midpoints of neighbouring levels in float32, ties
to the lower level), so that the codes are those the C++ must produce bit for bit; dequantization (one float32
product, level * absmax) is computed in float64 and rounded once, which is the same float32 value. The model
forward on the dequantized weights is float64. Deterministic: a rerun reproduces identical bytes. Exits non-zero
if a self-check fails.
"""
import importlib.util
import json
import math
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
LLAMA = os.path.join(ROOT, "tests", "fixtures", "llama")
OUT = os.path.join(ROOT, "tests", "fixtures", "quant")

_spec = importlib.util.spec_from_file_location("make_llama_fixtures", os.path.join(HERE, "make_llama_fixtures.py"))
LL = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(LL)
LL.DTYPES.update({"U8": torch.uint8, "I8": torch.int8})
LL.NAMES.update({torch.uint8: "U8", torch.int8: "I8"})
write_safetensors, read_safetensors, write_json, check, forward = (
    LL.write_safetensors, LL.read_safetensors, LL.write_json, LL.check, LL.forward)

F32 = torch.float32

# bitsandbytes' NF4 levels (functional.py get_4bit_type("nf4")), in index order.
NF4 = torch.tensor([-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
                    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
                    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                    0.7229568362236023, 1.0], dtype=F32)


def dynamic_map():
    """create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), built in float64, rounded once."""
    levels = [0.0, 1.0]
    for i in range(7):
        intervals = 2 ** i
        scale = math.pow(10.0, i - 6)
        for k in range(intervals):
            low = 0.1 + 0.9 * k / intervals
            high = 0.1 + 0.9 * (k + 1) / intervals
            mean = (low + high) / 2
            levels += [scale * mean, -scale * mean]
    return torch.tensor(sorted(levels), dtype=torch.float64).float()


def code(blocks, absmax, levels):
    """Nearest level of each value scaled by its row's absmax, in float32; ties to the lower level."""
    inverse = torch.reciprocal(absmax.clamp_min(1e-38)).unsqueeze(1)
    normalised = (blocks * inverse).clamp(-1.0, 1.0)
    mids = (levels[:-1] + levels[1:]) / 2
    return torch.bucketize(normalised, mids, right=False)


def pad(flat, length, value=0):
    return torch.cat([flat, torch.full((length - flat.numel(),), value, dtype=flat.dtype)]) if flat.numel() < length \
        else flat


def quantize_nf4(w, blocksize=64, double_quant=False):
    n = w.numel()
    blocks = -(-n // blocksize)
    values = pad(w.float().contiguous().view(-1), blocks * blocksize).view(blocks, blocksize)
    absmax = values.abs().amax(1)
    codes = code(values, absmax, NF4).view(-1)[:n]
    codes = pad(codes, n + n % 2, 7).view(-1, 2)
    q = {"codes": ((codes[:, 0] << 4) | codes[:, 1]).to(torch.uint8), "shape": list(w.shape), "blocksize": blocksize}
    if not double_quant:
        q["absmax"] = absmax
        return q
    offset = float(absmax.double().mean().float())
    nested = -(-blocks // 256)
    centred = pad(absmax - torch.tensor(offset, dtype=F32), nested * 256).view(nested, 256)
    q["nested_absmax"] = centred.abs().amax(1)
    q["nested_code"] = dynamic_map()
    q["absmax_codes"] = code(centred, q["nested_absmax"], q["nested_code"]).view(-1)[:blocks].to(torch.uint8)
    q["nested_offset"] = offset
    return q


def block_absmax(q):
    if "absmax" in q:
        return q["absmax"].double()
    nested = q["nested_absmax"].numel()
    decoded = q["nested_code"].double()[q["absmax_codes"].long()]
    scaled = pad(decoded, nested * 256).view(nested, 256) * q["nested_absmax"].double().unsqueeze(1)
    # float32 product, then + offset in float32: as the C++ (and bitsandbytes) computes it
    return (scaled.float().view(-1)[:decoded.numel()] + torch.tensor(q["nested_offset"], dtype=F32)).double()


def dequantize_nf4(q):
    n = math.prod(q["shape"])
    bs = q["blocksize"]
    high, low = (q["codes"] >> 4).long(), (q["codes"] & 15).long()
    levels = torch.stack([NF4.double()[high], NF4.double()[low]], 1).view(-1)[:n]
    blocks = -(-n // bs)
    values = pad(levels, blocks * bs).view(blocks, bs) * block_absmax(q).unsqueeze(1)
    return values.view(-1)[:n].float().view(q["shape"])  # one rounding of an exact float64 product


def quantize_int8(w):
    w = w.float()
    scale = w.abs().amax(1) / 127.0
    s = scale.unsqueeze(1)
    codes = torch.where(s > 0, torch.round(w / s), torch.zeros_like(w)).clamp(-127, 127).to(torch.int8)
    return {"codes": codes, "scale": scale}


def dequantize_int8(q):
    return (q["codes"].double() * q["scale"].double().unsqueeze(1)).float()


def projections(cfg, W):
    return sorted(k for k in W if k.startswith("model.layers.") and k.endswith("_proj.weight"))


# ----------------------------------------------------------------------------- fixtures
def write_model_cases():
    d = os.path.join(LLAMA, "llama_plain")
    cfg = json.load(open(os.path.join(d, "config.json")))
    W = read_safetensors(os.path.join(d, "model.safetensors"))
    exp = read_safetensors(os.path.join(d, "expected.safetensors"))
    ids, mask = exp["input_ids"], exp["attention_mask"]
    ok = True
    for name, quantize, dequantize in (
            ("nf4", lambda w: quantize_nf4(w), dequantize_nf4),
            ("nf4_double", lambda w: quantize_nf4(w, double_quant=True), dequantize_nf4),
            ("int8", quantize_int8, dequantize_int8)):
        dequantized = {k: dequantize(quantize(W[k])) for k in projections(cfg, W)}
        weights = {k: v.double() for k, v in W.items()}
        weights.update({k: v.double() for k, v in dequantized.items()})
        logits = forward(cfg, weights, ids, mask)
        out = os.path.join(OUT, "llama_plain_" + name)
        os.makedirs(out, exist_ok=True)
        write_safetensors(os.path.join(out, "dequantized.safetensors"), dequantized)
        write_safetensors(os.path.join(out, "expected.safetensors"),
                          {"input_ids": ids, "attention_mask": mask, "logits": logits.float()})
        worst = max(((dequantized[k] - W[k]).abs().max() / W[k].abs().max()).item() for k in dequantized)
        limit = 0.2 if name.startswith("nf4") else 0.005  # half the widest NF4 gap; half a step of 1/127
        ok &= check(f"{name}: dequantized weights within {limit} of the row/block maximum", worst < limit,
                    f"{worst:.4f}")
        moved = (logits - exp["logits"].double()).abs().max().item()
        ok &= check(f"{name}: quantization changes the logits, a little", 1e-6 < moved < 1.0, f"{moved:.2e}")
    return ok


def write_cases():
    """Odd sizes and many blocks: codes, scales and dequantized values for the C++ to match bit for bit."""
    g = torch.Generator().manual_seed(401)
    odd = torch.randn(5, 13, generator=g)                     # 65 values: a partial block of 1, an odd count
    wide = torch.randn(40, 500, generator=g) * 0.05            # 313 blocks: two nested blocks, the last partial
    wide[3, :64] = 0.0                                         # an all-zero block
    tensors = {"odd.weight": odd, "wide.weight": wide}
    for name, w in (("odd", odd), ("wide", wide)):
        q = quantize_nf4(w)
        tensors[f"{name}.nf4.codes"], tensors[f"{name}.nf4.absmax"] = q["codes"], q["absmax"]
        tensors[f"{name}.nf4.dequantized"] = dequantize_nf4(q)
        q = quantize_nf4(w, double_quant=True)
        tensors[f"{name}.nf4_double.codes"] = q["codes"]
        tensors[f"{name}.nf4_double.absmax_codes"] = q["absmax_codes"]
        tensors[f"{name}.nf4_double.nested_absmax"] = q["nested_absmax"]
        tensors[f"{name}.nf4_double.nested_offset"] = torch.tensor([q["nested_offset"]], dtype=F32)
        tensors[f"{name}.nf4_double.dequantized"] = dequantize_nf4(q)
        q = quantize_int8(w)
        tensors[f"{name}.int8.codes"], tensors[f"{name}.int8.scale"] = q["codes"], q["scale"]
        tensors[f"{name}.int8.dequantized"] = dequantize_int8(q)
    tensors["nested_code_book"] = dynamic_map()
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "cases.safetensors")
    write_safetensors(path, tensors)
    back = read_safetensors(path)
    ok = check("cases read back bit-exactly", all(torch.equal(back[k], tensors[k]) for k in tensors), "")
    m = dynamic_map()
    ok &= check("dynamic code book: 256 ascending levels, 0 and 1 among them, -1 not",
                m.numel() == 256 and bool((m[1:] > m[:-1]).all()) and m[127] == 0 and m[255] == 1 and m[0] > -1,
                f"{m[0].item():.8f} .. {m[254].item():.8f}")
    zero = quantize_nf4(wide)
    ok &= check("an all-zero block dequantizes to zeros", bool((dequantize_nf4(zero)[3, :64] == 0).all()), "")
    return ok


def pack_quant_state(state):
    """bitsandbytes' pack_dict_to_tensor: json.dumps (default separators) as UTF-8 bytes in a uint8 tensor."""
    return torch.tensor(list(json.dumps(state).encode("utf-8")), dtype=torch.uint8)


def write_bnb_checkpoint():
    """llama_plain as transformers + bitsandbytes save a model loaded with load_in_4bit, nf4, double quantization:
    each projection's packed weight and its quant state; everything else as it was."""
    src = os.path.join(LLAMA, "llama_plain")
    cfg = json.load(open(os.path.join(src, "config.json")))
    W = read_safetensors(os.path.join(src, "model.safetensors"))
    out = os.path.join(OUT, "llama_plain_bnb_nf4")
    os.makedirs(out, exist_ok=True)
    tensors, dequantized = {}, {}
    for k, v in W.items():
        if k not in projections(cfg, W):
            tensors[k] = v
            continue
        q = quantize_nf4(v, double_quant=True)
        tensors[k] = q["codes"].view(-1, 1)                            # [ceil(n/2), 1], uint8 storage
        tensors[k + ".absmax"] = q["absmax_codes"]                     # uint8 when nested
        tensors[k + ".quant_map"] = NF4.clone()
        tensors[k + ".nested_absmax"] = q["nested_absmax"]
        tensors[k + ".nested_quant_map"] = q["nested_code"]
        state = {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": list(v.shape),
                 "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": q["nested_offset"]}
        tensors[k + ".quant_state.bitsandbytes__nf4"] = pack_quant_state(state)
        dequantized[k] = dequantize_nf4(q)
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    cfg = dict(cfg)
    cfg["quantization_config"] = {
        "_load_in_4bit": True, "_load_in_8bit": False, "bnb_4bit_compute_dtype": "float32",
        "bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
        "llm_int8_enable_fp32_cpu_offload": False, "llm_int8_has_fp16_weight": False, "llm_int8_skip_modules": None,
        "llm_int8_threshold": 6.0, "load_in_4bit": True, "load_in_8bit": False, "quant_method": "bitsandbytes"}
    write_json(os.path.join(out, "config.json"), cfg)
    same = read_safetensors(os.path.join(OUT, "llama_plain_nf4_double", "dequantized.safetensors"))
    return check("bitsandbytes checkpoint holds the nf4_double weights",
                 all(torch.equal(dequantized[k], same[k]) for k in same), f"{len(dequantized)} projections")


def main():
    if not os.path.exists(os.path.join(LLAMA, "llama_plain", "model.safetensors")):
        print("missing llama_plain: run scripts/reference/make_llama_fixtures.py first")
        return 1
    os.makedirs(OUT, exist_ok=True)
    ok = write_model_cases()
    ok &= write_cases()
    ok &= write_bnb_checkpoint()
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
