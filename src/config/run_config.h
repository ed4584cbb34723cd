// The typed run configuration, parsed once from YAML plus `section.key=value` overrides.
// Defaults live here, in the member initialisers; nothing outside src/config parses YAML.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "peft/registry.h"

namespace peft {

struct ModelOptions {
  std::string path;               // HF model directory or TorchScript archive (.pt) (required)
  std::string dtype = "float32";  // compute dtype of the frozen base: float32 | bfloat16 | float16
  std::string device = "auto";    // auto | cpu | cuda | cuda:N
  std::string tokenizer;          // tokenizer file or directory; default: the model directory
  bool new_head = false;          // encoders: replace the checkpoint's classification head with a new one
  // TorchScript archives (models/loader.h): auto | custom | a family's model_type; and for a custom module, what
  // its forward returns: logits | loss.
  std::string arch = "auto";
  std::string output = "logits";
  // none | nf4 | int8: the frozen projections stored quantized (models/quantized_weight.h); double_quant: nf4's
  // block maxima in 8 bits too. Recorded in the resolved config only when given.
  std::string quantize = "none";
  bool double_quant = false;
};

struct DataOptions {
  std::string train;  // .jsonl ({"text"} or {"prompt","completion"}) or .txt (required); for
                      // classification a GLUE TSV, a TSV with a header, or JSONL (data/classification.h)
  std::string eval;   // held-out file, same formats (optional)
  // language_modeling: the formats above. classification: labelled texts; a causal LM learns the label's
  // verbaliser after the template's prompt and is evaluated by rank classification (data/verbalizer.h).
  std::string task = "language_modeling";
  std::vector<std::string> label_names;  // label order (default: the task's customary order)
  std::string template_text;             // key `template`; default "{text}\nAnswer:"
  std::vector<std::string> verbalizers;  // one per label; default " " + label name
  int64_t max_length = 512;              // tokens per example (truncation) and window length for .txt
  bool max_length_given = false;  // false: the trainer fits the default to the model's context (virtual tokens aside)
  bool shuffle = true;
  // Several examples per row up to max_length, each attending only to itself (data/packing.h): no padding.
  bool packing = false;
  int64_t max_eval_examples = 0;  // 0 = all
  // Conversations ({"messages"}, data/chat.h): the template ("" = the model's own; a built-in name or a file)
  // and where the loss goes: "assistant" turns only, or "all" tokens. Recorded only when given.
  std::string chat_template;
  std::string train_on = "assistant";
};

// The `peft` section: one method (a mapping with `method:`) or a composition (a list of such mappings,
// applied together in order).
struct PeftConfig {
  std::vector<MethodChoice> methods;
  bool is_list = false;  // given as a list (even of one method)

  // Every method's modules_to_save, in order, each name once.
  std::vector<std::string> modules_to_save() const;
};

struct TrainOptions {
  int64_t epochs = 1;
  int64_t max_steps = 0;  // > 0 overrides epochs
  int64_t batch_size = 8;
  int64_t gradient_accumulation_steps = 1;
  double learning_rate = 2e-4;
  // LoRA+ (Hayou et al. 2024): lora_B and one-dimensional tensors (DoRA's magnitudes, biases) learn at this many
  // times learning_rate, as PEFT's create_loraplus_optimizer groups them; 1 is plain training.
  double loraplus_lr_ratio = 1.0;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  std::string lr_scheduler = "linear";  // constant | linear | cosine
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;   // used when warmup_steps is 0
  double max_grad_norm = 1.0;  // 0 disables clipping
  int64_t seed = 42;
  int64_t eval_every = 0;       // optimiser steps between evaluations; 0 = only at the end
  int64_t eval_batch_size = 0;  // 0 = batch_size
  int64_t log_every = 10;
  int64_t threads = 0;  // intra-op threads; 0 = all available cores
  // Keep only each block's input and run the block again in backward (models/checkpointing.h): activation memory
  // of one block instead of all, for about one more forward pass of compute.
  bool gradient_checkpointing = false;
  // Checkpoints (train/checkpoint.h): every save_every optimiser steps (0 = only when interrupted), keeping the
  // newest keep_checkpoints of them (0 = all).
  int64_t save_every = 0;
  int64_t keep_checkpoints = 0;
  // A NaN/Inf loss or gradient: stop the run, or skip the step (at most max_nonfinite_in_a_row in a row).
  std::string on_nonfinite = "stop";
  int64_t max_nonfinite_in_a_row = 10;
};

struct OutputOptions {
  std::string dir;         // required
  bool overwrite = false;  // replace an adapter already in dir (otherwise that is an error)
};

struct RunConfig {
  ModelOptions model;
  DataOptions data;
  PeftConfig peft;
  TrainOptions train;
  OutputOptions output;

  std::string source;         // the config file path
  std::string resolved_yaml;  // every effective value (defaults included), as YAML

  // Throws peft::Error with a one-line message naming the file (and line) for: missing/unparsable file,
  // unknown section or key (with the closest valid key), wrong value types, invalid values, unknown method.
  // `overrides` are "section.key=value" strings; the value is parsed as YAML ("[q_proj, v_proj]" works). One
  // method of a `peft` list is addressed as peft[N].key=value.
  static RunConfig load(const std::string& path, const std::vector<std::string>& overrides = {});
};

// Resuming: the checkpoint's run_config.yaml (at `saved_path`) against this run's resolved YAML. Settings that
// change what a step computes (model, data, method, optimiser, schedule shape, batch, seed) must match; logging,
// evaluation, checkpointing, threads and the run's length may differ. Throws peft::Error naming the first mismatch.
void check_resumable_config(const std::string& saved_path, const std::string& resolved_yaml);

}  // namespace peft
