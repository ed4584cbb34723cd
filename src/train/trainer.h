// The training recipe, top to bottom: set up (threads, seed, model, tokenizer, data, method, optimiser),
// train (AdamW over the adapter only, schedule, accumulation, clipping, periodic evaluation, progress and
// JSONL log), then save only the adapter (or, for full fine-tuning, the whole model).
#pragma once

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "config/run_config.h"
#include "data/dataset.h"

namespace peft {

class CausalLM;
class Tokenizer;
class Method;

struct ParameterCounts {
  int64_t trainable = 0;
  int64_t total = 0;
  std::string peft_line() const;  // PEFT's "trainable params: N || all params: M || trainable%: P"
};

struct TrainSummary {
  int64_t steps = 0;
  double final_train_loss = 0.0;
  double base_eval_loss = -1.0;  // negative when there is no eval set
  double final_eval_loss = -1.0;
};

class Trainer {
 public:
  explicit Trainer(RunConfig config);
  ~Trainer();

  // Builds everything; throws peft::Error for any bad input before training starts.
  void setup();
  // Matched modules and the parameter count line (what --dry-run prints).
  void print_summary() const;
  TrainSummary train();
  // Writes the adapter, the resolved config; the log is written while training.
  void save() const;

  CausalLM& model() { return *model_; }
  const ParameterCounts& counts() const { return counts_; }
  // Full fine-tuning: save() writes a whole model directory instead of an adapter.
  bool writes_model() const;

 private:
  double evaluate_held_out(int64_t step);
  void log_json(const nlohmann::json& record);

  RunConfig config_;
  torch::Device device_{torch::kCPU};
  std::shared_ptr<CausalLM> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Method> method_;
  std::vector<Example> train_examples_, eval_examples_;
  ParameterCounts counts_;
  std::ofstream log_;
};

}  // namespace peft
