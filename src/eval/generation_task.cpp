#include "eval/generation_task.h"

#include <algorithm>
#include <cstdio>

#include "data/chat.h"
#include "io/tokenizer.h"
#include "models/causal_lm.h"

namespace peft {

GenerationReport evaluate_generation(CausalLM& model, const Tokenizer& tokenizer, const GenerationSet& set,
                                     const std::string& template_text, const std::vector<std::string>& stop,
                                     const GenerationOptions& options, int64_t batch_size, const ChatFormat* chat) {
  GenerationReport report;
  std::vector<std::vector<std::string>> references;
  for (size_t start = 0; start < set.examples.size(); start += static_cast<size_t>(batch_size)) {
    size_t end = std::min(set.examples.size(), start + static_cast<size_t>(batch_size));
    std::vector<std::vector<int64_t>> prompts;
    for (size_t i = start; i < end; ++i) {
      std::string prompt = generation_prompt(template_text, set.examples[i]);
      std::vector<int64_t> ids;
      if (chat) {
        ids = chat_prompt(*chat, prompt);
      } else {
        ids = {tokenizer.bos_id()};
        for (int64_t id : tokenizer.encode(prompt)) ids.push_back(id);
      }
      // The prompt's end is what the continuation depends on: keep it when the context is short.
      int64_t room = model.max_sequence_length() - options.max_new_tokens;
      if (room > 1 && static_cast<int64_t>(ids.size()) > room) ids.erase(ids.begin() + 1, ids.end() - (room - 1));
      prompts.push_back(std::move(ids));
    }
    auto generated = generate_batch(model, prompts, options);
    for (size_t i = start; i < end; ++i) {
      auto& tokens = generated[i - start];
      report.prompt_tokens.push_back(static_cast<int64_t>(prompts[i - start].size()));
      report.generated_tokens.push_back(static_cast<int64_t>(tokens.size()));
      if (!tokens.empty() && tokens.back() == options.eos_id) tokens.pop_back();
      std::string text = tokenizer.decode(tokens);
      size_t cut = text.size();
      for (const auto& s : stop) {
        if (!s.empty()) cut = std::min(cut, text.find(s));
      }
      report.outputs.push_back(text.substr(0, cut));
      references.push_back(set.examples[i].references);
    }
  }
  report.bleu = corpus_bleu(report.outputs, references);
  report.rouge_l = corpus_rouge_l(report.outputs, references);
  report.exact_match = exact_match(report.outputs, references);
  return report;
}

std::string format_report(const GenerationReport& report) {
  const auto& b = report.bleu;
  char line[256];
  std::snprintf(line, sizeof(line),
                "BLEU %.2f (%.1f/%.1f/%.1f/%.1f, BP %.3f) | ROUGE-L %.4f | exact match %.4f (%zu examples)", b.score,
                b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3], b.brevity_penalty, report.rouge_l,
                report.exact_match, report.outputs.size());
  return line;
}

}  // namespace peft
