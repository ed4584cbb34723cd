#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/device.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/process_memory.h"
#include "core/strings.h"
#include "data/batch.h"
#include "data/chat.h"
#include "data/encoder_inputs.h"
#include "data/packing.h"
#include "data/verbalizer.h"
#include "eval/evaluator.h"
#include "io/atomic_file.h"
#include "io/tokenizer.h"
#include "models/export.h"
#include "models/loader.h"
#include "models/torchscript/script_model.h"
#include "models/transformer.h"
#include "peft/adapter_io.h"
#include "peft/composition.h"
#include "peft/modules_to_save.h"
#include "train/checkpoint.h"
#include "train/loss.h"
#include "train/loss_scaler.h"
#include "train/master_weights.h"
#include "train/schedule.h"

namespace peft {
namespace {

using Clock = std::chrono::steady_clock;

// LoRA+'s fast group, as PEFT's create_loraplus_optimizer forms it: lora_B and every one-dimensional tensor.
bool is_loraplus_b_side(const TrainableParameter& parameter) {
  return ends_with(parameter.name, ".lora_B.weight") || parameter.tensor.dim() == 1;
}

std::string with_commas(int64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string format_duration(double seconds) {
  int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  char buffer[32];
  if (s >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%ld:%02ld:%02ld", long(s / 3600), long(s / 60 % 60), long(s % 60));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%ld:%02ld", long(s / 60), long(s % 60));
  }
  return buffer;
}

}  // namespace

std::string ParameterCounts::peft_line() const {
  char percent[32];
  std::snprintf(percent, sizeof(percent), "%.4f", total ? 100.0 * static_cast<double>(trainable) / total : 0.0);
  return "trainable params: " + with_commas(trainable) + " || all params: " + with_commas(total) +
         " || trainable%: " + percent;
}

Trainer::Trainer(RunConfig config) : config_(std::move(config)) {}
Trainer::~Trainer() = default;

void Trainer::setup() {
  // Refuse to replace an earlier run's adapter or model unless asked to: it may be hours of work.
  const std::pair<const char*, const char*> results[] = {{"adapter_model.safetensors", "an adapter"},
                                                         {"model.safetensors", "a model"}};
  for (const auto& [file, what] : results) {
    check(config_.output.overwrite || !resume_request_.empty() ||
              !std::filesystem::exists(config_.output.dir + "/" + file),
          config_.source + ": output.dir " + config_.output.dir + " already holds " + what +
              "; choose another directory or set output.overwrite=true");
  }
  if (!resume_request_.empty()) {
    resume_dir_ = resolve_checkpoint(resume_request_, config_.output.dir);
    check_resumable_config(resume_dir_ + "/run_config.yaml", config_.resolved_yaml);
  } else {
    auto earlier = complete_checkpoints(config_.output.dir);
    if (!config_.output.overwrite && !earlier.empty()) {
      throw Error(config_.source + ": output.dir " + config_.output.dir + " holds checkpoints of an earlier run (" +
                  earlier.back().second +
                  "); continue it with --resume latest, or set output.overwrite=true to start over");
    }
  }
  world_ = world_from_environment();
  int threads = configure_threads(config_.train.threads);
  if (world_.distributed() && config_.train.threads == 0) {
    // The processes of one machine share its cores.
    threads = configure_threads(std::max(1, threads / world_.local_size));
  }
  device_ = resolve_device(config_.model.device);
  if (world_.distributed() && device_.is_cuda() && !device_.has_index()) {
    // One GPU per process of a machine, as torchrun's LOCAL_RANK numbers them.
    config_.model.device = "cuda:" + std::to_string(world_.local_rank);
    device_ = resolve_device(config_.model.device);
  }
  if (world_.distributed()) {
    parallel_ = std::make_unique<DataParallel>(world_, device_);
    if (!world_.leader()) spdlog::set_level(spdlog::level::warn);  // rank 0 speaks for all
    spdlog::info("data parallel: rank {} of {} ({}), {} at {}:{}", world_.rank, world_.size, world_.launcher,
                 parallel_->backend(), world_.master_addr, world_.master_port);
  }
  spdlog::info("device {}, {} thread(s), base dtype {}", device_.str(), threads, config_.model.dtype);

  // An encoder classifies: its head is sized by the training data's labels, read before the model.
  auto family = family_config(config_.model.path, config_.model.arch);
  bool encoder = family && family->is_encoder();
  check(!encoder || config_.data.task == "classification",
        config_.source + ": model.path " + config_.model.path +
            " is an encoder (BERT/RoBERTa), which classifies: set data.task: classification");
  if (config_.data.task == "classification") {
    train_set_ = std::make_unique<ClassificationSet>(load_classification(config_.data.train, config_.data.label_names));
  }
  int64_t num_labels = encoder ? static_cast<int64_t>(train_set_->label_names.size()) : 0;
  torch::manual_seed(static_cast<uint64_t>(config_.train.seed));  // a new classification head is random too
  model_ = load_base_model(config_.model.path, {config_.model.dtype, config_.model.device, num_labels,
                                                config_.model.new_head, config_.model.arch, config_.model.output,
                                                config_.model.quantize, config_.model.double_quant});
  classifier_ = dynamic_cast<SequenceClassifier*>(model_.get());
  script_ = dynamic_cast<ScriptModel*>(model_.get());
  if (script_) check_script_task();
  head_classifies_ = classifier_ || (script_ && script_->output() == ScriptModel::Output::class_logits);
  const auto& model_config = model_->config();
  std::string tokenizer_path = tokenizer_location(config_.model.path, config_.model.tokenizer);
  tokenizer_ = load_tokenizer(tokenizer_path, model_config.bos_token_id, model_config.eos_token_id);
  check(model_config.vocab_size == 0 || tokenizer_->vocab_size() <= model_config.vocab_size,
        "tokenizer in " + tokenizer_path + " has " + std::to_string(tokenizer_->vocab_size()) +
            " tokens but the model's vocab_size is " + std::to_string(model_config.vocab_size));

  // The seed fixes the adapter's initialisation, dropout masks and the data order.
  torch::manual_seed(static_cast<uint64_t>(config_.train.seed));
  method_ = make_methods(config_.peft.methods);
  auto modules = config_.peft.modules_to_save();
  if (classifier_) {
    method_ = with_classifier_head(std::move(method_), *classifier_, modules);
  } else if (!modules.empty()) {
    method_ = with_modules_to_save(std::move(method_), modules);
  }
  method_->prepare(*tokenizer_);
  auto base_flops = count_flops(*model_);
  method_->attach(*model_);
  for (auto& [path, projection] : model_->projections()) {
    // A quantized weight takes no gradient, and neither may its projection's bias (BitFit is refused earlier).
    check(!projection->quantized() || !projection->bias.defined() || !projection->bias.requires_grad(),
          config_.source + ": method '" + method_->name() + "' trains the bias of " + path +
              ", a projection model.quantize stores quantized and frozen");
  }
  flops_ = with_method(base_flops, *method_, *model_);
  if (config_.train.gradient_checkpointing) {
    auto* transformer = dynamic_cast<Transformer*>(model_.get());
    check(transformer != nullptr, config_.source +
                                      ": train.gradient_checkpointing needs a model family the tool "
                                      "knows (Llama, GPT-2, BERT); " +
                                      model_->description() + " is a TorchScript module whose blocks it cannot see");
    std::vector<torch::Tensor> trainable;
    for (const auto& parameter : method_->trainable_parameters()) trainable.push_back(parameter.tensor);
    transformer->set_gradient_checkpointing(std::move(trainable));
  }

  // Virtual tokens (prompt tuning) and prefix keys (prefix tuning) take positions before the real ones. A
  // max_length the config gives must fit beside them; the default is fitted to what the model leaves.
  int64_t virtual_tokens = model_->virtual_tokens() + model_->prefix_positions();
  check(!config_.data.max_length_given || virtual_tokens == 0 ||
            config_.data.max_length <= model_->max_sequence_length(),
        config_.source + ": data.max_length " + std::to_string(config_.data.max_length) + " + " +
            std::to_string(virtual_tokens) +
            " virtual or prefix positions exceed the model's max_position_embeddings " +
            std::to_string(model_config.max_position_embeddings) + "; set data.max_length to at most " +
            std::to_string(model_->max_sequence_length()));
  int64_t max_length = std::min(config_.data.max_length, model_->max_sequence_length());
  if (!config_.data.max_length_given && max_length < config_.data.max_length) {
    spdlog::info("data.max_length {} (the default {}, fitted to the model's {} positions{})", max_length,
                 config_.data.max_length, model_config.max_position_embeddings,
                 virtual_tokens ? " less " + std::to_string(virtual_tokens) + " virtual or prefix positions"
                                : std::string());
  }
  if (config_.data.task == "classification") {
    load_classification_data(max_length);
  } else {
    // The model's chat template (or data.chat_template) renders conversation records.
    std::string unavailable;
    chat_ = load_chat_format(config_.data.chat_template, tokenizer_config_directory(tokenizer_path), *tokenizer_,
                             unavailable);
    ChatOptions chat{chat_.get(), config_.data.train_on == "all", unavailable};
    train_examples_ = load_examples(config_.data.train, *tokenizer_, max_length, chat);
    if (!config_.data.eval.empty()) {
      eval_examples_ = load_examples(config_.data.eval, *tokenizer_, max_length, chat);
      if (config_.data.max_eval_examples > 0 &&
          static_cast<int64_t>(eval_examples_.size()) > config_.data.max_eval_examples) {
        eval_examples_.resize(static_cast<size_t>(config_.data.max_eval_examples));
      }
    }
  }

  for (const auto& example : train_examples_) {
    int64_t scored = head_positions(example);  // labels that take loss after the causal shift
    train_example_flops_.push_back(flops_.training(static_cast<int64_t>(example.input_ids.size()), scored));
    train_example_scored_.push_back(head_classifies_ ? 1 : scored);
  }
  if (config_.data.packing) pack_training_examples(max_length);
  for (const auto& parameter : model_->parameters()) {
    counts_.total += parameter.numel();
    if (parameter.requires_grad()) {
      counts_.trainable += parameter.numel();
    } else {
      counts_.base_weight_bytes += static_cast<double>(parameter.nbytes());
    }
  }
  int64_t quantized = 0;
  double quantized_bytes = 0;
  for (auto& [path, projection] : model_->projections()) {  // quantized weights are no parameters, but count
    if (!projection->quantized()) continue;
    counts_.total += projection->quantized()->numel();
    quantized_bytes += static_cast<double>(projection->quantized()->bytes());
    ++quantized;
  }
  counts_.base_weight_bytes += quantized_bytes;
  if (quantized > 0) {
    spdlog::info("base weights {:.1f} MB: {} projection(s) stored {}{} in {:.1f} MB, the rest {}",
                 counts_.base_weight_bytes / 1e6, quantized, config_.model.quantize,
                 config_.model.double_quant ? " (double quantization)" : "", quantized_bytes / 1e6,
                 config_.model.dtype);
  }
}

// data.packing: the training examples become packed rows, each counting its examples' FLOPs and scored tokens.
void Trainer::pack_training_examples(int64_t max_length) {
  const std::string why = config_.source + ": data.packing puts several examples in one row; ";
  check(!head_classifies_, why + model_->description() + " classifies each row with its head");
  auto* transformer = dynamic_cast<Transformer*>(model_.get());
  check(transformer != nullptr,
        why + model_->description() + " is a TorchScript module, whose forward cannot keep them apart");
  check(model_->virtual_tokens() + model_->prefix_positions() == 0,
        why +
            "the virtual tokens of prompt and prefix tuning would belong to one example only; set data.packing: "
            "false");
  check(!transformer->hooks.stack, why + "Ladder Side-Tuning's side network reads whole rows; set data.packing: false");
  auto packed = pack_examples(train_examples_, max_length);
  std::vector<double> flops(packed.rows.size(), 0.0);
  std::vector<int64_t> scored(packed.rows.size(), 0);
  int64_t tokens = 0;
  for (size_t row = 0; row < packed.rows.size(); ++row) {
    for (size_t index : packed.members[row]) {
      flops[row] += train_example_flops_[index];
      scored[row] += train_example_scored_[index];
    }
    tokens += static_cast<int64_t>(packed.rows[row].input_ids.size());
  }
  spdlog::info("packed {} examples into {} rows of up to {} tokens ({:.1f}% of the rows' tokens are examples')",
               train_examples_.size(), packed.rows.size(), max_length,
               packed.rows.empty() ? 0.0 : 100.0 * tokens / (static_cast<double>(packed.rows.size()) * max_length));
  train_examples_ = std::move(packed.rows);
  train_example_flops_ = std::move(flops);
  train_example_scored_ = std::move(scored);
}

// A TorchScript module's output must fit the task: token logits (or its own loss) for language modelling; class
// logits, or token logits for rank classification, for classification.
void Trainer::check_script_task() const {
  auto output = script_->output();
  bool classification = config_.data.task == "classification";
  check(classification || output != ScriptModel::Output::class_logits,
        config_.source + ": " + script_->description() +
            " returns class logits; set data.task: classification (language modelling needs [batch, tokens, vocab])");
  check(!classification || output != ScriptModel::Output::loss,
        config_.source + ": " + script_->description() +
            " returns a loss, which gives no predictions to classify with; export it returning logits and set "
            "model.output: logits");
  if (classification && output == ScriptModel::Output::class_logits) {
    check(script_->config().num_labels == static_cast<int64_t>(train_set_->label_names.size()),
          config_.source + ": " + script_->description() + " returns " + std::to_string(script_->config().num_labels) +
              " class logits but " + config_.data.train + " has " + std::to_string(train_set_->label_names.size()) +
              " labels");
  }
}

// Labelled texts become prompts and label words (data/verbalizer.h); the held-out set, in the training set's
// label order, is also kept as candidates for rank classification.
void Trainer::load_classification_data(int64_t max_length) {
  const auto& d = config_.data;
  const auto& train_set = *train_set_;
  if (head_classifies_) {
    check(d.template_text.empty() && d.verbalizers.empty(),
          config_.source + ": data.template and data.verbalizers are for causal LMs (rank classification); " +
              model_->description() + " classifies with its head");
    auto special = encoder_special_tokens(*tokenizer_, model_->config(),
                                          tokenizer_location(config_.model.path, config_.model.tokenizer));
    train_examples_ = encoder_examples(train_set, *tokenizer_, special, max_length);
    if (d.eval.empty()) return;
    eval_set_ = std::make_unique<ClassificationSet>(load_classification(d.eval, train_set.label_names));
    if (d.max_eval_examples > 0 && static_cast<int64_t>(eval_set_->examples.size()) > d.max_eval_examples) {
      eval_set_->examples.resize(static_cast<size_t>(d.max_eval_examples));
    }
    eval_examples_ = encoder_examples(*eval_set_, *tokenizer_, special, max_length);
    return;
  }
  Verbalizer verbalizer = Verbalizer::defaults(train_set);
  if (!d.template_text.empty()) verbalizer.template_text = d.template_text;
  if (!d.verbalizers.empty()) verbalizer.label_words = d.verbalizers;
  check_verbalizer(verbalizer, train_set, config_.source + ": data.verbalizers / data.template");
  train_examples_ = verbalized_examples(train_set, verbalizer, *tokenizer_, max_length);
  if (d.eval.empty()) return;
  eval_set_ = std::make_unique<ClassificationSet>(load_classification(d.eval, train_set.label_names));
  if (d.max_eval_examples > 0 && static_cast<int64_t>(eval_set_->examples.size()) > d.max_eval_examples) {
    eval_set_->examples.resize(static_cast<size_t>(d.max_eval_examples));
  }
  check(eval_set_->pairs == train_set.pairs,
        d.eval + ": holds " + (eval_set_->pairs ? "text pairs" : "single texts") + " but " + d.train + " does not");
  eval_examples_ = verbalized_examples(*eval_set_, verbalizer, *tokenizer_, max_length);
  eval_candidates_ = verbalized_candidates(*eval_set_, verbalizer, *tokenizer_, max_length);
}

std::optional<ClassificationReport> Trainer::classify_held_out(int64_t step) {
  if (!eval_set_ || !world_.leader()) return std::nullopt;
  int64_t batch_size = config_.train.eval_batch_size > 0 ? config_.train.eval_batch_size : config_.train.batch_size;
  auto report = head_classifies_
                    ? classify_with_head(*model_, *eval_set_, eval_examples_, batch_size, tokenizer_->pad_id(), device_)
                    : rank_classify(*model_, *eval_set_, eval_candidates_, batch_size, tokenizer_->pad_id(), device_);
  const auto& m = report.metrics;
  log_json({{"step", step},
            {"eval_accuracy", m.accuracy},
            {"eval_f1", m.f1},
            {"eval_macro_f1", m.macro_f1},
            {"eval_matthews", m.matthews},
            {"majority_accuracy", report.majority_accuracy}});
  return report;
}

bool Trainer::writes_model() const { return method_->writes_model(); }

int64_t Trainer::pad_id() const { return tokenizer_->pad_id(); }

void Trainer::print_summary() const {
  if (!world_.leader()) return;
  if (method_->writes_model()) {
    std::printf("%s on %s: every parameter trains (%zu tensors)\n", method_->name().c_str(), config_.model.path.c_str(),
                method_->targets().size());
  } else {
    std::printf("%s on %s: %zu module(s) adapted\n", method_->name().c_str(), config_.model.path.c_str(),
                method_->targets().size());
  }
  for (const auto& target : method_->targets()) std::printf("  %s\n", target.c_str());
  std::printf("%s\n", counts_.peft_line().c_str());
  std::fflush(stdout);
}

void Trainer::log_json(const nlohmann::json& record) {
  if (!log_.is_open()) return;
  log_ << record.dump() << '\n' << std::flush;
  // A full disk must stop the run, not silently end the log.
  if (!log_) throw Error("cannot write the training log " + log_path_ + ": " + std::strerror(errno));
}

double Trainer::evaluate_held_out(int64_t step) {
  if (eval_examples_.empty() || !world_.leader()) return -1.0;
  int64_t batch_size = config_.train.eval_batch_size > 0 ? config_.train.eval_batch_size : config_.train.batch_size;
  if (head_classifies_) {  // the held-out loss of a classifier: mean cross-entropy of the true classes
    double loss = 0.0;
    classify_with_head(*model_, *eval_set_, eval_examples_, batch_size, tokenizer_->pad_id(), device_, &loss);
    log_json({{"step", step}, {"eval_loss", loss}});
    return loss;
  }
  auto result = evaluate(*model_, eval_examples_, batch_size, tokenizer_->pad_id(), device_);
  log_json({{"step", step},
            {"eval_loss", result.loss},
            {"eval_perplexity", result.perplexity},
            {"eval_tokens", result.tokens}});
  return result.loss;
}

// A checkpoint's directory must be this run's output.dir for its log to be continued; otherwise a new log starts.
void Trainer::open_log(const TrainingProgress* resumed) {
  namespace fs = std::filesystem;
  if (!world_.leader()) return;
  log_path_ = config_.output.dir + "/train_log.jsonl";
  std::error_code error;
  bool continue_log = resumed && fs::equivalent(fs::path(resume_dir_).parent_path(), config_.output.dir, error) &&
                      fs::exists(log_path_) && static_cast<int64_t>(fs::file_size(log_path_)) >= resumed->log_bytes;
  if (continue_log) {
    // Lines written after the checkpoint belong to steps that will be trained again.
    fs::resize_file(log_path_, static_cast<uintmax_t>(resumed->log_bytes), error);
    check(!error, "cannot continue the training log " + log_path_ + ": " + error.message());
  }
  log_.open(log_path_, continue_log ? std::ios::app : std::ios::trunc);
  check(log_.good(), "cannot write the training log " + log_path_ + ": " + std::strerror(errno));
}

// The CUDA allocator's peak on a GPU (what the step's tensors needed), else the process's peak resident set.
double Trainer::peak_memory_bytes() const {
  return device_.is_cuda() ? cuda_peak_bytes(std::max<int>(0, device_.index())) : peak_rss_bytes();
}

TrainSummary Trainer::train() {
  const auto& t = config_.train;
  const bool leader = world_.leader();
  if (leader) ensure_directory(config_.output.dir);

  // 16-bit trainable tensors (BitFit's biases, full fine-tuning's weights on a 16-bit base) are optimised through
  // float32 masters; everything below the backward pass works on those.
  MasterWeights masters(method_->trainable_parameters());
  if (masters.separate_count() > 0) {
    spdlog::info("{} trainable tensor(s) are {}: optimised through float32 master copies ({})",
                 masters.separate_count(), config_.model.dtype, format_bytes(masters.separate_bytes()));
  }
  // AdamW over the method's parameters only; scale vectors and biases are exempt from weight decay. LoRA+ puts
  // lora_B and one-dimensional tensors in groups of their own at loraplus_lr_ratio × the learning rate.
  auto adam = [&](double decay) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(t.learning_rate)
                                                            .betas({t.adam_beta1, t.adam_beta2})
                                                            .eps(t.adam_epsilon)
                                                            .weight_decay(decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  std::vector<double> group_lr_ratios;  // per group: its learning rate over the schedule's
  for (bool faster : {false, true}) {
    for (bool decay : {true, false}) {
      std::vector<torch::Tensor> tensors;
      for (const auto& parameter : masters.optimised()) {
        bool b_side = t.loraplus_lr_ratio != 1.0 && is_loraplus_b_side(parameter);
        if (parameter.weight_decay == decay && b_side == faster) tensors.push_back(parameter.tensor);
      }
      if (tensors.empty()) continue;  // the empty groups are left out
      groups.emplace_back(tensors, adam(decay ? t.weight_decay : 0.0));
      group_lr_ratios.push_back(faster ? t.loraplus_lr_ratio : 1.0);
    }
  }
  check(!groups.empty(), "method '" + method_->name() + "' has no trainable parameters");
  if (t.loraplus_lr_ratio != 1.0) {
    int64_t fast = 0;
    for (size_t g = 0; g < groups.size(); ++g)
      fast += group_lr_ratios[g] != 1.0 ? int64_t(groups[g].params().size()) : 0;
    spdlog::info("LoRA+: {} tensor(s) (lora_B, one-dimensional) at {} x the learning rate", fast, t.loraplus_lr_ratio);
  }
  torch::optim::AdamW optimizer(groups, *adam(t.weight_decay));

  BatchSampler sampler(train_examples_.size(), t.batch_size, config_.data.shuffle, static_cast<uint64_t>(t.seed));
  int64_t batches = static_cast<int64_t>(sampler.batches_per_epoch());
  int64_t steps_per_epoch = (batches + t.gradient_accumulation_steps - 1) / t.gradient_accumulation_steps;
  int64_t total_steps = t.max_steps > 0 ? t.max_steps : t.epochs * steps_per_epoch;
  Schedule schedule{t.lr_scheduler, t.learning_rate,
                    t.warmup_steps > 0 ? t.warmup_steps : static_cast<int64_t>(std::ceil(t.warmup_ratio * total_steps)),
                    total_steps};
  std::vector<torch::Tensor> parameters = masters.optimised_tensors();

  LossScaler scaler(config_.model.dtype == "float16");
  TrainSummary summary;
  summary.total_steps = total_steps;
  std::string fingerprint = fingerprint_examples(train_examples_);
  TrainingProgress progress;
  if (!resume_dir_.empty()) {
    progress = read_checkpoint(resume_dir_, masters.optimised(), optimizer);
    masters.masters_to_model();
    scaler.restore(progress.loss_scale, progress.loss_scale_good_steps);
    check(progress.examples == static_cast<int64_t>(train_examples_.size()) &&
              progress.data_fingerprint == fingerprint && progress.epoch_order == sampler.order(progress.epoch),
          "cannot resume from " + resume_dir_ + ": the training data (" + config_.data.train +
              ", as tokenized) differs from the data the checkpoint was trained on");
    if (progress.total_steps != total_steps) {
      spdlog::warn("resuming a run of {} steps as one of {}: the learning-rate schedule follows the new length",
                   progress.total_steps, total_steps);
    }
    open_log(&progress);
    log_json({{"event", "resumed"}, {"step", progress.step}, {"checkpoint", resume_dir_}});
    if (leader) {
      std::fprintf(stderr, "resuming from %s at step %ld/%ld\n", resume_dir_.c_str(), long(progress.step),
                   long(total_steps));
    }
  } else {
    // An earlier run's checkpoints, now replaced.
    if (config_.output.overwrite && leader) remove_checkpoints(config_.output.dir);
    open_log(nullptr);
    progress.examples = static_cast<int64_t>(train_examples_.size());
    progress.data_fingerprint = fingerprint;
    method_->initialise_from_data(*model_, train_examples_, tokenizer_->pad_id());
    masters.model_to_masters();
    if (parallel_) {
      // Every rank starts from rank 0's adapter and then draws its own dropout masks.
      parallel_->broadcast_from_leader(parameters);
      masters.masters_to_model();
      torch::manual_seed(static_cast<uint64_t>(t.seed) + static_cast<uint64_t>(world_.rank));
    }
    progress.base_eval_loss = evaluate_held_out(0);
    if (progress.base_eval_loss >= 0)
      std::fprintf(stderr, "held-out loss before training: %.4f\n", progress.base_eval_loss);
    progress.base_classification = classify_held_out(0);
    if (progress.base_classification) {
      std::fprintf(stderr, "held-out classification before training: %s\n",
                   format_report(*progress.base_classification).c_str());
    }
  }
  progress.total_steps = total_steps;
  summary.base_eval_loss = progress.base_eval_loss;
  summary.base_classification = progress.base_classification;
  summary.final_train_loss = progress.final_train_loss;
  if (leader) {
    std::fprintf(stderr, "training %ld step(s): %zu examples, batch %ld x %ld accumulation, %ld batch(es) per epoch\n",
                 long(total_steps), train_examples_.size(), long(t.batch_size), long(t.gradient_accumulation_steps),
                 long(batches));
  }
  if (parallel_) {
    int64_t per_process = (t.batch_size + world_.size - 1) / world_.size;
    if (leader) {
      std::fprintf(stderr,
                   "data parallel over %d processes (%s): each computes up to %ld of every batch of %ld; effective "
                   "batch %ld examples per optimiser step\n",
                   world_.size, parallel_->backend().c_str(), long(per_process), long(t.batch_size),
                   long(t.batch_size * t.gradient_accumulation_steps));
    }
    log_json({{"event", "data_parallel"},
              {"world_size", world_.size},
              {"backend", parallel_->backend()},
              {"batch_size", t.batch_size},
              {"per_process_batch_size", per_process},
              {"effective_batch_size", t.batch_size * t.gradient_accumulation_steps}});
  }

  bool interactive = isatty(fileno(stderr));
  model_->train();
  auto start = Clock::now();
  double evaluating = 0.0;  // seconds spent on held-out evaluation inside the loop
  const int64_t first_step = progress.step;
  const double earlier_seconds = progress.train_seconds;
  auto seconds_training = [&] {
    return earlier_seconds + std::chrono::duration<double>(Clock::now() - start).count() - evaluating;
  };
  auto save_checkpoint = [&] {
    if (!leader) return;
    progress.train_seconds = seconds_training();
    log_.flush();
    progress.log_bytes = static_cast<int64_t>(std::filesystem::file_size(log_path_));
    progress.epoch_order = sampler.order(progress.epoch);
    progress.loss_scale = scaler.scale();
    progress.loss_scale_good_steps = scaler.good_steps();
    write_checkpoint(config_.output.dir,
                     {*method_, masters.optimised(), optimizer, config_.model.path, config_.resolved_yaml}, progress);
    prune_checkpoints(config_.output.dir, t.keep_checkpoints);
    summary.checkpoint = checkpoint_directory(config_.output.dir, progress.step);
    spdlog::info("checkpoint written: {}", summary.checkpoint);
  };

  int64_t step = progress.step, micro = 0;
  double step_loss = 0.0;
  std::string nonfinite;                        // what was NaN/Inf in the step being accumulated, or empty
  summary.interrupted = interrupt_requested();  // e.g. during the evaluation before training
  for (int64_t epoch = progress.epoch; step < total_steps && !summary.interrupted; ++epoch) {
    int64_t first_batch = epoch == progress.epoch ? progress.next_batch : 0;
    for (int64_t index = first_batch; index < batches && step < total_steps; ++index) {
      auto indices = sampler.batch(epoch, static_cast<size_t>(index));
      int64_t scored = 0;  // over the whole batch, whichever process computes it
      for (size_t i : indices) scored += train_example_scored_[i];
      // A language-modelling batch whose labels are all -100 has nothing to learn from.
      if (scored > 0) {
        std::vector<const Example*> members;  // this process's share: all of it, or its data-parallel shard
        int64_t shard_scored = 0;
        for (size_t position : shard_positions(indices.size(), world_.rank, world_.size)) {
          members.push_back(&train_examples_[indices[position]]);
          shard_scored += train_example_scored_[indices[position]];
        }
        if (shard_scored > 0) {
          Batch batch = collate(members, tokenizer_->pad_id()).to(device_);
          auto loss = training_loss(*model_, batch);
          // The mean over the whole batch is the sum of each shard's mean weighted by its share of the scored
          // tokens (of the examples, for a classifier): summing the ranks' gradients then gives the batch's. One
          // process has all of it (share 1, exact).
          double share = static_cast<double>(shard_scored) / static_cast<double>(scored);
          (scaler.scaled(loss) * share / static_cast<double>(t.gradient_accumulation_steps)).backward();
          masters.accumulate_gradients();
          // Read after backward is queued, so that a GPU is not idle while the host waits for the value.
          double value = loss.item<double>();
          if (!std::isfinite(value) && nonfinite.empty()) nonfinite = "loss (" + std::to_string(value) + ")";
          step_loss += value * share;
        }
        for (size_t i : indices) {
          progress.tokens += static_cast<int64_t>(train_examples_[i].input_ids.size());
          progress.training_flops += train_example_flops_[i];
        }
        ++micro;
      }
      bool epoch_end = index + 1 == batches;
      if (micro == 0 || (micro % t.gradient_accumulation_steps != 0 && !epoch_end)) continue;

      int64_t accumulated = (micro - 1) % t.gradient_accumulation_steps + 1;
      // One all-reduce per step: the gradients, the loss, and whether any process was asked to stop, so that all
      // of them take the same decisions below.
      int stop_signal = interrupt_requested();
      if (parallel_) {
        auto bucket = flatten_gradients(parameters, {step_loss, stop_signal ? 1.0 : 0.0});
        parallel_->all_reduce_sum(bucket);
        auto sums = unflatten_gradients(bucket, parameters, 2);
        step_loss = sums[0];
        if (!std::isfinite(step_loss) && nonfinite.empty()) nonfinite = "loss (" + std::to_string(step_loss) + ")";
        if (sums[1] > 0 && !stop_signal) stop_signal = SIGTERM;  // another process was
      }
      double lr = schedule.at(step);
      for (size_t g = 0; g < optimizer.param_groups().size(); ++g) {
        static_cast<torch::optim::AdamWOptions&>(optimizer.param_groups()[g].options()).lr(lr * group_lr_ratios[g]);
      }
      // float16: gradients back to their size; an overflow skips the step at a halved scale (not an error
      // unless it persists at scale 1).
      double scale_before = scaler.scale();
      bool overflow = !scaler.unscale_and_update(parameters);
      if (overflow && scale_before <= 1.0 && nonfinite.empty())
        nonfinite = "gradient (float16 overflow at loss scale 1)";
      // Without clipping the norm is still measured (an infinite bound scales by 1): it is logged and checked.
      double bound = t.max_grad_norm > 0 ? t.max_grad_norm : std::numeric_limits<double>::infinity();
      double grad_norm = overflow ? std::nan("") : torch::nn::utils::clip_grad_norm_(parameters, bound);
      if (!overflow && !std::isfinite(grad_norm) && nonfinite.empty())
        nonfinite = "gradient (norm " + std::to_string(grad_norm) + ")";
      micro = 0;
      ++step;
      progress.step = step;
      progress.epoch = epoch_end ? epoch + 1 : epoch;
      progress.next_batch = epoch_end ? 0 : index + 1;

      if (overflow && nonfinite.empty()) {
        optimizer.zero_grad();
        step_loss = 0.0;
        log_json({{"step", step}, {"skipped", "float16 gradient overflow"}, {"loss_scale", scaler.scale()}});
        spdlog::info("step {}: float16 gradients overflowed at loss scale {}; step skipped, scale now {}", step,
                     scale_before, scaler.scale());
      } else if (!nonfinite.empty()) {
        optimizer.zero_grad();
        step_loss = 0.0;
        std::string what = "step " + std::to_string(step) + ": non-finite " + nonfinite;
        nonfinite.clear();
        check(t.on_nonfinite == "skip",
              what + "; stopping (train.on_nonfinite: stop), nothing of this step is saved" +
                  (summary.checkpoint.empty() ? "" : "; last checkpoint " + summary.checkpoint) +
                  "; lower train.learning_rate or set train.on_nonfinite: skip");
        ++progress.nonfinite_skipped;
        ++progress.nonfinite_in_a_row;
        log_json({{"step", step}, {"skipped", what}, {"lr", lr}});
        spdlog::warn("{}; step skipped ({} in a row, {} in all)", what, progress.nonfinite_in_a_row,
                     progress.nonfinite_skipped);
        check(progress.nonfinite_in_a_row < t.max_nonfinite_in_a_row,
              what + "; " + std::to_string(progress.nonfinite_in_a_row) +
                  " non-finite steps in a row (train.max_nonfinite_in_a_row), stopping; lower train.learning_rate");
      } else {
        optimizer.step();
        optimizer.zero_grad();
        masters.masters_to_model();
        progress.nonfinite_in_a_row = 0;
        double mean_loss = step_loss / static_cast<double>(accumulated);
        step_loss = 0.0;
        progress.final_train_loss = mean_loss;

        double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        double tokens_per_second = progress.tokens / std::max(seconds_training(), 1e-9);
        double eta = elapsed / static_cast<double>(step - first_step) * static_cast<double>(total_steps - step);
        double peak_memory = peak_memory_bytes();
        log_json({{"step", step},
                  {"epoch", epoch},
                  {"loss", mean_loss},
                  {"lr", lr},
                  {"grad_norm", grad_norm},
                  {"tokens", progress.tokens},
                  {"tokens_per_second", tokens_per_second},
                  {"peak_memory_bytes", peak_memory},
                  {"elapsed_seconds", elapsed}});
        bool report = step % std::max<int64_t>(1, t.log_every) == 0 || step == total_steps;
        if (leader && (interactive || report)) {
          std::fprintf(stderr, "%sstep %ld/%ld | loss %.4f | lr %.2e | %.0f tok/s | peak %s | ETA %s%s",
                       interactive ? "\r\033[K" : "", long(step), long(total_steps), mean_loss, lr, tokens_per_second,
                       format_bytes(peak_memory).c_str(), format_duration(eta).c_str(),
                       interactive && !report ? "" : "\n");
        }
      }
      if (t.eval_every > 0 && step % t.eval_every == 0 && step < total_steps) {
        auto eval_start = Clock::now();
        double eval_loss = evaluate_held_out(step);
        if (eval_loss >= 0) std::fprintf(stderr, "step %ld: held-out loss %.4f\n", long(step), eval_loss);
        evaluating += std::chrono::duration<double>(Clock::now() - eval_start).count();
      }
      // One process notices a signal as late as possible; data-parallel ones all take the step's shared decision.
      summary.interrupted = step < total_steps ? (parallel_ ? stop_signal : interrupt_requested()) : 0;
      if ((t.save_every > 0 && step % t.save_every == 0) || summary.interrupted) save_checkpoint();
      if (summary.interrupted) break;
    }
  }
  summary.steps = step;
  summary.train_seconds = seconds_training();
  summary.trained_tokens = progress.tokens;
  summary.training_flops = progress.training_flops;
  summary.final_train_loss = progress.final_train_loss;
  summary.nonfinite_skipped = progress.nonfinite_skipped;
  if (summary.interrupted) return summary;
  summary.final_eval_loss = evaluate_held_out(step);
  summary.final_classification = classify_held_out(step);
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  log_json({{"event", "done"},
            {"steps", step},
            {"elapsed_seconds", elapsed},
            {"train_seconds", summary.train_seconds},
            {"training_flops", summary.training_flops},
            {"skipped_steps", summary.nonfinite_skipped},
            {"base_eval_loss", summary.base_eval_loss},
            {"final_eval_loss", summary.final_eval_loss},
            {"base_weight_bytes", counts_.base_weight_bytes}});
  return summary;
}

void Trainer::save() const {
  if (!world_.leader()) return;  // data-parallel ranks hold the same adapter; rank 0 writes it
  check_finite_parameters(*method_, method_->writes_model() ? "the model" : "the adapter");
  if (method_->writes_model() && script_) {
    ensure_directory(config_.output.dir);
    script_->save(config_.output.dir + "/model.pt");
  } else if (method_->writes_model()) {
    save_model_directory(dynamic_cast<Transformer&>(*model_), config_.model.path, config_.output.dir,
                         stored_dtype(config_.model.path));
  } else {
    save_adapter(config_.output.dir, *method_, config_.model.path);
  }
  write_file_atomic(config_.output.dir + "/run_config.yaml", config_.resolved_yaml);
}

}  // namespace peft
