#!/usr/bin/python3
"""Independent reference tokenizations for the C++ tokenizers (byte-level BPE and WordPiece).

Run:  /usr/bin/python3 scripts/reference/make_tokenizer_fixtures.py   (Debian python3-regex; no network)

Reads the real vocabularies in ../shared/data (gpt2-tokenizer, qwen3-tokenizer, bert-tiniest-random-hf) and
writes tests/fixtures/tokenizers/<name>.json = [{"text": ..., "ids": [...]}, ...]. Nothing from src/ is used:
  - GPT-2: OpenAI's original encoder algorithm (bytes_to_unicode, the GPT-2 regex via the `regex` module,
    merge the lowest-ranked pair until none applies), plus Hugging Face's handling of added tokens (a special
    token written literally in the text is that token);
  - Qwen3 (tokenizer.json): NFC (unicodedata), added tokens split out first, the file's Split regex
    (behaviour Isolated), then the same byte-level BPE with the file's merges;
  - BERT (vocab.txt + tokenizer.json settings): the original BERT BasicTokenizer (clean text, CJK padding,
    lowercase + NFD accent stripping, whitespace and punctuation splitting) and greedy longest-match WordPiece.
Self-checks: documented anchors (GPT-2 "Hello world" = [15496, 995]) and decode(encode(x)) == x for byte-level BPE.
Deterministic; rerunning reproduces identical bytes.
"""
import json
import os
import sys
import unicodedata

import regex

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.environ.get("SHARED_DATA", os.path.join(ROOT, "..", "shared", "data"))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizers")

TEXTS = [
    "Hello world",
    "Hello, world! How's it going? I'm fine; they'll see, we've won, you'd know, she's here.",
    "HOW'S IT GOING? I'M FINE, THEY'LL SEE",
    "  leading spaces, trailing spaces   ",
    "tabs\tand\nnewlines\r\nand CRLF\n\n\nthree newlines",
    "multiple     spaces   between      words",
    "Numbers: 0 7 42 123 1234 12345 3.14159 -17 1,000,000 2024-11-28",
    "Accents: café naïve résumé Ångström Zoë façade jalapeño",
    "Décomposé: cafe\u0301 (e + combining acute)",
    "Chinese: 我们今天去公园散步。 Japanese: 東京は晴れです。 Korean: 안녕하세요",
    "Emoji: 😀 👍🏽 🇫🇷 👨‍👩‍👧 ❤️",
    "Symbols: @#$%^&*()_+-=[]{}|\\:;\"'<>,./?~` © ® ™ € £ ¥ §",
    "Code: def f(x):\n    return x**2  # square\n",
    "URL https://example.com/path?q=1&r=2 and email a.b@example.org",
    "Mixed script: Привет мир, γειά σου κόσμε, שלום עולם, مرحبا بالعالم",
    "Zero\u200bwidth and non\u00a0breaking spaces",
    "Special tokens written literally: <|endoftext|> and <|im_start|>user\nhi<|im_end|>",
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
    "ALL CAPS SHOUTING and lowercase whispering",
    "   ",
    "a",
    "",
]


def write_json(path, cases):
    """A JSON list, one case per line."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=False, sort_keys=True) for c in cases) + "\n]\n")


# ----------------------------------------------------------------------------- byte-level BPE
def split_added(text, added):
    """[(piece, is_added)]: added tokens matched in the raw text first, leftmost, longest first."""
    out, start, i = [], 0, 0
    names = sorted(added, key=len, reverse=True)
    while i < len(text):
        hit = next((n for n in names if text.startswith(n, i)), None)
        if hit:
            if start < i:
                out.append((text[start:i], False))
            out.append((hit, True))
            i += len(hit)
            start = i
        else:
            i += 1
    if start < len(text):
        out.append((text[start:], False))
    return out


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {v: k for k, v in BYTE_ENCODER.items()}
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class ByteLevelBpe:
    def __init__(self, vocab, merges, pattern, added, nfc=False):
        self.vocab = vocab
        self.inverse = {v: k for k, v in vocab.items()}
        self.inverse.update({v: k for k, v in added.items()})
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        self.pattern = regex.compile(pattern)
        self.added = added  # content -> id, matched before anything else (longest first)
        self.nfc = nfc
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, _ = min(pairs)
            if rank == float("inf"):
                break
            first, second = self.merges[rank]
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self.cache[word] = parts
        return parts

    def pre_tokenize(self, text):
        """Split with behaviour Isolated: every match is a piece, and so is any text between matches."""
        pieces, last = [], 0
        for m in self.pattern.finditer(text):
            if m.start() > last:
                pieces.append(text[last:m.start()])
            pieces.append(m.group())
            last = m.end()
        if last < len(text):
            pieces.append(text[last:])
        return pieces

    def encode(self, text):
        ids = []
        for piece, is_added in split_added(text, self.added):
            if is_added:
                ids.append(self.added[piece])
                continue
            if self.nfc:
                piece = unicodedata.normalize("NFC", piece)
            for word in self.pre_tokenize(piece):
                mapped = "".join(BYTE_ENCODER[b] for b in word.encode("utf-8"))
                ids.extend(self.vocab[t] for t in self.bpe(mapped))
        return ids

    def decode(self, ids):
        text = "".join(self.inverse[i] for i in ids)
        raw = bytearray()
        for ch in text:
            if ch in BYTE_DECODER:
                raw.append(BYTE_DECODER[ch])
            else:
                raw.extend(ch.encode("utf-8"))  # an added token's text
        return raw.decode("utf-8", errors="replace")


def gpt2():
    d = os.path.join(SHARED, "gpt2-tokenizer")
    vocab = json.load(open(os.path.join(d, "encoder.json"), encoding="utf-8"))
    lines = open(os.path.join(d, "vocab.bpe"), encoding="utf-8").read().split("\n")
    merges = [tuple(line.split(" ")) for line in lines[1:] if line]
    return ByteLevelBpe(vocab, merges, GPT2_PATTERN, {"<|endoftext|>": vocab["<|endoftext|>"]})


def qwen3():
    t = json.load(open(os.path.join(SHARED, "qwen3-tokenizer", "tokenizer.json"), encoding="utf-8"))
    assert t["normalizer"]["type"] == "NFC"
    split = t["pre_tokenizer"]["pretokenizers"][0]
    assert split["type"] == "Split" and split["behavior"] == "Isolated"
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in t["model"]["merges"]]
    added = {a["content"]: a["id"] for a in t["added_tokens"]}
    return ByteLevelBpe(t["model"]["vocab"], merges, split["pattern"]["Regex"], added, nfc=True)


# ----------------------------------------------------------------------------- WordPiece (BERT)
def is_control(ch):
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def is_whitespace(ch):
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or
            0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or
            0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPiece:
    def __init__(self, vocab, lowercase=True, strip_accents=None, max_chars=100, unk="[UNK]", added=None):
        self.vocab = vocab
        self.lowercase = lowercase
        self.strip_accents = lowercase if strip_accents is None else strip_accents
        self.max_chars = max_chars
        self.unk = unk
        self.added = added or {}

    def normalize(self, text):
        text = "".join(" " if is_whitespace(c) else c for c in text
                       if not (ord(c) == 0 or ord(c) == 0xFFFD or is_control(c)))
        text = "".join(f" {c} " if is_cjk(ord(c)) else c for c in text)
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        if self.lowercase:
            text = text.lower()
        return text

    def words(self, text):
        out = []
        for chunk in text.split():
            current = ""
            for c in chunk:
                if is_punctuation(c):
                    if current:
                        out.append(current)
                    out.append(c)
                    current = ""
                else:
                    current += c
            if current:
                out.append(current)
        return out

    def word_ids(self, word):
        if len(word) > self.max_chars:
            return [self.vocab[self.unk]]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = ("##" if start > 0 else "") + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.vocab[self.unk]]
            ids.append(found)
            start = end
        return ids

    def encode(self, text):
        ids = []
        for piece, is_added in split_added(text, self.added):
            if is_added:
                ids.append(self.added[piece])
                continue
            for word in self.words(self.normalize(piece)):
                ids.extend(self.word_ids(word))
        return ids


def bert():
    d = os.path.join(SHARED, "bert-tiniest-random-hf")
    vocab = {}
    for i, line in enumerate(open(os.path.join(d, "vocab.txt"), encoding="utf-8").read().split("\n")):
        if line:
            vocab[line] = i
    t = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    n = t["normalizer"]
    added = {a["content"]: a["id"] for a in t["added_tokens"]}
    return WordPiece(vocab, n["lowercase"], n["strip_accents"], t["model"]["max_input_chars_per_word"],
                     t["model"]["unk_token"], added)


BERT_TEXTS = TEXTS + ["[CLS] literal [SEP] and [MASK] tokens", "unaffable supercalifragilisticexpialidocious " +
                      "x" * 120, "Hyphen-ated, apostrophe's and U.S.A. abbreviations"]


def check(label, ok, detail=""):
    print(f"  [{'ok' if ok else 'FAILED'}] {label}{': ' + detail if detail else ''}")
    return ok


def main():
    os.makedirs(OUT, exist_ok=True)
    ok = True
    for name, make, texts in (("gpt2", gpt2, TEXTS), ("qwen3", qwen3, TEXTS), ("bert", bert, BERT_TEXTS)):
        tokenizer = make()
        cases = [{"text": text, "ids": tokenizer.encode(text)} for text in texts]
        write_json(os.path.join(OUT, name + ".json"), cases)
        print(f"{name}: {len(cases)} cases, {sum(len(c['ids']) for c in cases)} tokens")
        if isinstance(tokenizer, ByteLevelBpe):
            bad = [c["text"] for c in cases if tokenizer.decode(c["ids"]) != (
                unicodedata.normalize("NFC", c["text"]) if tokenizer.nfc else c["text"])]
            ok &= check("decode(encode(text)) == text", not bad, ", ".join(map(repr, bad)))
    ok &= check("GPT-2 'Hello world' == [15496, 995]", gpt2().encode("Hello world") == [15496, 995])
    ok &= check("GPT-2 ' Hello' == [18435]", gpt2().encode(" Hello") == [18435])
    # HF's tokenizer summary: bert-base-uncased splits "I have a new GPU!" into i have a new gp ##u !
    pieces = ["i", "have", "a", "new", "gp", "##u", "!"]
    ok &= check("BERT 'I have a new GPU!' == " + " ".join(pieces),
                bert().encode("I have a new GPU!") == [bert().vocab[p] for p in pieces])
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
