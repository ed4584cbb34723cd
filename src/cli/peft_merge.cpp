// peft-merge --model DIR --adapter DIR --out DIR
// Folds a mergeable adapter (LoRA, (IA)³, BitFit) into the base weights and writes a complete HF model directory
// that evaluates alone to the same loss as base + adapter.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/main_guard.h"
#include "core/device.h"
#include "models/export.h"
#include "models/loader.h"
#include "peft/adapter_io.h"

int main(int argc, char** argv) {
  CLI::App app{"Fold an adapter into its base model and write a complete HF model directory."};
  std::string model_dir, adapter_dir, out_dir, dtype = "base";
  app.add_option("--model,-m", model_dir, "base model directory (HF layout)")->required();
  app.add_option("--adapter,-a", adapter_dir, "adapter directory")->required();
  app.add_option("--out,-o", out_dir, "where to write the merged model")->required();
  app.add_option("--dtype", dtype,
                 "storage dtype of the merged weights: base (as the base's), float32, bfloat16, float16");
  CLI11_PARSE(app, argc, argv);

  return peft::run_main([&] {
    peft::configure_threads(0);
    // Merge in float32 whatever the storage dtype, then store as the base stores its weights.
    auto model = peft::load_model(model_dir, {"float32", "cpu"});
    torch::Dtype storage = dtype == "base" ? peft::stored_dtype(model_dir) : peft::parse_dtype(dtype);
    auto method = peft::load_adapter(adapter_dir, *model);
    method->merge(*model);
    peft::save_model_directory(*model, model_dir, out_dir, storage);
    std::printf("merged %s (%zu module(s)) into %s -> %s\n", method->name().c_str(), method->targets().size(),
                model_dir.c_str(), out_dir.c_str());
    return 0;
  });
}
