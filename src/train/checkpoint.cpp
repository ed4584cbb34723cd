#include "train/checkpoint.h"

#include <fcntl.h>  // AT_FDCWD
#include <unistd.h>

#include <cmath>
#include <cstdio>  // renameat2, RENAME_EXCHANGE
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/core/Generator.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "peft/adapter_io.h"
#include "peft/method.h"

namespace peft {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCompleteMarker = "COMPLETE";
const std::regex kCheckpointName("checkpoint-([0-9]+)");
const std::regex kLeftoverName("checkpoint-[0-9]+\\.(partial|old)-[0-9]+");

bool is_complete(const fs::path& directory) { return fs::is_regular_file(directory / kCompleteMarker); }

// The optimiser keys its per-parameter state by the parameter's TensorImpl address, as LibTorch's AdamW does.
std::string optimizer_key(const torch::Tensor& parameter) {
  return c10::guts::to_string(parameter.unsafeGetTensorImpl());
}

std::vector<at::Generator> generators() {
  std::vector<at::Generator> out{at::detail::getDefaultCPUGenerator()};
  if (torch::cuda::is_available()) {
    for (int64_t i = 0; i < static_cast<int64_t>(torch::cuda::device_count()); ++i) {
      out.push_back(at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i))));
    }
  }
  return out;
}

std::string generator_key(size_t index) { return index == 0 ? "cpu" : "cuda." + std::to_string(index - 1); }

nlohmann::json report_json(const ClassificationReport& report) {
  const auto& m = report.metrics;
  return {{"predictions", report.predictions},
          {"examples", m.examples},
          {"accuracy", m.accuracy},
          {"f1", m.f1},
          {"macro_f1", m.macro_f1},
          {"matthews", m.matthews},
          {"majority_label", report.majority_label},
          {"majority_accuracy", report.majority_accuracy}};
}

ClassificationReport report_from_json(const nlohmann::json& json) {
  ClassificationReport report;
  report.predictions = json.at("predictions").get<std::vector<int64_t>>();
  report.metrics.examples = json.at("examples").get<int64_t>();
  report.metrics.accuracy = json.at("accuracy").get<double>();
  report.metrics.f1 = json.at("f1").get<double>();
  report.metrics.macro_f1 = json.at("macro_f1").get<double>();
  report.metrics.matthews = json.at("matthews").get<double>();
  report.majority_label = json.at("majority_label").get<std::string>();
  report.majority_accuracy = json.at("majority_accuracy").get<double>();
  return report;
}

nlohmann::json progress_json(const TrainingProgress& p) {
  nlohmann::json json = {{"step", p.step},
                         {"total_steps", p.total_steps},
                         {"epoch", p.epoch},
                         {"next_batch", p.next_batch},
                         {"epoch_order", p.epoch_order},
                         {"examples", p.examples},
                         {"data_fingerprint", p.data_fingerprint},
                         {"tokens", p.tokens},
                         {"training_flops", p.training_flops},
                         {"train_seconds", p.train_seconds},
                         {"final_train_loss", p.final_train_loss},
                         {"base_eval_loss", p.base_eval_loss},
                         {"base_classification", nullptr},
                         {"nonfinite_skipped", p.nonfinite_skipped},
                         {"nonfinite_in_a_row", p.nonfinite_in_a_row},
                         {"log_bytes", p.log_bytes},
                         {"loss_scale", p.loss_scale},
                         {"loss_scale_good_steps", p.loss_scale_good_steps}};
  if (p.base_classification) json["base_classification"] = report_json(*p.base_classification);
  return json;
}

TrainingProgress progress_from_json(const nlohmann::json& json) {
  TrainingProgress p;
  p.step = json.at("step").get<int64_t>();
  p.total_steps = json.at("total_steps").get<int64_t>();
  p.epoch = json.at("epoch").get<int64_t>();
  p.next_batch = json.at("next_batch").get<int64_t>();
  p.epoch_order = json.at("epoch_order").get<std::vector<size_t>>();
  p.examples = json.at("examples").get<int64_t>();
  p.data_fingerprint = json.at("data_fingerprint").get<std::string>();
  p.tokens = json.at("tokens").get<int64_t>();
  p.training_flops = json.at("training_flops").get<double>();
  p.train_seconds = json.at("train_seconds").get<double>();
  p.final_train_loss = json.at("final_train_loss").get<double>();
  p.base_eval_loss = json.at("base_eval_loss").get<double>();
  if (!json.at("base_classification").is_null()) p.base_classification = report_from_json(json["base_classification"]);
  p.nonfinite_skipped = json.at("nonfinite_skipped").get<int64_t>();
  p.nonfinite_in_a_row = json.at("nonfinite_in_a_row").get<int64_t>();
  p.log_bytes = json.at("log_bytes").get<int64_t>();
  p.loss_scale = json.value("loss_scale", 1.0);  // absent from checkpoints written before loss scaling
  p.loss_scale_good_steps = json.value("loss_scale_good_steps", int64_t{0});
  check(p.step >= 0 && p.epoch >= 0 && p.next_batch >= 0 && p.log_bytes >= 0, "negative position");
  check(std::isfinite(p.loss_scale) && p.loss_scale >= 1.0 && p.loss_scale_good_steps >= 0, "invalid loss scale");
  return p;
}

// Removes a checkpoint directory so that no moment of the removal leaves it looking complete.
void remove_checkpoint_directory(const fs::path& directory) {
  std::error_code error;
  fs::remove(directory / kCompleteMarker, error);
  fs::remove_all(directory, error);
  if (error) spdlog::warn("could not remove {}: {}", directory.string(), error.message());
}

void write_contents(const fs::path& directory, const CheckpointSources& sources, const TrainingProgress& progress) {
  const Method& method = sources.method;
  if (!method.writes_model()) save_adapter(directory.string(), method, sources.base_model_path);

  std::map<std::string, torch::Tensor> trainable, moments;
  const auto& state = sources.optimizer.state();
  for (const auto& parameter : sources.trainable) {
    check(trainable.emplace(parameter.name, parameter.tensor.detach()).second,
          "internal: two trainable parameters are named " + parameter.name);
    auto found = state.find(optimizer_key(parameter.tensor));
    if (found == state.end()) continue;  // never updated (it received no gradient yet)
    const auto* adam = dynamic_cast<const torch::optim::AdamWParamState*>(found->second.get());
    check(adam != nullptr, "internal: checkpoints hold AdamW state only");
    moments[parameter.name + ".step"] = torch::full({1}, adam->step(), torch::kInt64);
    moments[parameter.name + ".exp_avg"] = adam->exp_avg();
    moments[parameter.name + ".exp_avg_sq"] = adam->exp_avg_sq();
  }
  safetensors::save((directory / "trainable.safetensors").string(), trainable);
  safetensors::save((directory / "optimizer.safetensors").string(), moments);

  std::map<std::string, torch::Tensor> generator_states;
  auto all = generators();
  for (size_t i = 0; i < all.size(); ++i) {
    std::lock_guard<std::mutex> lock(all[i].mutex());
    generator_states[generator_key(i)] = all[i].get_state();
  }
  safetensors::save((directory / "rng_state.safetensors").string(), generator_states);

  write_file_atomic((directory / "trainer_state.json").string(), progress_json(progress).dump(1) + "\n");
  write_file_atomic((directory / "run_config.yaml").string(), sources.resolved_yaml);
  write_file_atomic((directory / kCompleteMarker).string(), "step " + std::to_string(progress.step) + "\n");
}

// Puts the complete `partial` at `final_path`; an existing checkpoint there is swapped out atomically (both stay
// complete at every moment) and then removed.
void install(const fs::path& partial, const fs::path& final_path) {
  if (!fs::exists(final_path)) {
    if (::rename(partial.c_str(), final_path.c_str()) != 0)
      throw Error("cannot rename " + partial.string() + " to " + final_path.string() + ": " + std::strerror(errno));
  } else if (::renameat2(AT_FDCWD, partial.c_str(), AT_FDCWD, final_path.c_str(), RENAME_EXCHANGE) == 0) {
    remove_checkpoint_directory(partial);
  } else {
    // No atomic exchange on this filesystem: move the old one aside first (a crash in between loses only it).
    fs::path old = final_path.string() + ".old-" + std::to_string(::getpid());
    if (::rename(final_path.c_str(), old.c_str()) != 0 || ::rename(partial.c_str(), final_path.c_str()) != 0)
      throw Error("cannot replace " + final_path.string() + ": " + std::strerror(errno));
    remove_checkpoint_directory(old);
  }
  fsync_directory(final_path.parent_path().string());
}

}  // namespace

std::string checkpoint_directory(const std::string& output_dir, int64_t step) {
  return (fs::path(output_dir) / ("checkpoint-" + std::to_string(step))).string();
}

std::vector<std::pair<int64_t, std::string>> complete_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code error;
  if (!fs::is_directory(output_dir, error)) return out;
  for (const auto& entry : fs::directory_iterator(output_dir, error)) {
    std::smatch match;
    std::string name = entry.path().filename().string();
    if (!std::regex_match(name, match, kCheckpointName) || !is_complete(entry.path())) continue;
    out.emplace_back(std::stoll(match[1]), entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> incomplete_checkpoints(const std::string& output_dir) {
  std::vector<std::string> out;
  std::error_code error;
  if (!fs::is_directory(output_dir, error)) return out;
  for (const auto& entry : fs::directory_iterator(output_dir, error)) {
    std::string name = entry.path().filename().string();
    bool leftover = std::regex_match(name, kLeftoverName);
    if (leftover || (std::regex_match(name, kCheckpointName) && !is_complete(entry.path())))
      out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string resolve_checkpoint(const std::string& request, const std::string& output_dir) {
  if (request != "latest") {
    check(fs::is_directory(request), "--resume " + request + ": checkpoint directory not found");
    check(is_complete(request), "--resume " + request + ": the checkpoint is incomplete (no " + kCompleteMarker +
                                    " marker: its writing was interrupted); resume from an earlier one");
    return request;
  }
  for (const auto& leftover : incomplete_checkpoints(output_dir)) {
    spdlog::warn("ignoring {}: an incomplete checkpoint (its writing was interrupted)", leftover);
  }
  auto complete = complete_checkpoints(output_dir);
  check(!complete.empty(), "--resume latest: no complete checkpoint in " + output_dir +
                               " (train.save_every writes them, and so does an interrupted run)");
  return complete.back().second;
}

void write_checkpoint(const std::string& output_dir, const CheckpointSources& sources,
                      const TrainingProgress& progress) {
  std::string final_path = checkpoint_directory(output_dir, progress.step);
  check_finite_parameters(sources.method, "the checkpoint at step " + std::to_string(progress.step));
  fs::path partial = final_path + ".partial-" + std::to_string(::getpid());
  try {
    remove_checkpoint_directory(partial);
    ensure_directory(partial.string());
    write_contents(partial, sources, progress);
    install(partial, final_path);
  } catch (const Error& e) {
    remove_checkpoint_directory(partial);
    throw Error("cannot write checkpoint " + final_path + ": " + e.what() + " (earlier checkpoints are intact)");
  }
}

TrainingProgress read_checkpoint(const std::string& directory, const std::vector<TrainableParameter>& parameters,
                                 torch::optim::Optimizer& optimizer) {
  fs::path dir(directory);
  std::string state_path = (dir / "trainer_state.json").string();
  TrainingProgress progress;
  try {
    std::ifstream in(state_path);
    check(in.good(), "cannot read it");
    progress = progress_from_json(nlohmann::json::parse(in));
  } catch (const std::exception& e) {
    throw Error(state_path + ": not a valid trainer state: " + e.what());
  }

  std::string trainable_path = (dir / "trainable.safetensors").string();
  auto trainable = safetensors::File::open(trainable_path);
  auto moments = safetensors::File::open((dir / "optimizer.safetensors").string());
  check(trainable->tensors().size() == parameters.size(),
        trainable_path + ": holds " + std::to_string(trainable->tensors().size()) + " tensors but the method trains " +
            std::to_string(parameters.size()) + ": the checkpoint was written for another method or model");
  torch::NoGradGuard no_grad;
  auto& state = optimizer.state();
  for (const auto& parameter : parameters) {
    check(trainable->contains(parameter.name), trainable_path + ": no tensor " + parameter.name +
                                                   ": the checkpoint was written for another method or model");
    torch::Tensor saved = trainable->tensor(parameter.name);
    // Checkpoints from before float32 masters hold 16-bit tensors where the optimiser now has a float32 master:
    // widening them is exact.
    bool widened = parameter.tensor.scalar_type() == torch::kFloat &&
                   (saved.scalar_type() == torch::kBFloat16 || saved.scalar_type() == torch::kHalf);
    check(
        saved.sizes() == parameter.tensor.sizes() && (saved.scalar_type() == parameter.tensor.scalar_type() || widened),
        trainable_path + ": " + parameter.name + " has another shape or dtype than the method's parameter");
    parameter.tensor.copy_(saved);
    if (!moments->contains(parameter.name + ".step")) continue;
    auto adam = std::make_unique<torch::optim::AdamWParamState>();
    adam->step(moments->tensor(parameter.name + ".step").item<int64_t>());
    adam->exp_avg(moments->tensor(parameter.name + ".exp_avg").to(parameter.tensor.options(), false, true));
    adam->exp_avg_sq(moments->tensor(parameter.name + ".exp_avg_sq").to(parameter.tensor.options(), false, true));
    state[optimizer_key(parameter.tensor)] = std::move(adam);
  }

  auto generator_file = safetensors::File::open((dir / "rng_state.safetensors").string());
  auto all = generators();
  for (size_t i = 0; i < all.size(); ++i) {
    if (!generator_file->contains(generator_key(i))) continue;  // e.g. written on a machine with fewer GPUs
    std::lock_guard<std::mutex> lock(all[i].mutex());
    all[i].set_state(generator_file->tensor(generator_key(i)).clone());
  }
  return progress;
}

void prune_checkpoints(const std::string& output_dir, int64_t keep) {
  for (const auto& leftover : incomplete_checkpoints(output_dir)) remove_checkpoint_directory(leftover);
  if (keep <= 0) return;
  auto complete = complete_checkpoints(output_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < complete.size(); ++i) {
    remove_checkpoint_directory(complete[i].second);
  }
}

void remove_checkpoints(const std::string& output_dir) {
  for (const auto& leftover : incomplete_checkpoints(output_dir)) remove_checkpoint_directory(leftover);
  for (const auto& [step, directory] : complete_checkpoints(output_dir)) remove_checkpoint_directory(directory);
}

void check_finite_parameters(const Method& method, const std::string& what) {
  for (const auto& parameter : method.trainable_parameters()) {
    if (!torch::isfinite(parameter.tensor).all().item<bool>()) {
      throw Error("refusing to save " + what + ": parameter " + parameter.name +
                  " holds NaN or Inf (lower train.learning_rate, or set train.on_nonfinite)");
    }
  }
}

std::string fingerprint_examples(const std::vector<Example>& examples) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a, 64-bit
  auto mix = [&](int64_t value) {
    for (int byte = 0; byte < 8; ++byte) {
      hash ^= static_cast<uint64_t>(value >> (8 * byte)) & 0xff;
      hash *= 1099511628211ULL;
    }
  };
  for (const auto& example : examples) {
    mix(static_cast<int64_t>(example.input_ids.size()));
    for (int64_t id : example.input_ids) mix(id);
    for (int64_t label : example.labels) mix(label);
    mix(example.class_label);
    mix(static_cast<int64_t>(example.token_type_ids.size()));
    for (int64_t type : example.token_type_ids) mix(type);
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

}  // namespace peft
