// The training recipe, top to bottom: set up (threads, seed, model, tokenizer, data, method, optimiser),
// train (AdamW over the adapter only, schedule, accumulation, clipping, periodic evaluation, progress and
// JSONL log), then save only the adapter (or, for full fine-tuning, the whole model).
#pragma once

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "data/classification.h"
#include "data/dataset.h"
#include "eval/classify.h"
#include "eval/flops.h"
#include "train/data_parallel.h"

namespace peft {

class CausalLM;
class Model;
class ScriptModel;
class SequenceClassifier;
class Tokenizer;
class Method;

struct ParameterCounts {
  int64_t trainable = 0;
  int64_t total = 0;
  double base_weight_bytes = 0;   // the frozen base's tensors as stored (quantized projections as their codes)
  std::string peft_line() const;  // PEFT's "trainable params: N || all params: M || trainable%: P"
};

struct TrainSummary {
  int64_t steps = 0;
  double final_train_loss = 0.0;
  double base_eval_loss = -1.0;  // negative when there is no eval set
  double final_eval_loss = -1.0;
  // The optimisation loop alone (no held-out evaluation): its time, the tokens it trained on, and its counted FLOPs.
  double train_seconds = 0.0;
  int64_t trained_tokens = 0;
  double training_flops = 0.0;
  // Classification tasks with an eval set: rank classification of the held-out set before and after training.
  std::optional<ClassificationReport> base_classification, final_classification;
  int64_t total_steps = 0;
  int64_t nonfinite_skipped = 0;  // steps dropped for a NaN/Inf loss or gradient (train.on_nonfinite: skip)
  // A SIGINT/SIGTERM stopped the run after a step (core/interrupt.h): the signal, and nothing is evaluated or saved
  // but the checkpoint.
  int interrupted = 0;
  std::string checkpoint;  // the newest checkpoint this run wrote, or empty
};

class Trainer {
 public:
  explicit Trainer(RunConfig config);
  ~Trainer();

  // Continue from a checkpoint ("latest" in output.dir, or a checkpoint directory) instead of starting afresh.
  // Call before setup(), which checks that the checkpoint fits this run.
  void resume_from(std::string checkpoint) { resume_request_ = std::move(checkpoint); }
  // Builds everything; throws peft::Error for any bad input before training starts.
  void setup();
  // Matched modules and the parameter count line (what --dry-run prints).
  void print_summary() const;
  // Trains to the end, or until interrupt_requested() after a step, when it writes a checkpoint and returns early.
  // Throws peft::Error for a non-finite step under train.on_nonfinite: stop, and for failed writes.
  TrainSummary train();
  // Writes the adapter, the resolved config; the log is written while training.
  void save() const;

  Model& model() { return *model_; }
  Method& method() { return *method_; }
  const std::vector<Example>& train_examples() const { return train_examples_; }
  const std::vector<Example>& eval_examples() const { return eval_examples_; }
  // Rank classification: every label's candidate of each held-out example (empty for other tasks).
  const std::vector<Example>& eval_candidates() const { return eval_candidates_; }
  int64_t pad_id() const;
  // The FLOP count of the model with the method attached (eval/flops.h).
  const FlopCount& flops() const { return flops_; }
  const ParameterCounts& counts() const { return counts_; }
  // Full fine-tuning: save() writes a whole model directory instead of an adapter.
  bool writes_model() const;
  // Data-parallel runs (train/data_parallel.h): only rank 0 logs, evaluates, checkpoints, saves and prints.
  const World& world() const { return world_; }

 private:
  double evaluate_held_out(int64_t step);
  double peak_memory_bytes() const;
  void load_classification_data(int64_t max_length);
  void pack_training_examples(int64_t max_length);
  void check_script_task() const;
  std::optional<ClassificationReport> classify_held_out(int64_t step);
  void log_json(const nlohmann::json& record);
  void open_log(const struct TrainingProgress* resumed);

  RunConfig config_;
  torch::Device device_{torch::kCPU};
  std::shared_ptr<Model> model_;
  SequenceClassifier* classifier_ = nullptr;  // model_ as an encoder classifier, or null
  ScriptModel* script_ = nullptr;             // model_ as a TorchScript module of unknown architecture, or null
  bool head_classifies_ = false;              // classification by a head's class logits (else rank classification)
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ChatFormat> chat_;  // null when neither the model nor data.chat_template gives a template
  std::unique_ptr<Method> method_;
  std::vector<Example> train_examples_, eval_examples_;
  std::unique_ptr<ClassificationSet> train_set_, eval_set_;  // classification tasks
  std::vector<Example> eval_candidates_;                     // rank-classification candidates of eval_set_ (causal LMs)
  ParameterCounts counts_;
  FlopCount flops_;
  std::vector<double> train_example_flops_;  // training FLOPs of each training example, counted once
  std::ofstream log_;
  std::string log_path_;
  std::string resume_request_, resume_dir_;    // as asked, and the checkpoint directory it names
  std::vector<int64_t> train_example_scored_;  // tokens that take loss in each training example (or 1: a class)
  World world_;
  std::unique_ptr<DataParallel> parallel_;  // null for one process
};

}  // namespace peft
