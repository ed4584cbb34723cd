// peft-merge --model DIR|FILE.pt --adapter DIR --out DIR|FILE.pt
// Folds a mergeable adapter (LoRA, (IA)³, BitFit) into the base weights and writes a complete HF model directory
// (or, for a TorchScript module of unknown architecture, a new TorchScript archive) that evaluates alone to the
// same loss as base + adapter.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "cli/main_guard.h"
#include "config/run_config.h"
#include "core/device.h"
#include "core/strings.h"
#include "io/atomic_file.h"
#include "models/export.h"
#include "models/loader.h"
#include "models/torchscript/script_model.h"
#include "peft/adapter_io.h"

int main(int argc, char** argv) {
  CLI::App app{"Fold an adapter into its base model and write a complete HF model directory."};
  std::string model_dir, adapter_dir, out_dir, dtype = "base";
  app.add_option("--model,-m", model_dir, "base model: HF directory or TorchScript archive (.pt)")->required();
  app.add_option("--adapter,-a", adapter_dir, "adapter directory")->required();
  app.add_option("--out,-o", out_dir,
                 "where to write the merged model (a TorchScript base: a .pt file, or DIR/model.pt)")
      ->required();
  std::string arch = "auto", output = "logits";
  app.add_option("--arch", arch, "TorchScript base: auto | custom | a family's model_type (default: the adapter's)");
  app.add_option("--output", output, "custom TorchScript base: logits | loss (default: the adapter's)");
  app.add_option("--dtype", dtype,
                 "storage dtype of the merged weights: base (as the base's), float32, bfloat16, float16");
  std::string quantize = "none";
  app.add_option("--quantize", quantize,
                 "merge into the base as a quantized run saw it: none | nf4 | int8 (the merged model is written "
                 "dense)")
      ->check(CLI::IsMember({"none", "nf4", "int8"}));
  bool double_quant = false;
  app.add_flag("--double-quant", double_quant, "with --quantize nf4: the block maxima in 8 bits too");
  CLI11_PARSE(app, argc, argv);

  return peft::run_main([&] {
    peft::configure_threads(0);
    // Merge in float32 whatever the storage dtype, then store as the base stores its weights.
    // A TorchScript base is read as the adapter was trained on it (its run_config.yaml), unless told here.
    std::string run_config = adapter_dir + "/run_config.yaml";
    if (std::filesystem::exists(run_config)) {
      auto trained = peft::RunConfig::load(run_config);
      if (app.count("--arch") == 0) arch = trained.model.arch;
      if (app.count("--output") == 0) output = trained.model.output;
    }
    peft::check(!double_quant || quantize == "nf4", "--double-quant applies to --quantize nf4");
    auto model = peft::load_base_model(model_dir, {"float32", "cpu", 0, false, arch, output, quantize, double_quant});
    torch::Dtype storage = dtype == "base" ? peft::stored_dtype(model_dir) : peft::parse_dtype(dtype);
    auto method = peft::load_adapter(adapter_dir, *model);
    method->merge(*model);
    if (auto* script = dynamic_cast<peft::ScriptModel*>(model.get())) {
      // Weights stay in the dtype the module stores them in; the code is the module's own.
      std::string out_file = peft::ends_with(out_dir, ".pt") ? out_dir : out_dir + "/model.pt";
      peft::check(std::filesystem::absolute(out_file) != std::filesystem::absolute(model_dir),
                  "--out must differ from the base model " + model_dir);
      if (out_file != out_dir) peft::ensure_directory(out_dir);
      script->save(out_file);
      out_dir = out_file;
    } else {
      peft::save_model_directory(dynamic_cast<peft::Transformer&>(*model), model_dir, out_dir, storage);
    }
    std::printf("merged %s (%zu module(s)) into %s -> %s\n", method->name().c_str(), method->targets().size(),
                model_dir.c_str(), out_dir.c_str());
    if (quantize != "none") {
      std::printf("the base was quantized to %s%s and dequantized for the merge: %s holds full-precision weights\n",
                  quantize.c_str(), double_quant ? " (double quantization)" : "", out_dir.c_str());
    }
    return 0;
  });
}
