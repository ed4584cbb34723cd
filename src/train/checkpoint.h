// Training checkpoints: everything needed to continue a run exactly where it stopped.
//
// output.dir/checkpoint-<step>/ holds
//   adapter_model.safetensors, adapter_config.json   the adapter so far (peft-eval reads it; not for full fine-tuning)
//   trainable.safetensors                            the trainable parameters as the optimiser holds them (float32
//                                                    masters of 16-bit tensors: train/master_weights.h), bit for
//                                                    bit, by model path
//   optimizer.safetensors                            AdamW's step count and moments per parameter
//   rng_state.safetensors                            LibTorch's generator states (CPU, and each CUDA device)
//   trainer_state.json                               loop position, data-loader order, counters (TrainingProgress)
//   run_config.yaml                                  the run's resolved configuration
//   COMPLETE                                         written last: a directory without it is never resumed
// Each file is written atomically into checkpoint-<step>.partial-<pid>/, which is renamed into place only once
// complete, so a crash or a full disk at any moment leaves every earlier checkpoint as it was.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "eval/classify.h"

namespace peft {

class Method;
struct TrainableParameter;

// The training loop's position and running totals, as trainer_state.json stores them.
struct TrainingProgress {
  int64_t step = 0;  // optimiser steps done
  int64_t total_steps = 0;
  int64_t epoch = 0;  // the epoch and batch index the next step starts from
  int64_t next_batch = 0;
  std::vector<size_t> epoch_order;  // the data loader's example order for `epoch`
  int64_t examples = 0;             // training examples, and a fingerprint of their tokens: resuming on other
  std::string data_fingerprint;     // data is refused
  int64_t tokens = 0;
  double training_flops = 0.0;
  double train_seconds = 0.0;
  double final_train_loss = 0.0;
  double base_eval_loss = -1.0;
  std::optional<ClassificationReport> base_classification;
  int64_t nonfinite_skipped = 0;  // steps dropped for a NaN/Inf loss or gradient (train.on_nonfinite: skip)
  int64_t nonfinite_in_a_row = 0;
  int64_t log_bytes = 0;  // length of train_log.jsonl at the checkpoint
  // A float16 base's dynamic loss scale (train/loss_scaler.h) and its good steps since the last change.
  double loss_scale = 1.0;
  int64_t loss_scale_good_steps = 0;
};

// What a checkpoint holds besides the progress.
struct CheckpointSources {
  const Method& method;                              // the adapter's files
  const std::vector<TrainableParameter>& trainable;  // what the optimiser updates, as named by the method
  const torch::optim::Optimizer& optimizer;
  const std::string& base_model_path;
  const std::string& resolved_yaml;
};

std::string checkpoint_directory(const std::string& output_dir, int64_t step);
// Complete checkpoints of output_dir, oldest first, as (step, directory).
std::vector<std::pair<int64_t, std::string>> complete_checkpoints(const std::string& output_dir);
// Checkpoint-like entries that are not complete (a crash mid-write, a partial directory).
std::vector<std::string> incomplete_checkpoints(const std::string& output_dir);

// "latest" (the newest complete checkpoint of output_dir) or a checkpoint directory; throws peft::Error with the
// reason when there is none or it is incomplete.
std::string resolve_checkpoint(const std::string& request, const std::string& output_dir);

// Writes checkpoint-<step> (replacing one of that step), refusing non-finite parameters.
void write_checkpoint(const std::string& output_dir, const CheckpointSources& sources,
                      const TrainingProgress& progress);
// Restores the trainable parameters (the optimiser's: masters are then rounded into the model by the caller), the
// optimiser state and the generators; returns the progress. Throws peft::Error naming the file when the
// checkpoint does not fit the method.
TrainingProgress read_checkpoint(const std::string& directory, const std::vector<TrainableParameter>& trainable,
                                 torch::optim::Optimizer& optimizer);

// Keeps the newest `keep` complete checkpoints (all when keep is 0) and removes leftovers of interrupted writes.
void prune_checkpoints(const std::string& output_dir, int64_t keep);
// Removes every checkpoint of output_dir (a fresh run replacing an earlier one).
void remove_checkpoints(const std::string& output_dir);

// Throws peft::Error naming the first trainable parameter holding NaN or Inf: such an adapter is never saved.
void check_finite_parameters(const Method& method, const std::string& what);

// A stable fingerprint of training examples (FNV-1a over their tokens, labels and classes), in hex.
std::string fingerprint_examples(const std::vector<Example>& examples);

}  // namespace peft
