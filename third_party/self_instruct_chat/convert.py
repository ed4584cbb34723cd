#!/usr/bin/env python3
"""Turns the Self-Instruct seed tasks into the chat demo's files (SOURCE.md says where they come from).

    python3 convert.py ../../../shared/data/self_instruct/seed_tasks.jsonl

Each task's first instance becomes one conversation: the user asks the instruction (and its input, after a blank
line, when there is one); the assistant answers with the output. Every 7th task (25 of 175) is held out:
  train.jsonl            {"messages": [...]}  150 conversations
  eval.jsonl             {"messages": [...]}  the 25 held-out conversations (held-out loss)
  eval_generation.jsonl  {"prompt": ..., "references": [...]}  the same 25 as a generation set (ROUGE-L)
"""
import json
import sys


def main(path):
    tasks = [json.loads(line) for line in open(path, encoding="utf-8")]
    train, held_out = [], []
    for number, task in enumerate(tasks):
        instance = task["instances"][0]
        question = task["instruction"].strip()
        if instance["input"].strip():
            question += "\n\n" + instance["input"].strip()
        record = (question, instance["output"].strip())
        (held_out if number % 7 == 6 else train).append(record)

    def conversation(question, answer):
        return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}

    with open("train.jsonl", "w", encoding="utf-8") as out:
        for record in train:
            out.write(json.dumps(conversation(*record), ensure_ascii=False) + "\n")
    with open("eval.jsonl", "w", encoding="utf-8") as out:
        for record in held_out:
            out.write(json.dumps(conversation(*record), ensure_ascii=False) + "\n")
    with open("eval_generation.jsonl", "w", encoding="utf-8") as out:
        for question, answer in held_out:
            out.write(json.dumps({"prompt": question, "references": [answer]}, ensure_ascii=False) + "\n")
    print(f"{len(train)} training and {len(held_out)} held-out conversations")


if __name__ == "__main__":
    main(sys.argv[1])
