#include "compare/measure.h"

#include <torch/cuda.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "compare/weight_change.h"
#include "config/run_config.h"
#include "core/device.h"
#include "core/error.h"
#include "core/process_memory.h"
#include "data/batch.h"
#include "eval/evaluator.h"
#include "eval/flops.h"
#include "eval/in_context.h"
#include "io/tokenizer.h"
#include "models/loader.h"
#include "models/model.h"
#include "peft/method.h"
#include "train/loss.h"
#include "train/trainer.h"

namespace peft {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRepeats = 5;  // timed repeats; the median is reported

// A GPU runs kernels asynchronously: a clock read means something only once the device has finished.
void finish(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

double seconds_since(Clock::time_point start, const torch::Device& device) {
  finish(device);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0.0 : values[values.size() / 2];
}

Batch first_batch(const std::vector<Example>& examples, int64_t size, int64_t pad_id, const torch::Device& device) {
  std::vector<const Example*> members;
  for (size_t i = 0; i < examples.size() && static_cast<int64_t>(i) < size; ++i) members.push_back(&examples[i]);
  check(!members.empty(), "no examples to time");
  return collate(members, pad_id).to(device);
}

// Median seconds of one inference pass (eval mode, no gradients) over `batch`, after a warm-up pass.
double inference_seconds(Model& model, const Batch& batch) {
  torch::NoGradGuard no_grad;
  bool training = model.is_training();
  model.eval();
  auto device = batch.input_ids.device();
  training_loss(model, batch);
  std::vector<double> times;
  for (int i = 0; i < kRepeats; ++i) {
    finish(device);
    auto start = Clock::now();
    training_loss(model, batch);
    times.push_back(seconds_since(start, device));
  }
  model.train(training);
  return median(times);
}

int64_t eval_batch_size(const RunConfig& config) {
  return config.train.eval_batch_size > 0 ? config.train.eval_batch_size : config.train.batch_size;
}

int64_t file_bytes(const std::string& path) {
  std::error_code error;
  auto size = std::filesystem::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

std::shared_ptr<Model> load_base(const RunConfig& config, int64_t num_labels) {
  const auto& m = config.model;
  return load_base_model(m.path, {m.dtype, m.device, num_labels, num_labels > 0, m.arch, m.output});
}

// Training memory: the CUDA allocator's peak on a GPU, else the process's peak resident set.
struct PeakMemory {
  explicit PeakMemory(const torch::Device& device)
      : cuda_(device.is_cuda()), index_(device.index() < 0 ? 0 : device.index()) {
    if (cuda_) {
      torch::empty({1}, torch::TensorOptions().device(device));  // the allocator starts on first use
      reset_cuda_peak(index_);
    } else {
      reset_peak_rss();
    }
  }
  void record(nlohmann::json& row) const {
    double cuda = cuda_ ? cuda_peak_bytes(index_) : -1.0;
    row["peak_memory_bytes"] = cuda >= 0 ? cuda : peak_rss_bytes();
    row["memory_measure"] = cuda >= 0 ? "CUDA allocator peak" : "process peak RSS";
  }
  bool cuda_;
  int index_;
};

void describe_base(Model& base, nlohmann::json& row) {
  int64_t parameters = 0, bytes = 0;
  for (const auto& parameter : base.parameters()) {
    parameters += parameter.numel();
    bytes += parameter.numel() * static_cast<int64_t>(parameter.element_size());
  }
  row["base_parameters"] = parameters;
  row["weights_bytes"] = bytes;
}

double metric_value(const TrainSummary& summary, const std::string& metric) {
  if (summary.final_classification) {
    const auto& m = summary.final_classification->metrics;
    if (metric == "f1") return m.f1;
    if (metric == "macro_f1") return m.macro_f1;
    if (metric == "matthews") return m.matthews;
    return m.accuracy;
  }
  return metric == "perplexity" ? std::exp(summary.final_eval_loss) : summary.final_eval_loss;
}

}  // namespace

const std::vector<std::string>& comparison_metrics(const std::string& task) {
  static const std::vector<std::string> language_modeling = {"loss", "perplexity"};
  static const std::vector<std::string> classification = {"accuracy", "f1", "macro_f1", "matthews"};
  return task == "classification" ? classification : language_modeling;
}

bool lower_is_better(const std::string& metric) { return metric == "loss" || metric == "perplexity"; }

nlohmann::json measure_method(const RunConfig& config, const std::string& name, const std::string& metric) {
  PeakMemory peak(resolve_device(config.model.device));
  Trainer trainer(config);
  trainer.setup();
  auto& model = trainer.model();
  auto& method = trainer.method();
  bool full = method.writes_model();
  nlohmann::json row = {{"name", name}, {"kind", full ? "full" : "peft"}, {"method", method.name()}};
  row["trainable_parameters"] = trainer.counts().trainable;
  row["extra_positions"] = model.virtual_tokens() + model.prefix_positions();

  auto summary = trainer.train();
  peak.record(row);
  check(summary.final_eval_loss >= 0 || summary.final_classification, config.source + ": no held-out result");
  row["metric"] = metric_value(summary, metric);
  row["steps"] = summary.steps;
  row["step_seconds"] = summary.steps ? summary.train_seconds / static_cast<double>(summary.steps) : 0.0;
  row["tokens_per_second"] = summary.trained_tokens / std::max(summary.train_seconds, 1e-9);
  row["training_flops"] = summary.training_flops;

  // Backward against forward on one training batch: what the frozen base saves (or LST's short backward path).
  auto device = model.parameters().front().device();
  auto train_batch = first_batch(trainer.train_examples(), config.train.batch_size, trainer.pad_id(), device);
  std::vector<double> forward, backward;
  model.train();
  for (int i = 0; i <= kRepeats; ++i) {
    finish(device);
    auto start = Clock::now();
    auto loss = training_loss(model, train_batch);
    double forward_time = seconds_since(start, device);
    start = Clock::now();
    loss.backward();
    double backward_time = seconds_since(start, device);
    for (auto& parameter : method.trainable_parameters()) parameter.tensor.mutable_grad() = torch::Tensor();
    if (i == 0) continue;  // warm-up
    forward.push_back(forward_time);
    backward.push_back(backward_time);
  }
  row["forward_seconds"] = median(forward);
  row["backward_forward_ratio"] = median(backward) / std::max(median(forward), 1e-12);

  trainer.save();
  std::string dir = config.output.dir;
  row["adapter_bytes"] =
      full ? file_bytes(dir + "/model.safetensors") + file_bytes(dir + "/model.pt")
           : file_bytes(dir + "/adapter_model.safetensors") + file_bytes(dir + "/adapter_config.json");

  // Inference on the first held-out batch, per held-out token: unmerged, merged where the method merges, and the
  // base alone (loaded again, which also gives the parameters the method changed).
  const auto& eval = trainer.eval_examples();
  check(!eval.empty(), config.source + ": peft-compare needs held-out data (data.eval)");
  auto eval_batch = first_batch(eval, eval_batch_size(config), trainer.pad_id(), device);
  double tokens = static_cast<double>(eval_batch.tokens);
  row["latency_unmerged"] = inference_seconds(model, eval_batch) / tokens;
  // Rank classification scores every label's candidate per prediction.
  const auto& scored = trainer.eval_candidates().empty() ? eval : trainer.eval_candidates();
  double per_example = forward_flops(trainer.flops(), scored) / static_cast<double>(eval.size());
  row["inference_flops_unmerged"] = per_example;
  bool merges = full || method.mergeable();
  if (!full && merges) {
    method.merge(model);
    row["latency_merged"] = inference_seconds(model, eval_batch) / tokens;
  }
  torch::manual_seed(static_cast<uint64_t>(config.train.seed));  // a new classification head starts as the run's did
  auto base = load_base(config, model.config().num_labels);
  describe_base(*base, row);
  row["latency_base"] = inference_seconds(*base, eval_batch) / tokens;
  if (merges) {
    auto change = weight_change(*base, model);
    row["changed_parameters"] = change.changed;
    row["changed_matrices"] = change.ranks.size();
    row["delta_rank_median"] = change.rank_median();
    row["delta_rank_max"] = change.rank_max();
    per_example = forward_flops(count_flops(*base), scored) / static_cast<double>(eval.size());
  }
  row["inference_flops"] = per_example;  // as deployed: merged where the method merges
  row["eval_examples"] = eval.size();
  row["status"] = "ok";
  return row;
}

nlohmann::json measure_in_context(const RunConfig& config, int64_t shots, const std::string& name,
                                  const std::string& metric) {
  PeakMemory peak(resolve_device(config.model.device));
  check(config.data.task == "language_modeling",
        config.source +
            ": in-context rows are measured for language modelling tasks; for classification use "
            "peft-eval --task classification --icl-shots K --icl-from TRAIN_FILE");
  check(!config.data.eval.empty(), config.source + ": peft-compare needs held-out data (data.eval)");
  configure_threads(config.train.threads);
  nlohmann::json row = {{"name", name}, {"kind", "icl"}, {"method", "icl"}, {"shots", shots}};
  row["trainable_parameters"] = 0;
  row["training_flops"] = 0.0;
  auto model = load_base(config, 0);
  const auto& c = model->config();
  auto tokenizer =
      load_tokenizer(tokenizer_location(config.model.path, config.model.tokenizer), c.bos_token_id, c.eos_token_id);
  int64_t length = std::min(config.data.max_length, model->max_sequence_length());
  auto eval = load_examples(config.data.eval, *tokenizer, length);
  if (config.data.max_eval_examples > 0 && static_cast<int64_t>(eval.size()) > config.data.max_eval_examples) {
    eval.resize(static_cast<size_t>(config.data.max_eval_examples));
  }
  auto train = load_examples(config.data.train, *tokenizer, length);
  std::vector<Example> prompted;
  try {  // a setting the data or the context cannot hold is skipped, saying why
    auto drawn = draw_demonstrations(train.size(), shots, static_cast<uint64_t>(config.train.seed), config.data.train);
    auto demonstrations = demonstration_tokens(train, drawn, *tokenizer);
    row["demonstration_tokens"] = demonstrations.size();
    prompted = with_demonstrations(eval, demonstrations, tokenizer->bos_id(), model->max_sequence_length(),
                                   std::to_string(shots) + " shots");
  } catch (const Error& e) {
    row["status"] = "skipped";
    row["error"] = e.what();
    return row;
  }
  auto device = model->parameters().front().device();
  auto result = evaluate(*model, prompted, eval_batch_size(config), tokenizer->pad_id(), device);
  row["metric"] = metric == "perplexity" ? result.perplexity : result.loss;
  peak.record(row);
  describe_base(*model, row);
  // Per held-out token: the demonstrations are the price of each prediction, not tokens predicted.
  double held_out_tokens = first_batch(eval, eval_batch_size(config), tokenizer->pad_id(), device).tokens;
  auto batch = first_batch(prompted, eval_batch_size(config), tokenizer->pad_id(), device);
  row["latency_unmerged"] = inference_seconds(*model, batch) / held_out_tokens;
  row["inference_flops"] = forward_flops(count_flops(*model), prompted) / static_cast<double>(prompted.size());
  row["eval_examples"] = prompted.size();
  row["status"] = "ok";
  return row;
}

}  // namespace peft
