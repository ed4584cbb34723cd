#!/usr/bin/env python3
"""Reference assistant spans of rendered conversations, for data/chat.{h,cpp} (the loss mask of chat training).

Run:  python3 scripts/reference/make_chat_mask_fixtures.py   (after make_chat_fixtures.py, whose Jinja environment
      and conversations it reuses; jinja2 3.1.x)

Writes tests/fixtures/chat_templates/assistant_spans.jsonl: for every template (the real Llama 3, Gemma and Qwen3
templates of this folder, and the tool's built-in `simple` and `chatml`, whose text is repeated below) and every
conversation with an assistant turn that the template accepts: the rendered conversation, the template's
end-of-turn marker and the [begin, end) byte spans of the assistant turns that take the loss.

The rule, as README "Conversations and chat templates" states it, implemented here from that text:
  * end of turn: render [user "Hello", assistant "Hi"] and [user, assistant, user "Again"]; the text after the reply
    that both share (cut back to a whitespace or '>' when they part inside a token), stripped of whitespace, is
    the marker (EOS text when empty);
  * a template with {% generation %} blocks: the blocks are the spans;
  * otherwise, for assistant message i: if the whole rendering starts with messages[:i] rendered with the
    generation prompt, the span starts where that prompt ends; else it starts where the message's stripped content
    is first found after both the previous span's end and the text that messages[:i] rendered alone shares with
    the whole; the span ends after the first end-of-turn marker at or
    after its start.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_chat_fixtures as fixtures  # noqa: E402

# The built-in templates of src/data/chat.cpp, the same text.
SIMPLE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] | trim }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] | trim }}\n"
    "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'] | trim }}{{ eos_token }}\n"
    "{% else %}{{ raise_exception('the simple template knows the roles system, user and assistant, not ' + "
    "message['role']) }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def template_sources():
    sources = {}
    for name in ("llama3", "gemma", "qwen3", "generation"):
        with open(os.path.join(fixtures.OUT, name + ".jinja"), encoding="utf-8") as f:
            sources[name] = (f.read(), fixtures.TEMPLATES[name])
    sources["simple"] = (SIMPLE, {"bos_token": "<s>", "eos_token": "</s>"})
    sources["chatml"] = (CHATML, {"eos_token": "<|im_end|>"})
    return sources


class Rejected(Exception):
    pass


def render(env, source, tokens, messages, add_generation_prompt):
    # As transformers' apply_chat_template: tools and documents None, the special tokens the tokenizer has.
    context = dict(tokens, messages=messages, tools=None, documents=None, add_generation_prompt=add_generation_prompt)
    result = fixtures.render(env, source, context)
    if "text" not in result:
        raise Rejected(json.dumps(result))
    return result


def end_of_turn(env, source, tokens):
    user = {"role": "user", "content": "Hello"}
    assistant = {"role": "assistant", "content": "Hi"}
    turn = render(env, source, tokens, [user, assistant], False)["text"]
    try:
        longer = render(env, source, tokens, [user, assistant, {"role": "user", "content": "Again"}], False)["text"]
    except Rejected:
        longer = turn
    after = turn[turn.rindex("Hi") + 2:]
    following = longer[longer.index("Hi") + 2:]
    shared = 0
    while shared < len(after) and shared < len(following) and after[shared] == following[shared]:
        shared += 1
    if shared < len(after):  # parted inside a token: back to a whitespace or '>' boundary
        while shared > 0 and not after[shared - 1].isspace() and after[shared - 1] != ">":
            shared -= 1
    after = after[:shared].strip(" \t\r\n")
    return after if after else tokens.get("eos_token", "")


def assistant_spans(env, source, tokens, messages, marker):
    """Character spans of the assistant turns in the whole rendering."""
    whole = render(env, source, tokens, messages, False)
    text = whole["text"]
    if "{% generation %}" in source or "{%- generation %}" in source:
        return text, None  # the blocks themselves (generation_spans, already in bytes)
    spans, cursor = [], 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(env, source, tokens, messages[:i], True)["text"]
        if len(prompt) >= cursor and text.startswith(prompt):
            begin = len(prompt)
        else:
            before = render(env, source, tokens, messages[:i], False)["text"]
            start = 0
            while start < len(before) and start < len(text) and before[start] == text[start]:
                start += 1
            content = (message.get("content") or "").strip(" \t\r\n")
            assert content, "empty content in a rewritten turn"
            begin = text.find(content, max(cursor, start))
            assert begin >= 0, "content not found"
        end = text.find(marker, begin)
        assert end >= 0, "no end-of-turn marker"
        end += len(marker)
        spans.append((begin, end))
        cursor = end
    return text, spans


def main():
    env = fixtures.environment()
    rows = []
    for name, (source, tokens) in template_sources().items():
        marker = end_of_turn(env, source, tokens)
        for conversation, messages in fixtures.CONVERSATIONS:
            if not any(m["role"] == "assistant" for m in messages):
                continue
            try:
                text, spans = assistant_spans(env, source, tokens, messages, marker)
            except Rejected:
                continue  # the template refuses this conversation (e.g. Gemma: roles must alternate)
            to_bytes = lambda i: len(text[:i].encode("utf-8"))
            if spans is None:
                byte_spans = render(env, source, tokens, messages, False)["generation_spans"]
            else:
                byte_spans = [[to_bytes(b), to_bytes(e)] for b, e in spans]
            rows.append({"template": name, "conversation": conversation, "special_tokens": tokens,
                         "end_of_turn": marker, "text": text, "assistant_spans": byte_spans})
    path = os.path.join(fixtures.OUT, "assistant_spans.jsonl")
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} conversations -> {path}")


if __name__ == "__main__":
    main()
