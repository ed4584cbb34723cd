#!/usr/bin/python3
"""The Hugging Face side of scripts/gpu_check.sh: LoRA with transformers + PEFT on the same model and tokens.

Run by gpu_check.sh (which passes the token ids peft-tokenize printed, so that both sides see the same tokens):
  python3 hf_lora.py --model DIR --train-ids T.json --eval-ids E.json --steps N --out RESULT.json
                     [--adapter TOOL_ADAPTER --tool-per-example TOOL.jsonl]

1. Trains LoRA (r, alpha and targets as the tool's config; AdamW, linear warm-up then cosine, batch 8 of
   128-token windows of BOS + text + EOS, as the tool cuts a .txt file) for N steps, timing the steps after the
   first two: tokens/s, peak CUDA memory (allocated and reserved), the mean loss of the last steps.
2. Loads the tool's adapter with PeftModel.from_pretrained onto the float32 base and computes the loss of every
   held-out window: the tool's per-example losses (peft-eval --per-example) must equal them (printed as the
   largest relative difference).
"""
import argparse
import json
import math
import time

import torch


def windows(ids, length, bos=1, eos=2):
    stream = [bos] + ids + [eos]
    out = []
    for start in range(0, len(stream), length):
        piece = stream[start:start + length]
        if len(piece) < 2:
            break
        out.append(piece)
    return out


def example_loss(model, ids, device):
    x = torch.tensor([ids], device=device)
    logits = model(input_ids=x).logits.float()
    return torch.nn.functional.cross_entropy(logits[0, :-1], x[0, 1:]).item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--train-ids", required=True)
    p.add_argument("--eval-ids", required=True)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--max-eval", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--r", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--device", default="cuda")
    p.add_argument("--adapter")
    p.add_argument("--tool-per-example")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, get_cosine_schedule_with_warmup

    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    train = windows(json.load(open(args.train_ids)), args.max_length)
    held_out = windows(json.load(open(args.eval_ids)), args.max_length)[: args.max_eval]
    result = {"device": args.device, "steps": args.steps, "dtype": args.dtype}

    torch.manual_seed(42)
    base = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype, attn_implementation="eager")
    model = get_peft_model(base, LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=0.0,
                                            target_modules=args.targets.split(","), task_type="CAUSAL_LM"))
    model.to(args.device).train()
    trainable = [q for q in model.parameters() if q.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimiser, args.warmup, args.steps)
    full = [w for w in train if len(w) == args.max_length]
    order = torch.randperm(len(full)).tolist()
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    losses, timed_tokens, started = [], 0, None
    for step in range(args.steps):
        if step == 2:
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
        rows = [full[order[(step * args.batch + i) % len(order)]] for i in range(args.batch)]
        x = torch.tensor(rows, device=args.device)
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        optimiser.step()
        schedule.step()
        optimiser.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step >= 2:
            timed_tokens += x.numel()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        result["peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["peak_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    seconds = time.perf_counter() - started if started else float("nan")
    result["tokens_per_s"] = timed_tokens / seconds if started else None
    result["train_loss_last5"] = sum(losses[-5:]) / len(losses[-5:])
    model.eval()
    with torch.no_grad():
        result["held_out_loss"] = sum(example_loss(model, w, args.device) for w in held_out) / len(held_out)
    del model, base, optimiser
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()

    if args.adapter and args.tool_per_example:
        base = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32, attn_implementation="eager")
        adapted = PeftModel.from_pretrained(base, args.adapter).to(args.device).eval()
        tool = [json.loads(line) for line in open(args.tool_per_example) if line.strip()]
        tool = [row for row in tool if row["index"] < len(held_out)]
        worst = 0.0
        with torch.no_grad():
            for row in tool:
                ours = example_loss(adapted, held_out[row["index"]], args.device)
                worst = max(worst, abs(ours - row["loss"]) / max(abs(ours), 1e-12))
        result["tool_adapter_in_peft_examples"] = len(tool)
        result["tool_adapter_in_peft_max_relative_loss_difference"] = worst
    with open(args.out, "w") as out:
        json.dump(result, out, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
