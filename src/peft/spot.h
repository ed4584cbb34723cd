// SPoT (Vu et al. 2022, "SPoT: Better Frozen Model Adaptation through Soft Prompt Transfer"): prompts trained
// on source tasks initialise a target task's prompt. Targeted SPoT treats a prompt as its task's embedding:
// train the target's prompt briefly, rank a library of source prompts by similarity to it, and initialise from
// the best one or from a similarity-weighted average. Both of the paper's similarities are here:
//   mean_cosine  — cosine of the mean-pooled prompt tokens, cos(mean_i e¹_i, mean_j e²_j);
//   token_cosine — average per-token cosine, (1/(l₁·l₂)) Σ_i Σ_j cos(e¹_i, e²_j).
// Prompts are read from prompt-tuning adapter directories (HF PEFT's PROMPT_TUNING format).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace peft {

struct SavedPrompt {
  std::string directory;
  torch::Tensor embeddings;  // (l, d) float32
};

// Throws peft::Error naming the directory for a missing or invalid adapter, or one that is not prompt tuning.
SavedPrompt read_saved_prompt(const std::string& directory);

// Every prompt-tuning adapter among `locations`: each is an adapter directory or a directory of them.
std::vector<SavedPrompt> read_prompt_library(const std::vector<std::string>& locations);

double mean_cosine(const torch::Tensor& a, const torch::Tensor& b);
double token_cosine(const torch::Tensor& a, const torch::Tensor& b);
// "mean_cosine" or "token_cosine"; throws peft::Error for others.
double prompt_similarity(const std::string& metric, const torch::Tensor& a, const torch::Tensor& b);

struct RankedPrompt {
  std::string directory;
  double mean_cosine = 0, token_cosine = 0;
};
// The library sorted by `metric`, most similar first. Widths must match the target's.
std::vector<RankedPrompt> rank_prompts(const SavedPrompt& target, const std::vector<SavedPrompt>& library,
                                       const std::string& metric);

}  // namespace peft
