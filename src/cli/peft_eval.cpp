// peft-eval --model DIR [--adapter DIR] --data FILE [--per-example OUT.jsonl]
// peft-eval --model DIR [--adapter DIR] --data FILE --task classification [--template T] [--verbalizers W ...]
//           [--label-names N ...] [--predictions OUT.jsonl]
// peft-eval --model DIR [--adapter DIR] --data FILE --task generation [--template T] [--stop S ...]
//           [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--predictions OUT.jsonl]
// peft-eval --model DIR [--adapter DIR] --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-p P]
// Any --data evaluation: [--icl-shots K --icl-from TRAIN_FILE] puts K demonstrations from the training file before
// each input (in-context learning, eval/in_context.h). Every evaluation reports its counted FLOPs per example.
// Measures held-out loss and perplexity, classification metrics (rank classification or a head), generation metrics
// (BLEU, ROUGE-L, exact match against one or more references), or generates a continuation. --json FILE writes
// every number of the evaluation.
// For classification the template, verbalisers, label names and max length default to those the adapter was
// trained with (its run_config.yaml), then to the built-in defaults.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/main_guard.h"
#include "config/run_config.h"
#include "core/device.h"
#include "data/chat.h"
#include "data/classification.h"
#include "data/encoder_inputs.h"
#include "data/verbalizer.h"
#include "eval/classify.h"
#include "eval/evaluator.h"
#include "eval/flops.h"
#include "eval/generate.h"
#include "eval/generation_task.h"
#include "eval/in_context.h"
#include "io/atomic_file.h"
#include "io/tokenizer.h"
#include "models/loader.h"
#include "models/sequence_classifier.h"
#include "models/torchscript/script_model.h"
#include "peft/adapter_io.h"

namespace {

// One JSON object per line, `row(i)` for i < count, written atomically (--predictions, --per-example).
void write_jsonl(const std::string& path, size_t count, const std::function<nlohmann::json(size_t)>& row) {
  std::string lines;
  for (size_t i = 0; i < count; ++i) lines += row(i).dump() + "\n";
  peft::write_file_atomic(path, lines);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Evaluate a base model, optionally with an adapter: held-out loss or generation."};
  std::string model_dir, adapter_dir, data_path, per_example_path, tokenizer_path;
  std::vector<std::string> prompt;
  std::string device = "auto", dtype = "float32";
  int64_t max_length = 512, batch_size = 8, threads = 0;
  peft::GenerationOptions generation;
  app.add_option("--model,-m", model_dir, "base model: HF directory or TorchScript archive (.pt)")->required();
  app.add_option("--adapter,-a", adapter_dir, "adapter directory written by peft-train (or HF PEFT)");
  app.add_option("--tokenizer", tokenizer_path, "tokenizer file or directory (default: the model directory)");
  auto* data = app.add_option("--data,-d", data_path, "held-out data (.jsonl or .txt; classification: .tsv or .jsonl)");
  auto* prompt_option =
      app.add_option("--prompt,-p", prompt, "generate a continuation of this text (repeat to generate a batch)");
  data->excludes(prompt_option);
  app.add_option("--per-example", per_example_path, "write one JSON line per example: index, tokens, loss")
      ->needs(data);
  std::string task = "language_modeling", template_text, predictions_path;
  std::vector<std::string> verbalizers, label_names;
  app.add_option("--task", task,
                 "language_modeling (loss, perplexity) | classification (accuracy, F1, MCC) | generation (BLEU, "
                 "ROUGE-L, exact match)")
      ->check(CLI::IsMember({"language_modeling", "classification", "generation"}))
      ->needs(data);
  app.add_option("--template", template_text,
                 "classification prompt with {text} / {text_a} / {text_b}; generation prompt with {source}");
  std::vector<std::string> stop;
  app.add_option("--stop", stop, "generation: cut each output at the first of these strings")->needs(data);
  std::string json_path;
  app.add_option("--json", json_path, "write every number of the evaluation to this JSON file");
  app.add_option("--verbalizers", verbalizers, "label words, one per label in label order");
  app.add_option("--label-names", label_names, "label order (default: the task's customary order)");
  app.add_option("--predictions", predictions_path, "classification / generation: write one JSON line per example");
  app.add_option("--max-length", max_length, "tokens per example / window")->check(CLI::Range(2, 1 << 20));
  app.add_option("--batch-size", batch_size, "examples per batch")->check(CLI::PositiveNumber);
  app.add_option("--max-new-tokens", generation.max_new_tokens, "tokens to generate")->check(CLI::NonNegativeNumber);
  app.add_option("--temperature", generation.temperature, "0 = greedy")->check(CLI::NonNegativeNumber);
  app.add_option("--top-p", generation.top_p, "nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  app.add_option("--top-k", generation.top_k, "sample from the k most likely tokens (0 = all)");
  app.add_option("--seed", generation.seed, "sampling seed");
  bool no_kv_cache = false;
  app.add_flag("--no-kv-cache", no_kv_cache,
               "generate by re-running the whole sequence for every token (the slow reference path)");
  app.add_option("--device", device, "auto | cpu | cuda | cuda:N");
  app.add_option("--dtype", dtype, "float32 | bfloat16 | float16");
  app.add_option("--threads", threads, "intra-op threads (0 = all cores)");
  std::string quantize = "none";
  app.add_option("--quantize", quantize,
                 "store the base's projections quantized, as model.quantize: none | nf4 | int8 (default: none; the "
                 "adapter is one for the unquantized base)")
      ->check(CLI::IsMember({"none", "nf4", "int8"}));
  bool double_quant = false;
  app.add_flag("--double-quant", double_quant, "with --quantize nf4: the block maxima in 8 bits too");
  int64_t icl_shots = 0;
  std::string icl_from;
  app.add_option("--icl-shots", icl_shots, "in-context learning: demonstrations before each held-out input")
      ->check(CLI::NonNegativeNumber)
      ->needs(data);
  app.add_option("--icl-from", icl_from, "the training file the demonstrations are drawn from (seeded by --seed)");
  bool chat = false;
  std::string chat_template;
  app.add_flag("--chat", chat,
               "--prompt / --task generation: the prompt is a user turn rendered with the chat template and its "
               "generation prompt; generation stops at the template's end of turn");
  app.add_option("--chat-template", chat_template,
                 "the chat template for --chat and conversation data: a file or a built-in (simple, chatml); "
                 "default the model's own (tokenizer_config.json)");
  std::string arch = "auto", output = "logits";
  app.add_option("--arch", arch, "TorchScript base: auto | custom | a family's model_type (default: the adapter's)");
  app.add_option("--output", output,
                 "custom TorchScript base: what forward returns, logits | loss (default: the adapter's)")
      ->check(CLI::IsMember({"logits", "loss"}));
  CLI11_PARSE(app, argc, argv);
  generation.kv_cache = !no_kv_cache;

  return peft::run_main([&] {
    peft::check(!data_path.empty() || !prompt.empty(), "give --data FILE to measure loss or --prompt TEXT to generate");
    peft::check(task == "classification" || (verbalizers.empty() && label_names.empty()),
                "--verbalizers and --label-names need --task classification");
    peft::check(task != "language_modeling" || (template_text.empty() && predictions_path.empty()),
                "--template and --predictions need --task classification or generation");
    peft::check(task == "generation" || stop.empty(), "--stop needs --task generation");
    peft::check(!double_quant || quantize == "nf4", "--double-quant applies to --quantize nf4");
    peft::check(!chat || !prompt.empty() || task == "generation", "--chat applies to --prompt and --task generation");
    peft::check(!chat || icl_shots == 0, "--chat and --icl-shots do not combine (demonstrations are plain text)");
    peft::check(icl_shots == 0 || !icl_from.empty(),
                "--icl-shots needs --icl-from TRAIN_FILE to draw demonstrations from");
    peft::check(icl_shots > 0 || icl_from.empty(), "--icl-from needs --icl-shots K (K > 0)");
    // Every number printed also goes to --json FILE.
    nlohmann::json numbers = {{"model", model_dir}, {"adapter", adapter_dir}, {"data", data_path}, {"task", task}};
    auto write_numbers = [&] {
      if (!json_path.empty()) peft::write_file_atomic(json_path, numbers.dump(2) + "\n");
    };
    std::string icl_setting = "--icl-shots " + std::to_string(icl_shots);
    // The K demonstrations, drawn once for every held-out input.
    auto draw = [&](size_t available) {
      auto drawn = peft::draw_demonstrations(available, icl_shots, generation.seed, icl_from);
      numbers["icl"] = {{"shots", icl_shots}, {"from", icl_from}, {"seed", generation.seed}, {"drawn", drawn}};
      return drawn;
    };
    auto announce_demonstrations = [&](size_t tokens) {
      numbers["icl"]["demonstration_tokens"] = tokens;
      std::printf("in-context: %ld demonstration(s) from %s (seed %lu), %zu tokens before each input\n",
                  long(icl_shots), icl_from.c_str(), static_cast<unsigned long>(generation.seed), tokens);
    };
    auto report_flops = [&](double total, size_t examples) {
      double per_example = examples ? total / static_cast<double>(examples) : 0.0;
      numbers["flops_per_example"] = per_example;
      std::printf("inference: %s FLOPs per example (counted, %zu examples)\n", peft::format_flops(per_example).c_str(),
                  examples);
    };
    peft::configure_threads(threads);
    // What the adapter was trained with, unless given here.
    std::string run_config = adapter_dir.empty() ? "" : adapter_dir + "/run_config.yaml";
    std::optional<peft::RunConfig> trained;
    if (!run_config.empty() && std::filesystem::exists(run_config)) trained = peft::RunConfig::load(run_config);
    if (trained && app.count("--arch") == 0) arch = trained->model.arch;
    if (trained && app.count("--output") == 0) output = trained->model.output;
    std::string tokenizer_at = peft::tokenizer_location(model_dir, tokenizer_path);
    if (task == "classification") {
      if (trained) {
        if (trained->data.task == "classification") {
          const auto& trained_config = *trained;
          if (template_text.empty()) template_text = trained_config.data.template_text;
          if (verbalizers.empty()) verbalizers = trained_config.data.verbalizers;
          if (label_names.empty()) label_names = trained_config.data.label_names;
          if (app.count("--max-length") == 0) max_length = trained_config.data.max_length;
        }
      }
      auto set = peft::load_classification(data_path, label_names);
      // An encoder's adapter brings the trained head (modules_to_save): the checkpoint's own need not fit. Without
      // one, a head the checkpoint lacks is new and random: seeded, so that the baseline repeats.
      torch::manual_seed(generation.seed);
      auto model = peft::load_base_model(model_dir, {dtype, device, int64_t(set.label_names.size()),
                                                     !adapter_dir.empty(), arch, output, quantize, double_quant});
      const auto& config = model->config();
      auto tokenizer = peft::load_tokenizer(tokenizer_at, config.bos_token_id, config.eos_token_id);
      auto flops = peft::count_flops(*model);
      std::unique_ptr<peft::Method> method;
      if (!adapter_dir.empty()) method = peft::load_adapter(adapter_dir, *model);
      if (method) flops = peft::with_method(flops, *method, *model);
      auto device_used = model->parameters().front().device();
      int64_t length = std::min(max_length, model->max_sequence_length());
      peft::ClassificationReport report;
      double total_flops = 0.0;
      auto* script = dynamic_cast<peft::ScriptModel*>(model.get());
      if (dynamic_cast<peft::SequenceClassifier*>(model.get()) ||
          (script && script->output() == peft::ScriptModel::Output::class_logits)) {
        peft::check(template_text.empty() && verbalizers.empty(),
                    "--template and --verbalizers are for causal LMs; " + model->description() + " has a head");
        auto special = peft::encoder_special_tokens(*tokenizer, config, tokenizer_at);
        peft::check(icl_shots == 0, "--icl-shots ranks label words with a causal LM; " + model->description() +
                                        " classifies with its head");
        auto inputs = peft::encoder_examples(set, *tokenizer, special, length);
        report = peft::classify_with_head(*model, set, inputs, batch_size, tokenizer->pad_id(), device_used);
        total_flops = peft::forward_flops(flops, inputs);
      } else {
        auto verbalizer = peft::Verbalizer::defaults(set);
        if (!template_text.empty()) verbalizer.template_text = template_text;
        if (!verbalizers.empty()) verbalizer.label_words = verbalizers;
        peft::check_verbalizer(verbalizer, set, "--verbalizers / --template");
        auto candidates = peft::verbalized_candidates(set, verbalizer, *tokenizer, length);
        peft::check(!script || script->output() == peft::ScriptModel::Output::token_logits,
                    model->description() + " returns a loss, which gives no predictions to classify with");
        if (icl_shots > 0) {
          auto train_set = peft::load_classification(icl_from, set.label_names);
          peft::check(train_set.pairs == set.pairs, icl_from + ": holds " +
                                                        (train_set.pairs ? "text pairs" : "single texts") + " but " +
                                                        data_path + " does not");
          auto train = peft::verbalized_examples(train_set, verbalizer, *tokenizer, length);
          auto demonstrations = peft::demonstration_tokens(train, draw(train.size()), *tokenizer);
          announce_demonstrations(demonstrations.size());
          candidates = peft::with_demonstrations(candidates, demonstrations, tokenizer->bos_id(),
                                                 model->max_sequence_length(), icl_setting);
        }
        report = peft::rank_classify(*model, set, candidates, batch_size, tokenizer->pad_id(), device_used);
        total_flops = peft::forward_flops(flops, candidates);
      }
      std::printf("%s\n", peft::format_report(report).c_str());
      report_flops(total_flops, set.examples.size());
      const auto& m = report.metrics;
      numbers["metrics"] = {{"accuracy", m.accuracy}, {"f1", m.f1},
                            {"macro_f1", m.macro_f1}, {"matthews", m.matthews},
                            {"examples", m.examples}, {"majority_accuracy", report.majority_accuracy}};
      write_numbers();
      if (!predictions_path.empty()) {
        write_jsonl(predictions_path, set.examples.size(), [&](size_t i) {
          return nlohmann::json{{"index", i},
                                {"label", set.label_names[size_t(set.examples[i].label)]},
                                {"prediction", set.label_names[size_t(report.predictions[i])]}};
        });
      }
      return 0;
    }

    auto model = peft::load_base_model(model_dir, {dtype, device, 0, false, arch, output, quantize, double_quant});
    auto* script = dynamic_cast<peft::ScriptModel*>(model.get());
    peft::check(
        !dynamic_cast<peft::SequenceClassifier*>(model.get()) &&
            !(script && script->output() == peft::ScriptModel::Output::class_logits),
        model_dir + " holds " + model->description() + ", a classifier: evaluate it with --task classification");
    const auto& config = model->config();
    auto tokenizer = peft::load_tokenizer(tokenizer_at, config.bos_token_id, config.eos_token_id);
    auto flops = peft::count_flops(*model);
    std::unique_ptr<peft::Method> method;
    if (!adapter_dir.empty()) method = peft::load_adapter(adapter_dir, *model);
    if (method) flops = peft::with_method(flops, *method, *model);
    auto device_used = model->parameters().front().device();
    std::string unavailable;
    auto chat_format =
        peft::load_chat_format(chat_template, peft::tokenizer_config_directory(tokenizer_at), *tokenizer, unavailable);
    peft::check(!chat || chat_format != nullptr,
                "--chat: " + model_dir +
                    (unavailable.empty() ? " has no chat template (tokenizer_config.json \"chat_template\")"
                                         : "'s chat template cannot be used: " + unavailable) +
                    "; give --chat-template FILE or a built-in (simple, chatml)");
    if (chat) std::fprintf(stderr, "chat template: %s\n", chat_format->name().c_str());

    if (!prompt.empty()) {
      // Several --prompt options generate as one batch; the results are those of one prompt at a time.
      std::vector<std::vector<int64_t>> batch;
      for (const auto& text : prompt) {
        std::vector<int64_t> ids;
        if (chat) {
          ids = peft::chat_prompt(*chat_format, text);
        } else {
          ids = {tokenizer->bos_id()};
          for (int64_t id : tokenizer->encode(text)) ids.push_back(id);
        }
        batch.push_back(ids);
      }
      generation.eos_id = chat ? chat_format->end_of_turn_id() : tokenizer->eos_id();
      auto* causal = dynamic_cast<peft::CausalLM*>(model.get());
      peft::check(causal != nullptr, "--prompt: generation needs a causal LM of a family the tool knows; " +
                                         model->description() + " is not one (--data measures its loss)");
      auto started = std::chrono::steady_clock::now();
      auto generated = peft::generate_batch(*causal, batch, generation);
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      size_t new_tokens = 0;
      for (const auto& tokens : generated) new_tokens += tokens.size();
      std::fprintf(stderr, "generated %zu token(s) in %.3f s (%.0f tokens/s%s)\n", new_tokens, seconds,
                   seconds > 0 ? static_cast<double>(new_tokens) / seconds : 0.0,
                   generation.kv_cache && causal->supports_kv_cache() ? ", KV cache" : ", no KV cache");
      numbers["generation_seconds"] = seconds;
      numbers["generated_tokens"] = new_tokens;
      numbers["outputs"] = nlohmann::json::array();
      for (size_t i = 0; i < batch.size(); ++i) {
        auto& tokens = generated[i];
        if (!tokens.empty() && tokens.back() == generation.eos_id) tokens.pop_back();
        // A chat reply is printed alone; a continuation after its prompt.
        std::vector<int64_t> all(chat ? batch[i].end() : batch[i].begin() + 1, batch[i].end());
        all.insert(all.end(), tokens.begin(), tokens.end());
        std::printf("%s%s\n", i > 0 ? "\n" : "", tokenizer->decode(all).c_str());
        numbers["outputs"].push_back(tokenizer->decode(tokens));
      }
      write_numbers();
      return 0;
    }

    if (task == "generation") {
      auto* causal = dynamic_cast<peft::CausalLM*>(model.get());
      peft::check(causal != nullptr, "--task generation needs a causal LM of a family the tool knows; " +
                                         model->description() + " is not one");
      auto set = peft::load_generation_set(data_path);
      if (template_text.empty()) template_text = peft::default_generation_template(set);
      generation.eos_id = chat ? chat_format->end_of_turn_id() : tokenizer->eos_id();
      if (icl_shots > 0) {
        // The demonstrations go before the template; an output ends where the next demonstration would begin.
        auto train = peft::load_generation_set(icl_from);
        template_text =
            peft::generation_demonstrations(train, draw(train.examples.size()), template_text) + template_text;
        stop.push_back(peft::kDemonstrationSeparator);
        size_t longest = 0;
        for (const auto& example : set.examples) {
          longest = std::max(longest, tokenizer->encode(peft::generation_prompt(template_text, example)).size() + 1);
        }
        announce_demonstrations(tokenizer->encode(template_text).size());
        peft::check(static_cast<int64_t>(longest) + generation.max_new_tokens <= model->max_sequence_length(),
                    icl_setting + ": the longest prompt with its demonstrations takes " + std::to_string(longest) +
                        " tokens, which with --max-new-tokens " + std::to_string(generation.max_new_tokens) +
                        " exceeds the " + std::to_string(model->max_sequence_length()) +
                        " positions of the context; use fewer shots");
      }
      auto report = peft::evaluate_generation(*causal, *tokenizer, set, template_text, stop, generation, batch_size,
                                              chat ? chat_format.get() : nullptr);
      std::printf("%s\n", peft::format_report(report).c_str());
      double total_flops = 0.0;
      for (size_t i = 0; i < report.prompt_tokens.size(); ++i) {
        total_flops += peft::generation_flops(flops, report.prompt_tokens[i], report.generated_tokens[i]);
      }
      report_flops(total_flops, set.examples.size());
      const auto& b = report.bleu;
      numbers["metrics"] = {{"bleu", b.score},
                            {"bleu_precisions", b.precisions},
                            {"brevity_penalty", b.brevity_penalty},
                            {"hypothesis_length", b.hypothesis_length},
                            {"reference_length", b.reference_length},
                            {"rouge_l", report.rouge_l},
                            {"exact_match", report.exact_match},
                            {"examples", report.outputs.size()}};
      numbers["generation"] = {{"template", template_text},
                               {"chat_template", chat ? chat_format->name() : ""},
                               {"stop", stop},
                               {"max_new_tokens", generation.max_new_tokens},
                               {"temperature", generation.temperature},
                               {"top_p", generation.top_p},
                               {"top_k", generation.top_k},
                               {"seed", generation.seed}};
      write_numbers();
      if (!predictions_path.empty()) {
        write_jsonl(predictions_path, set.examples.size(), [&](size_t i) {
          return nlohmann::json{{"index", i},
                                {"source", set.examples[i].source},
                                {"output", report.outputs[i]},
                                {"references", set.examples[i].references}};
        });
      }
      return 0;
    }

    int64_t length = std::min(max_length, model->max_sequence_length());
    auto examples = peft::load_examples(data_path, *tokenizer, length, {chat_format.get(), false, unavailable});
    if (icl_shots > 0) {
      auto train = peft::load_examples(icl_from, *tokenizer, length);
      auto demonstrations = peft::demonstration_tokens(train, draw(train.size()), *tokenizer);
      announce_demonstrations(demonstrations.size());
      examples = peft::with_demonstrations(examples, demonstrations, tokenizer->bos_id(), model->max_sequence_length(),
                                           icl_setting);
    }
    auto result = peft::evaluate(*model, examples, batch_size, tokenizer->pad_id(), device_used);
    std::printf("loss: %.4f  perplexity: %.4f  (%ld scored tokens, %ld examples)\n", result.loss, result.perplexity,
                long(result.tokens), long(result.examples));
    report_flops(peft::forward_flops(flops, examples), examples.size());
    numbers["metrics"] = {{"loss", result.loss},
                          {"perplexity", result.perplexity},
                          {"tokens", result.tokens},
                          {"examples", result.examples}};
    write_numbers();
    if (!per_example_path.empty()) {
      write_jsonl(per_example_path, result.per_example.size(), [&](size_t i) {
        const auto& example = result.per_example[i];
        return nlohmann::json{{"index", example.index}, {"tokens", example.tokens}, {"loss", example.loss}};
      });
    }
    return 0;
  });
}
