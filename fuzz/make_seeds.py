#!/usr/bin/env python3
"""Regenerates the seed corpora in fuzz/corpus/ and the dictionaries in fuzz/dict/ (standard library only).

Valid files come from the repository (tests/fixtures, third_party, configs); the rest are hand-made edge cases.
Each seed stays under a few KB. Run from anywhere: python3 fuzz/make_seeds.py
"""
import json
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
DICT = ROOT / "fuzz" / "dict"


def put(target, name, data):
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    assert path.stat().st_size <= 4096, path


def copy(target, name, source, limit=4096):
    put(target, name, (ROOT / source).read_bytes()[:limit])


def safetensors(header, data=b"", pad=True):
    if isinstance(header, bytes):
        raw = header
    else:
        raw = (header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))).encode()
    if pad:
        raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def tensor(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def safetensors_seeds():
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    put("fuzz_safetensors", "f32_2x2", safetensors({"w": tensor("F32", [2, 2], 0, 16)}, f32))
    put("fuzz_safetensors", "mixed_with_metadata",
        safetensors({"__metadata__": {"format": "pt"}, "a": tensor("BF16", [3], 0, 6), "b": tensor("I64", [1], 6, 14),
                     "c": tensor("BOOL", [2], 14, 16)}, struct.pack("<3H", 0x3f80, 0xc000, 0) +
                    struct.pack("<q", -7) + b"\x01\x00"))
    put("fuzz_safetensors", "every_dtype", safetensors(
        {"f64": tensor("F64", [1], 0, 8), "f16": tensor("F16", [2], 8, 12), "i32": tensor("I32", [1], 12, 16),
         "i16": tensor("I16", [1], 16, 18), "i8": tensor("I8", [1], 18, 19), "u8": tensor("U8", [1], 19, 20)},
        bytes(range(20))))
    put("fuzz_safetensors", "empty_header", safetensors("{}"))
    put("fuzz_safetensors", "scalar_and_empty", safetensors(
        {"s": tensor("F32", [], 0, 4), "e": tensor("F32", [0, 5], 4, 4)}, struct.pack("<f", 9.0)))
    put("fuzz_safetensors", "unpadded_misaligned", safetensors({"x": tensor("F32", [1], 0, 4)}, f32[:4], pad=False))
    # Hand-made corruptions: each must be refused with a peft::Error.
    put("fuzz_safetensors", "header_length_terabytes", struct.pack("<Q", 1 << 42) + b"{}")
    put("fuzz_safetensors", "header_longer_than_file", struct.pack("<Q", 64) + b"{}      ")
    put("fuzz_safetensors", "negative_dim", safetensors({"w": tensor("F32", [-1, 4], 0, 16)}, f32))
    put("fuzz_safetensors", "shape_overflow", safetensors(
        {"w": tensor("F32", [4294967296, 4294967296, 4294967296], 0, 16)}, f32))
    put("fuzz_safetensors", "zero_dim_huge_rest", safetensors(
        {"w": tensor("F32", [0, 9223372036854775807, 9223372036854775807], 0, 0)}))
    put("fuzz_safetensors", "offsets_past_end", safetensors({"w": tensor("F32", [4], 0, 1 << 40)}, f32))
    put("fuzz_safetensors", "deep_nesting", safetensors('{"w":' + "[" * 1500 + "]" * 1500 + "}"))
    put("fuzz_safetensors", "duplicate_key", safetensors(
        '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
        f32[:4]))
    put("fuzz_safetensors", "invalid_utf8_name", safetensors(b'{"\xff\xfe":{}}'))
    put("fuzz_safetensors", "nul_in_header", struct.pack("<Q", 8) + b'{"a\x00":1}')
    put("fuzz_safetensors", "real_prompt_adapter", (ROOT / "tests/fixtures/gpt2/gpt2_tiny_prompt/adapter_model.safetensors")
        .read_bytes())


ADAPTER_FIXTURES = {
    "lora": "tests/fixtures/llama/llama_plain_lora/adapter_config.json",
    "rslora": "tests/fixtures/llama/llama_plain_rslora/adapter_config.json",
    "ia3_gpt2": "tests/fixtures/gpt2/gpt2_tiny_ia3/adapter_config.json",
    "prefix": "tests/fixtures/llama/llama_gqa_tied_prefix/adapter_config.json",
    "prompt": "tests/fixtures/gpt2/gpt2_tiny_prompt/adapter_config.json",
    "lst": "tests/fixtures/llama/mistral_head_dim_lst/adapter_config.json",
}


def adapter_seeds():
    for name, source in ADAPTER_FIXTURES.items():
        copy("fuzz_adapter_config", name, source)
    bitfit = {"peft_type": "BITFIT", "biases": "subset", "target_modules": ["q_proj", "up_proj"],
              "added_biases": ["model.layers.0.self_attn.q_proj.bias"], "task_type": "CAUSAL_LM"}
    adapter = {"peft_type": "BOTTLENECK_ADAPTER", "placement": "parallel", "sites": "ffn", "activation": "relu",
               "init": "lora", "r": 64, "scaling": 4.0, "train_norms": False, "task_type": "CAUSAL_LM"}
    prefix = json.loads((ROOT / ADAPTER_FIXTURES["prefix"]).read_text())
    put("fuzz_adapter_config", "bitfit", json.dumps(bitfit, indent=2))
    put("fuzz_adapter_config", "bottleneck_adapter", json.dumps(adapter, indent=2))
    put("fuzz_adapter_config", "composition_mam",
        json.dumps({"peft_type": "COMPOSITION", "methods": [prefix, adapter], "task_type": "CAUSAL_LM"}, indent=2))
    put("fuzz_adapter_config", "seq_cls_modules_to_save", json.dumps(
        {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["query", "value"], "task_type": "SEQ_CLS",
         "modules_to_save": ["classifier"]}, indent=2))
    # Hand-made edge cases.
    put("fuzz_adapter_config", "wrong_types", '{"peft_type":"LORA","r":"8","use_dora":"yes","lora_alpha":[1]}')
    put("fuzz_adapter_config", "huge_numbers",
        '{"peft_type":"PREFIX_TUNING","num_virtual_tokens":1,"num_layers":9223372036854775807,'
        '"token_dim":9223372036854775807}')
    put("fuzz_adapter_config", "deep_nesting", '{"peft_type":"LORA","r":1,"target_modules":' + "[" * 1500 +
        "]" * 1500 + "}")
    put("fuzz_adapter_config", "invalid_utf8", b'{"peft_type":"LO\xc3\x28RA","r":1}')
    put("fuzz_adapter_config", "nul_byte", b'{"peft_type":"LORA\x00","r":1}')
    put("fuzz_adapter_config", "nested_composition",
        '{"peft_type":"COMPOSITION","methods":[{"peft_type":"COMPOSITION","methods":[]}]}')


def run_config_seeds():
    for name in ["quickstart", "mam", "lora_bitfit", "adapter_houlsby", "ia3", "lst", "prompt_tuning", "prefix_tuning",
                 "bitfit", "full", "sst2_rank", "spot_prompt", "torchscript_gru_lora"]:
        copy("fuzz_run_config", name, f"configs/{name}.yaml")
    quickstart = (ROOT / "configs/quickstart.yaml").read_text()
    put("fuzz_run_config", "with_overrides", quickstart + "\n#overrides\ntrain.max_steps=5\n"
        "peft.target_modules=[q_proj, v_proj]\ndata.max_length=\n")
    put("fuzz_run_config", "composition_overrides", (ROOT / "configs/mam.yaml").read_text() +
        "\n#overrides\npeft[1].r=16\npeft[0].num_virtual_tokens=4\n")
    put("fuzz_run_config", "deep_nesting", "model:\n  path: " + "[" * 1500 + "]" * 1500 + "\n")
    put("fuzz_run_config", "deep_block_nesting", "".join("  " * i + f"k{i}:\n" for i in range(60)))
    put("fuzz_run_config", "anchors_aliases",
        "model: &m {path: x, dtype: float32}\ndata: {train: a.jsonl}\npeft: {method: lora, target_modules: &t [a, b]}\n"
        "train: *m\noutput: {dir: *t}\n")
    put("fuzz_run_config", "invalid_utf8_nul", b"model:\n  path: \xff\xfe\x00x\ndata:\n  train: \xc3\x28\n")
    put("fuzz_run_config", "tabs_and_bad_types", "model:\n\tpath: x\ntrain:\n  max_steps: 1e99999\n  seed: -0\n")


def data_seeds():
    put("fuzz_data_readers", "text.jsonl", '{"text": "Once upon a time there was a cat."}\n{"text": ""}\n')
    put("fuzz_data_readers", "prompt_completion.jsonl",
        '{"prompt": "Q: 2+2?\\nA:", "completion": " 4"}\n\n{"prompt": "Hi", "references": ["Hello", "Hey"]}\n')
    put("fuzz_data_readers", "array.json", '[{"text": "a"}, {"prompt": "b", "completion": "c"}]')
    put("fuzz_data_readers", "classification.jsonl",
        '{"text": "great film", "label": 1}\n{"premise": "p", "hypothesis": "h", "label": "entailment"}\n'
        '{"question": "q?", "passage": "x", "label": true}\n')
    copy("fuzz_data_readers", "e2e.csv", "third_party/e2e_nlg_sample/dev.csv", limit=1200)
    # Cut at a record boundary so the seed is a valid file.
    e2e = (CORPUS / "fuzz_data_readers" / "e2e.csv").read_bytes()
    put("fuzz_data_readers", "e2e.csv", e2e[: e2e.rfind(b"\n") + 1])
    put("fuzz_data_readers", "shakespeare.txt", (ROOT / "third_party/tinyshakespeare/train.txt").read_bytes()[:600])
    put("fuzz_data_readers", "sst2.tsv", "sentence\tlabel\nit 's a charming journey . \t1\nbleak \t0\n")
    put("fuzz_data_readers", "sst2_label_first_crlf.tsv", "\ufefflabel\tsentence\r\n1\tgood\r\n0\tbad\r\n")
    put("fuzz_data_readers", "cola.tsv", "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe doll wriggled.\n")
    put("fuzz_data_readers", "mrpc.tsv", "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe said.\t\"It was.\n")
    put("fuzz_data_readers", "rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\tA dog.\tAn animal.\tentailment\n")
    put("fuzz_data_readers", "invalid_utf8_nul.jsonl", b'{"text": "ab\xff\xfe"}\n{"text": "a\\u0000b"}\n\x00\n')
    put("fuzz_data_readers", "deep_nesting.jsonl", '{"text": "x", "meta": ' + "[" * 1500 + "]" * 1500 + "}\n")
    put("fuzz_data_readers", "unterminated.csv", 'mr,ref\n"name[x],"never closed\n')


# Dictionary entries as raw text; written in libFuzzer's quoted form.
JSON_LITERALS = ['true', 'false', 'null', '-1', '0', '9223372036854775807', '18446744073709551616', '1e308', '[]',
                 '{}', '"\\u0000"', '"\\ud800"']
DICTIONARIES = {
    "fuzz_safetensors.dict": ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"format"', '"pt"', '"F64"',
                              '"F32"', '"F16"', '"BF16"', '"I64"', '"I32"', '"I16"', '"I8"', '"U8"', '"BOOL"',
                              '"F8_E4M3"', "\x00" * 7] + JSON_LITERALS,
    "fuzz_adapter_config.dict": ['"peft_type"', '"LORA"', '"IA3"', '"BITFIT"', '"BOTTLENECK_ADAPTER"',
                                 '"PROMPT_TUNING"', '"PREFIX_TUNING"', '"LST"', '"COMPOSITION"', '"methods"',
                                 '"task_type"', '"SEQ_CLS"', '"CAUSAL_LM"', '"modules_to_save"', '"target_modules"',
                                 '"exclude_modules"', '"r"', '"lora_alpha"', '"lora_dropout"', '"use_rslora"',
                                 '"use_dora"', '"bias"', '"layers_to_transform"', '"rank_pattern"', '"alpha_pattern"',
                                 '"feedforward_modules"', '"init_ia3_weights"', '"biases"', '"subset"',
                                 '"added_biases"', '"placement"', '"sites"', '"activation"', '"init"', '"scaling"',
                                 '"train_norms"', '"num_virtual_tokens"', '"token_dim"', '"num_layers"',
                                 '"prefix_projection"', '"inference_mode"', '"num_transformer_submodules"',
                                 '"reduction_factor"', '"layers"', '"gate_temperature"', '"all-linear"'] +
                                JSON_LITERALS,
    "fuzz_run_config.dict": ["model:", "data:", "peft:", "train:", "output:", "path:", "dtype:", "device:",
                             "tokenizer:", "eval:", "max_length:", "task:", "classification", "label_names:",
                             "template:", "verbalizers:", "method:", "lora", "ia3", "bitfit", "adapter",
                             "prompt_tuning", "prefix_tuning", "lst", "full", "target_modules:", "r:", "epochs:",
                             "max_steps:", "learning_rate:", "dir:", "\n#overrides\n", "peft[0].", "&a ", "*a",
                             "!!str ", "---", "- ", "? ", "|\n", "{", "[", "<<: "],
    "fuzz_data_readers.dict": ['"text"', '"prompt"', '"completion"', '"references"', '"label"', '"text_a"',
                               '"text_b"', '"premise"', '"hypothesis"', '"question"', '"passage"', '"sentence1"',
                               '"sentence2"', "sentence\tlabel\n", "mr,ref\n", '""', "\r\n", "\ufeff", b"\xff",
                               "\t"] + JSON_LITERALS,
}


def dictionary_entry(text):
    out = ""
    for byte in text if isinstance(text, bytes) else text.encode():
        char = chr(byte)
        out += char if 32 <= byte < 127 and char not in '"\\' else "\\x%02x" % byte
    return '"' + out + '"'


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    safetensors_seeds()
    adapter_seeds()
    run_config_seeds()
    data_seeds()
    shutil.rmtree(DICT, ignore_errors=True)
    DICT.mkdir(parents=True)
    for name, entries in DICTIONARIES.items():
        (DICT / name).write_text("".join(dictionary_entry(entry) + "\n" for entry in entries))


if __name__ == "__main__":
    main()
