// peft-train --config FILE.yaml [section.key=value ...] [--dry-run] [--resume [latest|DIR]]
// Fine-tunes the base model with the configured PEFT method and writes only the adapter. Ctrl-C (or SIGTERM)
// finishes the current step, writes a checkpoint and exits; --resume continues from it exactly.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "cli/main_guard.h"
#include "config/run_config.h"
#include "core/interrupt.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  CLI::App app{"Fine-tune a base model with a PEFT method (writes only the adapter) or fully (writes the model)."};
  std::string config_path;
  std::vector<std::string> overrides;
  bool dry_run = false;
  app.add_option("--config,-c", config_path, "YAML run configuration")->required();
  app.add_option("overrides", overrides, "section.key=value settings that override the file");
  app.add_flag("--dry-run", dry_run, "build everything, print the adapted modules and parameter counts, then exit");
  std::string resume;
  app.add_option("--resume", resume,
                 "continue from a checkpoint: 'latest' (the newest complete one in output.dir; the default when the "
                 "option has no value) or a checkpoint directory")
      ->expected(0, 1)
      ->default_str("latest");
  CLI11_PARSE(app, argc, argv);

  return peft::run_main([&] {
    auto config = peft::RunConfig::load(config_path, overrides);
    peft::Trainer trainer(config);
    if (app.count("--resume")) {
      // "--resume key=value" took an override as its value.
      peft::check(resume.find('=') == std::string::npos || std::filesystem::is_directory(resume),
                  "--resume took '" + resume +
                      "' as its checkpoint; write --resume latest (or a directory) before "
                      "overrides");
      trainer.resume_from(resume.empty() ? "latest" : resume);
    }
    trainer.setup();
    trainer.print_summary();
    if (dry_run) return 0;
    peft::InterruptGuard interrupt_guard;
    auto summary = trainer.train();
    // In a data-parallel run rank 0 reports and saves for every process.
    if (!trainer.world().leader()) return summary.interrupted ? 128 + summary.interrupted : 0;
    if (summary.interrupted) {
      std::string command = "peft-train --config " + config_path;
      for (const auto& text : overrides) command += " '" + text + "'";
      if (summary.checkpoint.empty()) {
        std::fprintf(stderr, "stopped before the first step: nothing to save\n");
      } else {
        std::fprintf(stderr, "stopped at step %ld/%ld: checkpoint %s\nresume with: %s --resume latest\n",
                     long(summary.steps), long(summary.total_steps), summary.checkpoint.c_str(), command.c_str());
      }
      return 128 + summary.interrupted;
    }
    trainer.save();
    if (summary.base_eval_loss >= 0) {
      std::printf("held-out loss: %.4f (base) -> %.4f (adapted); perplexity %.2f -> %.2f\n", summary.base_eval_loss,
                  summary.final_eval_loss, std::exp(summary.base_eval_loss), std::exp(summary.final_eval_loss));
    }
    if (summary.final_classification) {
      std::printf("held-out classification before training: %s\n",
                  peft::format_report(*summary.base_classification).c_str());
      std::printf("held-out classification after training:  %s\n",
                  peft::format_report(*summary.final_classification).c_str());
    }
    if (summary.nonfinite_skipped > 0) {
      std::printf("skipped %ld step(s) with a non-finite loss or gradient (train.on_nonfinite: skip)\n",
                  long(summary.nonfinite_skipped));
    }
    std::printf("trained %ld step(s) on %ld tokens in %.1f s: %s FLOPs (counted, eval/flops.h)\n", long(summary.steps),
                long(summary.trained_tokens), summary.train_seconds,
                peft::format_flops(summary.training_flops).c_str());
    std::printf("%s written to %s\n", trainer.writes_model() ? "model" : "adapter", config.output.dir.c_str());
    return 0;
  });
}
