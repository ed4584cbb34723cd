// peft-bench: training throughput and peak memory of one method (LoRA by default, or Ladder Side-Tuning) on a
// randomly initialised Llama-shaped model, next to this machine's fp32 matrix-product rate. Prints tokens/s,
// peak memory and, for LoRA, achieved GFLOP/s; compare ratios within one run. Peak RSS is per process, so
// scripts/bench_methods.sh runs one process per method.
//
// Counted FLOPs per step: 4·N_linear·tokens (forward 2N, activation gradients 2N; the frozen base needs no
// weight gradients) + attention 12·L·B·T²·d (QKᵀ and AV: 4·B·T²·d forward per layer, twice that backward).
// LoRA's own products and elementwise work are not counted, so the figure is a lower bound of work done.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "core/device.h"
#include "core/process_memory.h"
#include "data/batch.h"
#include "models/loader.h"
#include "peft/lora.h"
#include "peft/lst.h"
#include "train/loss.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The best of several short rounds: on a shared machine the best round is the least disturbed one.
double matmul_gflops(int64_t n, int rounds, int repeats) {
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::matmul(a, b);  // warm-up
  double best = 0.0;
  for (int round = 0; round < rounds; ++round) {
    auto start = Clock::now();
    for (int i = 0; i < repeats; ++i) c = torch::matmul(a, b);
    best = std::max(best, 2.0 * n * n * n * repeats / seconds_since(start) / 1e9);
  }
  return best;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

}  // namespace

int main(int argc, char** argv) {
  peft::keep_freed_tensors_in_heap();  // as every tool does (core/process_memory.h)
  CLI::App app{"Training throughput and memory benchmark (random Llama-shaped model)."};
  std::string method = "lora";
  int64_t reduction_factor = 8;
  app.add_option("--method", method, "lora or lst")->check(CLI::IsMember({"lora", "lst"}));
  app.add_option("--reduction-factor", reduction_factor, "LST's r (side network width d/r)");
  bool cache_backbone = false;
  app.add_option("--cache-backbone", cache_backbone,
                 "LST: keep the backbone's states (the warm-up steps fill the cache, the timed steps reuse them)");
  int64_t layers = 8, hidden = 512, intermediate = 1376, vocab = 32000, heads = 8, batch = 8, length = 256;
  int64_t steps = 5, warmup = 1, rank = 8, threads = 0;
  bool naive_loss_too = true;
  app.add_option("--layers", layers);
  app.add_option("--hidden", hidden);
  app.add_option("--intermediate", intermediate);
  app.add_option("--vocab", vocab);
  app.add_option("--heads", heads);
  app.add_option("--batch", batch);
  app.add_option("--length", length);
  app.add_option("--steps", steps, "timed optimiser steps");
  app.add_option("--warmup", warmup, "untimed steps first");
  app.add_option("--rank", rank);
  app.add_option("--threads", threads, "0 = all cores");
  app.add_option("--naive-loss-too", naive_loss_too, "also time the loss through full logits, for comparison");
  CLI11_PARSE(app, argc, argv);

  int used_threads = peft::configure_threads(threads);
  torch::manual_seed(0);
  double matmul_rate = matmul_gflops(2048, 5, 4);

  peft::ModelConfig config;
  config.architecture = "LlamaForCausalLM";
  config.vocab_size = vocab;
  config.hidden_size = hidden;
  config.intermediate_size = intermediate;
  config.num_hidden_layers = layers;
  config.num_attention_heads = heads;
  config.num_key_value_heads = heads;
  config.head_dim = hidden / heads;
  config.max_position_embeddings = std::max<int64_t>(length, 2048);
  config.rms_norm_eps = 1e-5;
  auto model = peft::make_model(config, torch::TensorOptions().dtype(torch::kFloat));
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : model->parameters()) parameter.normal_(0.0, 0.02);
    for (auto& item : model->named_parameters()) {
      if (item.key().find("norm") != std::string::npos) item.value().fill_(1.0);
    }
  }
  model->freeze();
  int64_t linear_parameters = 0, base_parameters = 0;
  for (auto& [path, projection] : model->projections()) linear_parameters += projection->weight.numel();
  for (auto& parameter : model->parameters()) base_parameters += parameter.numel();

  std::unique_ptr<peft::Method> peft_method;
  std::string description;
  if (method == "lora") {
    auto options = std::make_shared<peft::LoraOptions>();
    options->r = rank;
    options->lora_alpha = 2.0 * rank;
    options->target_modules.list = {"q_proj", "k_proj", "v_proj", "o_proj"};
    peft_method = peft::make_lora(options);
    description = "LoRA r=" + std::to_string(rank) + " on q,k,v,o";
  } else {
    auto options = std::make_shared<peft::LstOptions>();
    options->reduction_factor = reduction_factor;
    options->init = "random";  // the same cost as pruned, without the pruning pass
    options->cache_backbone = cache_backbone;
    peft_method = peft::make_lst(options);
    description = "LST r=" + std::to_string(reduction_factor) + " on every layer" +
                  (cache_backbone ? ", backbone states from the cache" : "");
  }
  peft_method->attach(*model);
  std::vector<torch::Tensor> trainable;
  for (auto& parameter : peft_method->trainable_parameters()) trainable.push_back(parameter.tensor);
  torch::optim::AdamW optimizer(trainable, torch::optim::AdamWOptions(1e-4));
  model->train();

  peft::Batch data;
  data.input_ids = torch::randint(vocab, {batch, length}, torch::kLong);
  data.attention_mask = torch::ones_like(data.input_ids);
  data.labels = data.input_ids.clone();

  auto run = [&](bool fused) {
    for (int64_t i = 0; i < warmup; ++i) {
      auto loss = peft::causal_lm_loss(*model, data);
      loss.backward();
      optimizer.step();
      optimizer.zero_grad();
    }
    std::vector<double> times;
    for (int64_t i = 0; i < steps; ++i) {
      auto start = Clock::now();
      torch::Tensor loss;
      if (fused) {
        loss = peft::causal_lm_loss(*model, data);
      } else {
        auto logits = model->logits(data.input_ids, data.attention_mask);  // (B, T, V) all at once
        loss = torch::nn::functional::cross_entropy(logits.narrow(1, 0, length - 1).reshape({-1, vocab}),
                                                    data.labels.narrow(1, 1, length - 1).reshape({-1}));
      }
      loss.backward();
      optimizer.step();
      optimizer.zero_grad();
      times.push_back(seconds_since(start));
    }
    return median(times);
  };

  double tokens = static_cast<double>(batch * length);
  double flops = 4.0 * linear_parameters * tokens + 12.0 * layers * batch * length * length * hidden;
  double step_time = run(true);
  double fused_peak = peft::peak_rss_bytes();
  // Measured again after training, so that a disturbance during either measurement shows as a lower rate.
  matmul_rate = std::max(matmul_rate, matmul_gflops(2048, 5, 4));

  std::printf("peft-bench: %s; Llama d=%ld, %ld layers, ff %ld, vocab %ld (untied); batch %ld x %ld\n",
              description.c_str(), long(hidden), long(layers), long(intermediate), long(vocab), long(batch),
              long(length));
  std::printf("threads                    %d\n", used_threads);
  int64_t trainable_count = 0;
  for (auto& tensor : trainable) trainable_count += tensor.numel();
  std::printf("base parameters            %.1fM (linear %.1fM), trainable %ld\n", base_parameters / 1e6,
              linear_parameters / 1e6, long(trainable_count));
  std::printf("fp32 matmul 2048^2         %.1f GFLOP/s (best round, before and after training)\n", matmul_rate);
  std::printf("step time (fused loss)     %.3f s (median of %ld)\n", step_time, long(steps));
  std::printf("tokens/s                   %.0f\n", tokens / step_time);
  if (method == "lora") {  // the FLOP count above is LoRA's; LST's side network does other work
    std::printf("achieved                   %.1f GFLOP/s = %.0f%% of matmul rate\n", flops / step_time / 1e9,
                100.0 * flops / step_time / 1e9 / matmul_rate);
  }
  std::printf("peak RSS                   %.0f MB (base weights %.0f MB)\n", fused_peak / 1e6,
              base_parameters * 4.0 / 1e6);
  if (naive_loss_too) {
    double naive_time = run(false);
    std::printf("step time (full logits)    %.3f s (fused is %.2fx faster); peak RSS now %.0f MB\n", naive_time,
                naive_time / step_time, peft::peak_rss_bytes() / 1e6);
  }
  return 0;
}
