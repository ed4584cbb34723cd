// peft-bench: training throughput and peak memory of one method (LoRA by default, or Ladder Side-Tuning) on a
// randomly initialised Llama-shaped model, next to this machine's fp32 matrix-product rate. Prints tokens/s,
// peak memory and, for LoRA, achieved GFLOP/s; compare ratios within one run. Peak RSS is per process, so
// scripts/bench_methods.sh runs one process per method.
//
// Counted FLOPs per step: 4·N_linear·tokens (forward 2N, activation gradients 2N; the frozen base needs no
// weight gradients) + attention 12·L·B·T²·d (QKᵀ and AV: 4·B·T²·d forward per layer, twice that backward).
// LoRA's own products and elementwise work are not counted, so the figure is a lower bound of work done.
// With --min-length below --length the examples have random lengths: batches are then padded to their longest
// example, or packed (--packing true, data/packing.h); tokens/s and the FLOP count are of real tokens only (each
// example's attention over itself), so padding shows as a lower rate. --gradient-checkpointing true recomputes
// each block in backward (models/checkpointing.h).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <string>

#include "core/device.h"
#include "core/process_memory.h"
#include "data/batch.h"
#include "data/packing.h"
#include "models/loader.h"
#include "models/quantized_weight.h"
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
  app.add_option("--method", method, "lora, dora or lst")->check(CLI::IsMember({"lora", "dora", "lst"}));
  app.add_option("--reduction-factor", reduction_factor, "LST's r (side network width d/r)");
  bool cache_backbone = false;
  app.add_option("--cache-backbone", cache_backbone,
                 "LST: keep the backbone's states (the warm-up steps fill the cache, the timed steps reuse them)");
  int64_t layers = 8, hidden = 512, intermediate = 1376, vocab = 32000, heads = 8, batch = 8, length = 256;
  int64_t steps = 5, warmup = 1, rank = 8, threads = 0;
  bool naive_loss_too = true, packing = false, gradient_checkpointing = false;
  int64_t min_length = 0;
  std::string dtype = "float32", quantize = "none";
  bool double_quant = false;
  app.add_option("--dtype", dtype, "the base's compute dtype")->check(CLI::IsMember({"float32", "bfloat16"}));
  app.add_option("--quantize", quantize, "store the projections quantized (model.quantize)")
      ->check(CLI::IsMember({"none", "nf4", "int8"}));
  app.add_option("--double-quant", double_quant, "nf4: the block maxima in 8 bits too");
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
  app.add_option("--min-length", min_length, "examples of random lengths in [min-length, length] (0: all full)");
  app.add_option("--packing", packing, "pack the examples into rows of --length tokens");
  app.add_option("--gradient-checkpointing", gradient_checkpointing, "recompute each block in backward");
  CLI11_PARSE(app, argc, argv);
  if (min_length <= 0 || min_length > length) min_length = length;

  int used_threads = peft::configure_threads(threads);
  torch::manual_seed(0);

  peft::ModelConfig config;
  config.architecture = "LlamaForCausalLM";
  config.vocab_size = vocab;
  config.hidden_size = hidden;
  config.intermediate_size = intermediate;
  config.num_hidden_layers = layers;
  config.num_attention_heads = heads;
  config.num_key_value_heads = heads;
  config.head_dim = hidden / heads;
  config.rope.dim = config.head_dim;
  config.max_position_embeddings = std::max<int64_t>(length, 2048);
  config.rms_norm_eps = 1e-5;
  auto model = peft::make_model(config, torch::TensorOptions().dtype(peft::parse_dtype(dtype)));
  {
    // A quantized projection is drawn in float32 and quantized at once, as the loader quantizes tensor by tensor:
    // the dense model is never in memory whole.
    torch::NoGradGuard no_grad;
    std::map<std::string, peft::Projection> to_quantize;
    for (auto& [path, projection] : model->projections()) {
      if (quantize != "none" && projection.get() != model->head().get())
        to_quantize.emplace(path + ".weight", projection);
    }
    for (auto& item : model->named_parameters()) {
      auto target = to_quantize.find(item.key());
      if (target != to_quantize.end()) {
        auto weight = torch::empty(item.value().sizes()).normal_(0.0, 0.02).to(item.value().scalar_type());
        target->second->set_quantized(std::make_shared<const peft::QuantizedWeight>(
            peft::quantize_weight(weight, peft::parse_quant_kind(quantize), double_quant)));
      } else if (item.key().find("norm") != std::string::npos) {
        item.value().fill_(1.0);
      } else {
        item.value().normal_(0.0, 0.02);
      }
    }
  }
  model->freeze();
  int64_t linear_parameters = 0, base_parameters = 0;
  double weight_bytes = 0, projection_bytes = 0;
  for (auto& [path, projection] : model->projections()) {
    linear_parameters += projection->in_features * projection->out_features;
    if (auto quantized = projection->quantized()) {
      base_parameters += quantized->numel();
      weight_bytes += static_cast<double>(quantized->bytes());
      projection_bytes += static_cast<double>(quantized->bytes());
    } else if (projection.get() != model->head().get()) {
      projection_bytes += static_cast<double>(projection->weight.nbytes());
    }
  }
  for (auto& parameter : model->parameters()) {
    base_parameters += parameter.numel();
    weight_bytes += static_cast<double>(parameter.nbytes());
  }

  std::unique_ptr<peft::Method> peft_method;
  std::string description;
  if (method == "lora" || method == "dora") {
    auto options = std::make_shared<peft::LoraOptions>();
    options->r = rank;
    options->lora_alpha = 2.0 * rank;
    options->target_modules.list = {"q_proj", "k_proj", "v_proj", "o_proj"};
    options->use_dora = method == "dora";
    peft_method = peft::make_lora(options);
    description = std::string(method == "dora" ? "DoRA" : "LoRA") + " r=" + std::to_string(rank) + " on q,k,v,o";
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
  if (gradient_checkpointing) model->set_gradient_checkpointing(trainable);
  model->train();

  // The batches every step cycles through: random tokens, every one scored.
  std::vector<peft::Example> examples;
  std::mt19937_64 lengths(1);
  for (int64_t i = 0; i < 64 * batch; ++i) {
    int64_t size = min_length + static_cast<int64_t>(lengths() % static_cast<uint64_t>(length - min_length + 1));
    auto ids = torch::randint(1, vocab, {size}, torch::kLong);
    std::vector<int64_t> tokens(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + size);
    examples.push_back(peft::Example{tokens, tokens});
  }
  std::vector<peft::Example> rows = packing ? peft::pack_examples(examples, length).rows : examples;
  std::vector<peft::Batch> batches;
  std::vector<double> batch_tokens, batch_flops;
  for (size_t first = 0; first + static_cast<size_t>(batch) <= rows.size(); first += static_cast<size_t>(batch)) {
    std::vector<const peft::Example*> members;
    double tokens = 0, flops = 0;
    for (size_t i = first; i < first + static_cast<size_t>(batch); ++i) {
      members.push_back(&rows[i]);
      auto segments = rows[i].segment_lengths.empty()
                          ? std::vector<int64_t>{static_cast<int64_t>(rows[i].input_ids.size())}
                          : rows[i].segment_lengths;
      for (double n : segments) {
        tokens += n;
        flops += 4.0 * linear_parameters * n + 12.0 * layers * n * n * hidden;
      }
    }
    batches.push_back(peft::collate(members, 0));
    batch_tokens.push_back(tokens);
    batch_flops.push_back(flops);
  }
  const peft::Batch& data = batches.front();  // the full-logits comparison's batch
  size_t next_batch = 0;
  double timed_tokens = 0, timed_flops = 0, padded_tokens = 0;

  auto run = [&](bool fused) {
    for (int64_t i = 0; i < warmup; ++i) {
      auto loss = peft::causal_lm_loss(*model, batches[next_batch++ % batches.size()]);
      loss.backward();
      optimizer.step();
      optimizer.zero_grad();
    }
    std::vector<double> times;
    for (int64_t i = 0; i < steps; ++i) {
      size_t index = next_batch++ % batches.size();
      auto start = Clock::now();
      torch::Tensor loss;
      if (fused) {
        loss = peft::causal_lm_loss(*model, batches[index]);
        timed_tokens += batch_tokens[index], timed_flops += batch_flops[index];
        padded_tokens += static_cast<double>(batches[index].input_ids.numel());
      } else {
        auto logits = model->logits(data.input_ids, data.attention_mask);  // (B, T, V) all at once
        int64_t positions = data.input_ids.size(1) - 1;
        loss = torch::nn::functional::cross_entropy(
            logits.narrow(1, 0, positions).reshape({-1, vocab}), data.labels.narrow(1, 1, positions).reshape({-1}),
            torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
      }
      loss.backward();
      optimizer.step();
      optimizer.zero_grad();
      times.push_back(seconds_since(start));
    }
    return std::make_pair(median(times), std::accumulate(times.begin(), times.end(), 0.0));
  };

  int64_t dequantize_before = peft::dequantize_nanoseconds();
  auto [step_time, timed_seconds] = run(true);
  double dequantize_seconds = static_cast<double>(peft::dequantize_nanoseconds() - dequantize_before) / 1e9;
  double fused_peak = peft::peak_rss_bytes();
  // Measured after training and after reading the peak: run before, its matrices stay in the heap once freed and
  // raise the peak by however much the training's own allocations fail to reuse (50-150 MB on the 58M shape).
  double matmul_rate = matmul_gflops(2048, 5, 4);

  std::printf("peft-bench: %s; %s%s Llama d=%ld, %ld layers, ff %ld, vocab %ld (untied); batch %ld x %ld%s%s%s\n",
              description.c_str(), quantize == "none" ? "" : (quantize + " ").c_str(), dtype.c_str(), long(hidden),
              long(layers), long(intermediate), long(vocab), long(batch), long(length),
              min_length < length
                  ? (", examples of " + std::to_string(min_length) + "-" + std::to_string(length) + " tokens").c_str()
                  : "",
              packing ? ", packed" : "", gradient_checkpointing ? ", gradient checkpointing" : "");
  std::printf("threads                    %d\n", used_threads);
  int64_t trainable_count = 0;
  for (auto& tensor : trainable) trainable_count += tensor.numel();
  std::printf("base parameters            %.1fM (linear %.1fM), trainable %ld\n", base_parameters / 1e6,
              linear_parameters / 1e6, long(trainable_count));
  std::printf("fp32 matmul 2048^2         %.1f GFLOP/s (best round, after training)\n", matmul_rate);
  std::printf("step time (fused loss)     %.3f s (median of %ld)\n", step_time, long(steps));
  std::printf("tokens/s                   %.0f (real tokens; %.0f%% of the batches' positions are padding)\n",
              timed_tokens / timed_seconds, 100.0 * (1.0 - timed_tokens / padded_tokens));
  if (method == "lora") {  // the FLOP count above is LoRA's; LST's side network does other work
    double rate = timed_flops / timed_seconds / 1e9;
    std::printf("achieved                   %.1f GFLOP/s = %.0f%% of matmul rate\n", rate, 100.0 * rate / matmul_rate);
  }
  std::printf("peak RSS                   %.0f MB\n", fused_peak / 1e6);
  std::printf("base weights               %.1f MB (%s; projections %.1f MB%s)\n", weight_bytes / 1e6, dtype.c_str(),
              projection_bytes / 1e6,
              quantize == "none" ? "" : (", " + quantize + (double_quant ? " double-quantized" : "")).c_str());
  if (quantize != "none") {
    std::printf("dequantizing               %.1f%% of the timed steps' time\n",
                100.0 * dequantize_seconds / timed_seconds);
  }
  if (naive_loss_too) {
    double naive_time = run(false).first;
    std::printf("step time (full logits)    %.3f s (fused is %.2fx faster); peak RSS now %.0f MB\n", naive_time,
                naive_time / step_time, peft::peak_rss_bytes() / 1e6);
  }
  return 0;
}
