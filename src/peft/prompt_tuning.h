// Prompt tuning (Lester et al. 2021, "The Power of Scale for Parameter-Efficient Prompt Tuning"): l learned
// vectors P (l, d) prepended to the input embeddings, [P; E(x)]. The model extends the attention mask with l
// ones, shifts the real tokens' positions by l (they take l, l+1, ...), and drops the l positions from its
// output, so labels never see them. HF PEFT's format: tensor `prompt_embeddings` [l, d], peft_type
// PROMPT_TUNING.
//
// init: random       — uniform [-0.5, 0.5] (the paper's);
//       sample_vocab — embeddings of tokens drawn uniformly from the 5,000 most common (the first 5,000 ids:
//                      SentencePiece and BPE vocabularies are ordered roughly by frequency);
//       text         — embeddings of `init_text`'s tokens, tiled to l (HF PEFT's TEXT);
//       class_labels — row i is the mean embedding of `class_labels[i]`'s tokens, the rest sample_vocab.
// SPoT (Vu et al. 2022; peft/spot.h) starts from saved prompts instead:
//   init_from: DIR          — a prompt-tuning adapter's prompt, copied (same l and d);
//   init_from: [DIR, ...]   — several, combined by their similarity to `target_prompt` (a briefly trained
//                             prompt of this task): `combine: weighted` averages them with weights ∝ max(sim, 0),
//                             `combine: best` takes the most similar; `similarity` picks the measure.
// Not mergeable: the prompt is extra input, not a weight change.
#pragma once

#include "config/section.h"
#include "peft/method.h"

namespace peft {

struct PromptTuningOptions : MethodOptions {
  int64_t num_virtual_tokens = 20;
  std::string init = "random";  // random | sample_vocab | text | class_labels
  std::string init_text;
  std::vector<std::string> class_labels;
  StringOrList init_from{true, "", {}};    // SPoT: prompt-tuning adapter directories
  std::string combine = "weighted";        // weighted | best (several init_from)
  std::string target_prompt;               // the target task's short-trained prompt (several init_from)
  std::string similarity = "mean_cosine";  // mean_cosine | token_cosine
  // From a saved adapter: the tensor is loaded over whatever init gives, and token_dim is checked on attach.
  int64_t expected_token_dim = 0;

  void read(Section& section) override;
  static std::shared_ptr<MethodOptions> from_adapter_config(const nlohmann::json& config);
};

std::unique_ptr<Method> make_prompt_tuning(std::shared_ptr<const MethodOptions> options);

}  // namespace peft
