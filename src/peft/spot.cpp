#include "peft/spot.h"

#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "peft/adapter_io.h"

namespace peft {

namespace fs = std::filesystem;

SavedPrompt read_saved_prompt(const std::string& directory) {
  std::string config_path = directory + "/adapter_config.json";
  nlohmann::json config = read_adapter_config(directory);
  std::string type = config.is_object() ? config.value("peft_type", std::string()) : std::string();
  check(type == "PROMPT_TUNING",
        config_path + ": peft_type is '" + type + "', not PROMPT_TUNING (SPoT transfers " + "prompt-tuning prompts)");
  auto file = safetensors::File::open(directory + "/adapter_model.safetensors");
  auto names = file->names();
  check(std::find(names.begin(), names.end(), "prompt_embeddings") != names.end(),
        directory + "/adapter_model.safetensors has no 'prompt_embeddings'");
  auto embeddings = file->tensor("prompt_embeddings").to(torch::kFloat).clone();
  check(embeddings.dim() == 2 && embeddings.size(0) >= 1,
        directory + ": prompt_embeddings must be (l, d), got " + c10::str(embeddings.sizes()));
  return {directory, embeddings};
}

std::vector<SavedPrompt> read_prompt_library(const std::vector<std::string>& locations) {
  std::vector<SavedPrompt> library;
  for (const auto& location : locations) {
    check(fs::is_directory(location), "prompt library entry not found: " + location);
    if (fs::exists(location + "/adapter_config.json")) {
      library.push_back(read_saved_prompt(location));
      continue;
    }
    std::vector<std::string> children;
    for (const auto& entry : fs::directory_iterator(location)) {
      if (entry.is_directory() && fs::exists(entry.path() / "adapter_config.json")) children.push_back(entry.path());
    }
    check(!children.empty(), location + " holds no adapter directory");
    std::sort(children.begin(), children.end());
    for (const auto& child : children) library.push_back(read_saved_prompt(child));
  }
  return library;
}

double mean_cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::cosine_similarity(a.mean(0), b.mean(0), /*dim=*/0).item<double>();
}

double token_cosine(const torch::Tensor& a, const torch::Tensor& b) {
  auto unit_a = torch::nn::functional::normalize(a, torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto unit_b = torch::nn::functional::normalize(b, torch::nn::functional::NormalizeFuncOptions().dim(1));
  return torch::matmul(unit_a, unit_b.t()).mean().item<double>();  // mean over all l₁·l₂ pairs
}

namespace {
void check_metric(const std::string& metric) {
  check(metric == "mean_cosine" || metric == "token_cosine",
        "unknown similarity '" + metric + "'; use mean_cosine or token_cosine");
}
}  // namespace

double prompt_similarity(const std::string& metric, const torch::Tensor& a, const torch::Tensor& b) {
  check_metric(metric);
  return metric == "mean_cosine" ? mean_cosine(a, b) : token_cosine(a, b);
}

std::vector<RankedPrompt> rank_prompts(const SavedPrompt& target, const std::vector<SavedPrompt>& library,
                                       const std::string& metric) {
  check_metric(metric);
  std::vector<RankedPrompt> ranked;
  for (const auto& source : library) {
    check(source.embeddings.size(1) == target.embeddings.size(1),
          source.directory + ": prompt width " + std::to_string(source.embeddings.size(1)) + " differs from the " +
              "target's " + std::to_string(target.embeddings.size(1)) + " (another base model?)");
    ranked.push_back({source.directory, mean_cosine(target.embeddings, source.embeddings),
                      token_cosine(target.embeddings, source.embeddings)});
  }
  std::stable_sort(ranked.begin(), ranked.end(), [&](const RankedPrompt& x, const RankedPrompt& y) {
    return metric == "mean_cosine" ? x.mean_cosine > y.mean_cosine : x.token_cosine > y.token_cosine;
  });
  return ranked;
}

}  // namespace peft
