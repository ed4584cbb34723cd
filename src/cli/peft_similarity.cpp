// peft-similarity --target DIR --library DIR [DIR ...] [--metric mean_cosine|token_cosine]
// Targeted SPoT: ranks a library of prompt-tuning adapters by their similarity to a target task's prompt (both of
// the paper's measures are printed; --metric decides the order), to choose what to initialise from.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/main_guard.h"
#include "peft/spot.h"

int main(int argc, char** argv) {
  CLI::App app{"Rank source prompts (prompt-tuning adapters) by similarity to a target task's prompt (SPoT)."};
  std::string target_dir, metric = "mean_cosine";
  std::vector<std::string> library;
  app.add_option("--target,-t", target_dir, "the target task's prompt-tuning adapter directory")->required();
  app.add_option("--library,-l", library, "source prompt adapters, or directories holding them")->required();
  app.add_option("--metric", metric,
                 "ranking order: mean_cosine (of mean-pooled tokens) or token_cosine (average "
                 "per-token cosine)")
      ->check(CLI::IsMember({"mean_cosine", "token_cosine"}));
  CLI11_PARSE(app, argc, argv);

  return peft::run_main([&] {
    auto target = peft::read_saved_prompt(target_dir);
    auto ranked = peft::rank_prompts(target, peft::read_prompt_library(library), metric);
    std::printf("%-4s %12s %13s  %s\n", "rank", "mean_cosine", "token_cosine", "source prompt");
    for (size_t i = 0; i < ranked.size(); ++i) {
      std::printf("%-4zu %12.4f %13.4f  %s\n", i + 1, ranked[i].mean_cosine, ranked[i].token_cosine,
                  ranked[i].directory.c_str());
    }
    return 0;
  });
}
