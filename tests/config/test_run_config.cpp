#include <gtest/gtest.h>

#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "config/run_config.h"
#include "core/error.h"
#include "peft/lora.h"
#include "test_util.h"

namespace peft {
namespace {

const char* kFull =
    "model:\n"                            // 1
    "  path: /models/tiny\n"              // 2
    "  dtype: float32\n"                  // 3
    "  device: cpu\n"                     // 4
    "  tokenizer: /models/tok.model\n"    // 5
    "data:\n"                             // 6
    "  train: train.jsonl\n"              // 7
    "  eval: eval.jsonl\n"                // 8
    "  max_length: 128\n"                 // 9
    "  shuffle: true\n"                   // 10
    "  max_eval_examples: 50\n"           // 11
    "peft:\n"                             // 12
    "  method: lora\n"                    // 13
    "  r: 16\n"                           // 14
    "  lora_alpha: 32\n"                  // 15
    "  target_modules: [q_proj]\n"        // 16
    "train:\n"                            // 17
    "  epochs: 3\n"                       // 18
    "  batch_size: 4\n"                   // 19
    "  gradient_accumulation_steps: 2\n"  // 20
    "  learning_rate: 3e-4\n"             // 21
    "  lr_scheduler: cosine\n"            // 22
    "  warmup_ratio: 0.1\n"               // 23
    "output:\n"                           // 24
    "  dir: out/run1\n";                  // 25

// A minimal valid config; tests append one more section (train) to it, starting at line 9.
const std::string kMinimal =
    "model:\n  path: /models/tiny\n"
    "data:\n  train: train.jsonl\n"
    "peft:\n  method: lora\n"
    "output:\n  dir: out\n";

std::string write_config(const std::string& text) {
  return test::write_text(test::temp_dir("cfg") + "/run.yaml", text);
}

template <typename Body>
std::string error_of(Body body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected peft::Error";
  return "";
}

std::string load_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  std::string path = write_config(text);
  std::string message = error_of([&] { RunConfig::load(path, overrides); });
  // Messages name the file; shorten it so expectations stay readable.
  for (size_t at = message.find(path); at != std::string::npos; at = message.find(path, at)) {
    message.replace(at, path.size(), "RUN");
  }
  return message;
}

const LoraOptions& lora(const RunConfig& config) {
  auto* options = dynamic_cast<const LoraOptions*>(config.peft.methods.at(0).options.get());
  if (!options) throw std::runtime_error("peft options are not LoraOptions");
  return *options;
}

TEST(RunConfig, LoadsAFullFile) {
  std::string path = write_config(kFull);
  RunConfig config = RunConfig::load(path);
  EXPECT_EQ(config.source, path);
  EXPECT_EQ(config.model.path, "/models/tiny");
  EXPECT_EQ(config.model.dtype, "float32");
  EXPECT_EQ(config.model.device, "cpu");
  EXPECT_EQ(config.model.tokenizer, "/models/tok.model");
  EXPECT_EQ(config.data.train, "train.jsonl");
  EXPECT_EQ(config.data.eval, "eval.jsonl");
  EXPECT_EQ(config.data.max_length, 128);
  EXPECT_TRUE(config.data.shuffle);
  EXPECT_EQ(config.data.max_eval_examples, 50);
  EXPECT_EQ(config.peft.methods.size(), 1u);
  EXPECT_FALSE(config.peft.is_list);
  EXPECT_EQ(config.peft.methods[0].name, "lora");
  EXPECT_EQ(lora(config).r, 16);
  EXPECT_DOUBLE_EQ(lora(config).lora_alpha, 32.0);
  EXPECT_TRUE(lora(config).target_modules.is_list);
  EXPECT_EQ(lora(config).target_modules.list, std::vector<std::string>{"q_proj"});
  EXPECT_EQ(config.train.epochs, 3);
  EXPECT_EQ(config.train.batch_size, 4);
  EXPECT_EQ(config.train.gradient_accumulation_steps, 2);
  EXPECT_DOUBLE_EQ(config.train.learning_rate, 3e-4);
  EXPECT_EQ(config.train.lr_scheduler, "cosine");
  EXPECT_DOUBLE_EQ(config.train.warmup_ratio, 0.1);
  EXPECT_EQ(config.output.dir, "out/run1");
  EXPECT_FALSE(config.output.overwrite);
}

TEST(RunConfig, DefaultsComeFromTheStructs) {
  RunConfig config = RunConfig::load(write_config(kMinimal));
  ModelOptions model;
  DataOptions data;
  TrainOptions train;
  EXPECT_EQ(config.model.dtype, model.dtype);
  EXPECT_EQ(config.model.device, model.device);
  EXPECT_EQ(config.model.tokenizer, "");
  EXPECT_EQ(config.data.max_length, data.max_length);
  EXPECT_EQ(config.data.shuffle, data.shuffle);
  EXPECT_EQ(config.train.epochs, train.epochs);
  EXPECT_EQ(config.train.batch_size, train.batch_size);
  EXPECT_DOUBLE_EQ(config.train.learning_rate, train.learning_rate);
  EXPECT_DOUBLE_EQ(config.train.adam_epsilon, train.adam_epsilon);
  EXPECT_EQ(config.train.lr_scheduler, train.lr_scheduler);
  EXPECT_EQ(config.train.seed, train.seed);
  EXPECT_EQ(lora(config).r, LoraOptions().r);
  EXPECT_EQ(lora(config).target_modules.list, LoraOptions().target_modules.list);
}

TEST(RunConfig, OverridesAreTypedAndApplied) {
  std::string path = write_config(kFull);
  RunConfig config = RunConfig::load(
      path, {"train.learning_rate=1e-4", "peft.target_modules=[q_proj, v_proj]", "peft.r=4", "model.dtype=bfloat16",
             "data.shuffle=false", "train.max_steps=5", "train.seed=7", "output.overwrite=true", "model.device=cuda:1",
             "data.eval=", "peft.target_modules=all-linear"});
  EXPECT_DOUBLE_EQ(config.train.learning_rate, 1e-4);
  EXPECT_EQ(lora(config).r, 4);
  // The later override of the same key wins, and a scalar makes target_modules a string.
  EXPECT_FALSE(lora(config).target_modules.is_list);
  EXPECT_EQ(lora(config).target_modules.string, "all-linear");
  EXPECT_EQ(config.model.dtype, "bfloat16");
  EXPECT_EQ(config.model.device, "cuda:1");
  EXPECT_FALSE(config.data.shuffle);
  EXPECT_EQ(config.data.eval, "");
  EXPECT_EQ(config.train.max_steps, 5);
  EXPECT_EQ(config.train.seed, 7);  // absent from the file: created by the override
  EXPECT_TRUE(config.output.overwrite);
  EXPECT_EQ(config.train.epochs, 3);  // untouched keys keep the file's value

  RunConfig lists = RunConfig::load(path, {"peft.target_modules=[q_proj, v_proj]"});
  EXPECT_EQ(lora(lists).target_modules.list, (std::vector<std::string>{"q_proj", "v_proj"}));
}

TEST(RunConfig, OverridesCanCreateASectionAndSupplyRequiredKeys) {
  RunConfig config = RunConfig::load(write_config("model:\n  path: /m\ndata:\n  train: t.txt\npeft:\n  method: lora\n"),
                                     {"output.dir=/tmp/out", "train.epochs=2"});
  EXPECT_EQ(config.output.dir, "/tmp/out");
  EXPECT_EQ(config.train.epochs, 2);
}

TEST(RunConfig, MissingFileAndInvalidYaml) {
  std::string missing = test::temp_dir("cfg") + "/nope.yaml";
  EXPECT_EQ(error_of([&] { RunConfig::load(missing); }), "config file not found: " + missing);
  std::string message = load_error("model:\n  path: /m\ndata:\n  train: [a, b\n");
  EXPECT_EQ(message.rfind("RUN:", 0), 0u) << message;
  EXPECT_NE(message.find("invalid YAML: "), std::string::npos) << message;
  // yaml-cpp reports the unclosed flow sequence at or after its line; it must be a real line of the file.
  int line = std::stoi(message.substr(4));
  EXPECT_GE(line, 4);
  EXPECT_LE(line, 5);
  EXPECT_EQ(load_error("model: {path: /m\n"), "RUN:2: invalid YAML: end of map flow not found");
}

TEST(RunConfig, TopLevelShape) {
  EXPECT_NE(load_error("- model\n- data\n").find("RUN:1: the config must be a mapping of sections"), std::string::npos);
  EXPECT_NE(load_error("just text\n").find("must be a mapping of sections"), std::string::npos);
  EXPECT_EQ(load_error(kMinimal + "trian:\n  epochs: 2\n"),
            "RUN:9: unknown section 'trian' (did you mean 'train'?); sections are model, data, peft, train, output");
  EXPECT_EQ(load_error(kMinimal + "zzzzzzzzzz: 1\n"),
            "RUN:9: unknown section 'zzzzzzzzzz'; sections are model, data, peft, train, output");
  EXPECT_EQ(load_error(kMinimal + "train: 3\n"), "RUN:9: section 'train' must be a mapping of keys, got '3'");
  EXPECT_EQ(load_error(kMinimal + "train: [a]\n"), "RUN:9: section 'train' must be a mapping of keys, got a list");
  EXPECT_EQ(load_error(kMinimal + "data:\n  max_length: 3\n"), "RUN:9: duplicate section 'data'");
  EXPECT_EQ(load_error(kMinimal + "train:\n  epochs: 1\n  epochs: 2\n"),
            "RUN:11: duplicate key 'train.epochs' (first given at RUN:10)");
  // An empty section is fine; an empty file reports the first required key.
  EXPECT_NO_THROW(RunConfig::load(write_config(kMinimal + "train:\n")));
  EXPECT_EQ(load_error(""), "RUN: missing required key 'model.path'");
}

TEST(RunConfig, UnknownKeysGetAHintInEverySection) {
  EXPECT_EQ(load_error("model:\n  path: /m\n  dtpye: float16\n" + kMinimal.substr(kMinimal.find("data:"))),
            "RUN:3: unknown key 'model.dtpye' (did you mean 'dtype'?)");
  std::string data =
      "model:\n  path: /m\ndata:\n  train: t\n  shufle: false\npeft:\n  method: lora\noutput:\n  dir: o\n";
  EXPECT_EQ(load_error(data), "RUN:5: unknown key 'data.shufle' (did you mean 'shuffle'?)");
  EXPECT_EQ(load_error(kMinimal + "train:\n  lerning_rate: 0.1\n"),
            "RUN:10: unknown key 'train.lerning_rate' (did you mean 'learning_rate'?)");
  EXPECT_EQ(load_error(kMinimal + "train:\n  zzzzzzzzzzzzzzz: 0.1\n"), "RUN:10: unknown key 'train.zzzzzzzzzzzzzzz'");
  std::string output =
      "model:\n  path: /m\ndata:\n  train: t\npeft:\n  method: lora\noutput:\n  dir: o\n  overwrit: true\n";
  EXPECT_EQ(load_error(output), "RUN:9: unknown key 'output.overwrit' (did you mean 'overwrite'?)");
  std::string peft =
      "model:\n  path: /m\ndata:\n  train: t\npeft:\n  method: lora\n  lora_alpah: 4\noutput:\n  dir: o\n";
  std::string message = load_error(peft);
  EXPECT_EQ(message.rfind("RUN:7: unknown key 'peft.lora_alpah' for method 'lora' (did you mean 'lora_alpha'?); "
                          "method 'lora' takes ",
                          0),
            0u)
      << message;
}

TEST(RunConfig, UnknownKeysFromOverridesSayCommandLine) {
  EXPECT_EQ(load_error(kMinimal, {"train.lerning_rate=1"}),
            "command line override train.lerning_rate=1: unknown key 'train.lerning_rate' (did you mean "
            "'learning_rate'?)");
  std::string message = load_error(kMinimal, {"peft.zzzzzzzz=4"});
  EXPECT_EQ(message.rfind("command line override peft.zzzzzzzz=4: unknown key 'peft.zzzzzzzz' for method 'lora'", 0),
            0u)
      << message;
}

TEST(RunConfig, WrongTypes) {
  EXPECT_EQ(load_error(kMinimal + "train:\n  batch_size: abc\n"),
            "RUN:10: train.batch_size: expected an integer, got 'abc'");
  EXPECT_EQ(load_error(kMinimal + "train:\n  epochs: 1.5\n"), "RUN:10: train.epochs: expected an integer, got '1.5'");
  EXPECT_EQ(load_error(kMinimal + "train:\n  learning_rate: fast\n"),
            "RUN:10: train.learning_rate: expected a number, got 'fast'");
  std::string output =
      "model:\n  path: /m\ndata:\n  train: t\npeft:\n  method: lora\noutput:\n  dir: o\n  overwrite: yes\n";
  EXPECT_EQ(load_error(output), "RUN:9: output.overwrite: expected true or false, got 'yes'");
  EXPECT_EQ(load_error(kMinimal, {"train.learning_rate=abc"}),
            "command line override train.learning_rate=abc: train.learning_rate: expected a number, got 'abc'");
  EXPECT_EQ(load_error(kMinimal, {"model.path=[a, b]"}),
            "command line override model.path=[a, b]: model.path: expected a string, got a list");
  EXPECT_EQ(load_error(kMinimal, {"peft.r=2.5"}),
            "command line override peft.r=2.5: peft.r: expected an integer, got '2.5'");
}

TEST(RunConfig, InvalidChoicesAndValues) {
  auto model = [](const std::string& extra) {
    return "model:\n  path: /m\n" + extra + "data:\n  train: t\npeft:\n  method: lora\noutput:\n  dir: o\n";
  };
  EXPECT_EQ(load_error(model("  dtype: fp16\n")),
            "RUN:3: model.dtype: expected one of float32, bfloat16, float16, got 'fp16'");
  EXPECT_EQ(load_error(model("  device: gpu\n")), "RUN:3: model.device: expected auto, cpu, cuda or cuda:N, got 'gpu'");
  EXPECT_NE(load_error(model("  device: 'cuda:x'\n")).find("model.device"), std::string::npos);
  EXPECT_NE(load_error(model("  device: 'cuda:'\n")).find("model.device"), std::string::npos);
  EXPECT_NO_THROW(RunConfig::load(write_config(model("  device: cuda:0\n"))));
  EXPECT_EQ(load_error("model:\n  path: ''\n" + kMinimal.substr(kMinimal.find("data:"))),
            "RUN:2: model.path: must not be empty");

  EXPECT_EQ(load_error(kMinimal + "train:\n  lr_scheduler: cosin\n"),
            "RUN:10: train.lr_scheduler: expected one of constant, linear, cosine, got 'cosin' (did you mean "
            "'cosine'?)");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"batch_size: 0", "train.batch_size: must be positive, got 0"},
      {"gradient_accumulation_steps: -1", "train.gradient_accumulation_steps: must be positive, got -1"},
      {"learning_rate: 0", "train.learning_rate: must be positive"},
      {"learning_rate: 1e39", "train.learning_rate: must be within float's range (3.4e38), got 1e+39"},
      {"epochs: 0", "train.epochs: must be at least 1 when max_steps is 0, got 0"},
      {"max_steps: -2", "train.max_steps: must not be negative, got -2"},
      {"warmup_ratio: 1.0", "train.warmup_ratio: must be in [0, 1)"},
      {"warmup_ratio: -0.1", "train.warmup_ratio: must be in [0, 1)"},
      {"warmup_steps: -1", "train.warmup_steps: must not be negative"},
      {"weight_decay: -0.01", "train.weight_decay: must not be negative"},
      {"adam_beta2: 1", "train.adam_beta2: must be in [0, 1)"},
      {"adam_epsilon: 0", "train.adam_epsilon: must be positive"},
      {"max_grad_norm: -1", "train.max_grad_norm: must not be negative"},
      {"eval_every: -1", "train.eval_every: must not be negative"},
      {"log_every: -5", "train.log_every: must not be negative"},
      {"threads: -1", "train.threads: must not be negative"},
      {"save_every: -1", "train.save_every: must not be negative"},
      {"keep_checkpoints: -3", "train.keep_checkpoints: must not be negative"},
      {"on_nonfinite: ignore", "train.on_nonfinite: expected one of stop, skip, got 'ignore'"},
      {"max_nonfinite_in_a_row: 0", "train.max_nonfinite_in_a_row: must be positive, got 0"},
      {"gradient_checkpointing: sometimes", "train.gradient_checkpointing: expected true or false, got 'sometimes'"},
  };
  for (const auto& [line, expected] : bad) {
    std::string message = load_error(kMinimal + "train:\n  " + line + "\n");
    EXPECT_EQ(message.rfind("RUN:10: " + expected, 0), 0u) << line << " -> " << message;
  }
  // epochs 0 is fine when max_steps decides the length.
  EXPECT_NO_THROW(RunConfig::load(write_config(kMinimal + "train:\n  epochs: 0\n  max_steps: 10\n")));

  EXPECT_NE(load_error(kMinimal, {"data.packing=2"}).find("data.packing: expected true or false, got"),
            std::string::npos);
  std::string data =
      "model:\n  path: /m\ndata:\n  train: t\n  max_length: 1\npeft:\n  method: lora\noutput:\n  dir: o\n";
  EXPECT_NE(load_error(data).find("RUN:5: data.max_length: must be at least 2"), std::string::npos);
  EXPECT_NE(load_error(kMinimal, {"data.max_eval_examples=-1"})
                .find("command line override data.max_eval_examples=-1: data.max_eval_examples: must not be negative"),
            std::string::npos);
}

TEST(RunConfig, MissingRequiredKeys) {
  const std::string model = "model:\n  path: /m\n", data = "data:\n  train: t\n", peft = "peft:\n  method: lora\n",
                    output = "output:\n  dir: o\n";
  EXPECT_EQ(load_error(data + peft + output), "RUN: missing required key 'model.path'");
  EXPECT_EQ(load_error(model + "data:\n  eval: e\n" + peft + output), "RUN: missing required key 'data.train'");
  EXPECT_EQ(load_error(model + data + "peft:\n  r: 4\n" + output), "RUN: missing required key 'peft.method'");
  EXPECT_EQ(load_error(model + data + peft), "RUN: missing required key 'output.dir'");
  // A misspelling of the required key is pointed out.
  std::string message = load_error("model:\n  pth: /m\n" + data + peft + output);
  EXPECT_EQ(message.rfind("RUN: missing required key 'model.path' ('model.pth' at RUN:2", 0), 0u) << message;
}

TEST(RunConfig, MalformedOverrides) {
  std::string path = write_config(kMinimal);
  for (const std::string bad : {"foo", "=1", "model=1", "model.=1", ".path=1"}) {
    EXPECT_EQ(error_of([&] { RunConfig::load(path, {bad}); }),
              "invalid override '" + bad + "': expected section.key=value, e.g. train.learning_rate=1e-4");
  }
  EXPECT_EQ(error_of([&] { RunConfig::load(path, {"trian.epochs=1"}); }),
            "command line override trian.epochs=1: unknown section 'trian' (did you mean 'train'?); sections are "
            "model, data, peft, train, output");
  std::string message = error_of([&] { RunConfig::load(path, {"peft.target_modules=[q_proj"}); });
  EXPECT_EQ(message.rfind("command line override peft.target_modules=[q_proj: invalid YAML value: ", 0), 0u) << message;
}

TEST(RunConfig, UnknownMethodNamesTheMethodKeyLine) {
  std::string text = "model:\n  path: /m\ndata:\n  train: t\npeft:\n  r: 4\n  method: lroa\noutput:\n  dir: o\n";
  std::string message = load_error(text);
  EXPECT_EQ(message.rfind("RUN:7: peft.method: unknown PEFT method 'lroa' (did you mean 'lora'?)", 0), 0u) << message;
  message = load_error(kMinimal, {"peft.method=adapterx"});
  EXPECT_EQ(message.rfind("command line override peft.method=adapterx: peft.method: unknown PEFT method 'adapterx'", 0),
            0u)
      << message;
}

TEST(RunConfig, TorchScriptKeysAreForArchives) {
  auto run = [](const std::string& path, const std::string& extra) {
    return "model:\n  path: " + path + "\n" + extra + "data:\n  train: t\npeft:\n  method: lora\noutput:\n  dir: o\n";
  };
  EXPECT_EQ(load_error(run("/m", "  arch: custom\n")),
            "RUN:3: model.arch: is only used with a TorchScript archive (a .pt file)");
  EXPECT_EQ(load_error(run("/m.pt", "  output: scores\n")),
            "RUN:3: model.output: expected one of logits, loss, got 'scores'");
  auto config = RunConfig::load(write_config(run("/m.pt", "  arch: custom\n  output: loss\n")));
  EXPECT_EQ(config.model.arch, "custom");
  EXPECT_EQ(config.model.output, "loss");
  EXPECT_NE(config.resolved_yaml.find("output: loss"), std::string::npos);
  EXPECT_EQ(RunConfig::load(write_config(run("/m", ""))).resolved_yaml.find("arch"), std::string::npos);
}

TEST(RunConfig, ResolvedYamlRoundTrips) {
  std::string path = write_config(kFull);
  RunConfig first = RunConfig::load(path, {"train.max_steps=7", "peft.target_modules=[q_proj, v_proj]",
                                           "train.adam_epsilon=1e-6", "model.tokenizer=", "data.eval=\"~\""});
  // Every setting is listed, sections in a fixed order.
  YAML::Node tree = YAML::Load(first.resolved_yaml);
  std::vector<std::string> sections;
  for (const auto& pair : tree) sections.push_back(pair.first.Scalar());
  EXPECT_EQ(sections, (std::vector<std::string>{"model", "data", "peft", "train", "output"}));
  EXPECT_EQ(tree["train"].size(), 24u) << first.resolved_yaml;
  EXPECT_EQ(tree["model"].size(), 5u);
  EXPECT_EQ(tree["data"].size(), 7u);
  EXPECT_EQ(tree["output"].size(), 2u);
  EXPECT_EQ(tree["train"]["seed"].Scalar(), "42");  // a default, recorded
  EXPECT_TRUE(tree["peft"]["use_rslora"].IsScalar());
  EXPECT_EQ(tree["peft"]["method"].Scalar(), "lora");

  std::string again_path = test::write_text(test::temp_dir("cfg") + "/resolved.yaml", first.resolved_yaml);
  RunConfig second = RunConfig::load(again_path);
  EXPECT_EQ(second.resolved_yaml, first.resolved_yaml);
  EXPECT_EQ(second.model.path, first.model.path);
  EXPECT_EQ(second.model.tokenizer, "");
  EXPECT_EQ(second.data.eval, "~");
  EXPECT_EQ(second.data.max_length, first.data.max_length);
  EXPECT_EQ(second.train.max_steps, 7);
  EXPECT_EQ(second.train.epochs, first.train.epochs);
  EXPECT_DOUBLE_EQ(second.train.learning_rate, first.train.learning_rate);
  EXPECT_EQ(second.train.adam_epsilon, 1e-6);
  EXPECT_EQ(second.train.warmup_ratio, first.train.warmup_ratio);
  EXPECT_EQ(second.train.lr_scheduler, "cosine");
  EXPECT_EQ(second.output.dir, first.output.dir);
  EXPECT_EQ(second.output.overwrite, first.output.overwrite);
  EXPECT_EQ(lora(second).r, 16);
  EXPECT_EQ(lora(second).lora_alpha, lora(first).lora_alpha);
  EXPECT_EQ(lora(second).target_modules.list, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(lora(second).use_rslora, lora(first).use_rslora);
  EXPECT_EQ(lora(second).bias, lora(first).bias);
}

// An option of another method is named as such, with the options the chosen method takes.
TEST(RunConfig, OptionOfAnotherMethodIsRefused) {
  std::string text = "model:\n  path: /m\ndata:\n  train: t\npeft:\n  method: bitfit\n  r: 8\noutput:\n  dir: o\n";
  EXPECT_EQ(load_error(text), "RUN:7: unknown key 'peft.r' for method 'bitfit'; method 'bitfit' takes biases, method");
  std::string full = "model:\n  path: /m\ndata:\n  train: t\npeft:\n  method: full\n  r: 8\noutput:\n  dir: o\n";
  EXPECT_EQ(load_error(full), "RUN:7: unknown key 'peft.r' for method 'full'; method 'full' takes method");
}

const std::string kComposition =
    "model:\n  path: /m\n"                    // 1-2
    "data:\n  train: t\n"                     // 3-4
    "peft:\n"                                 // 5
    "  - method: lora\n"                      // 6
    "    r: 4\n"                              // 7
    "    target_modules: [q_proj, v_proj]\n"  // 8
    "  - method: bitfit\n"                    // 9
    "output:\n  dir: o\n";                    // 10-11

TEST(RunConfig, PeftListIsAComposition) {
  RunConfig config = RunConfig::load(write_config(kComposition), {"peft[1].biases=subset"});
  EXPECT_TRUE(config.peft.is_list);
  ASSERT_EQ(config.peft.methods.size(), 2u);
  EXPECT_EQ(config.peft.methods[0].name, "lora");
  EXPECT_EQ(lora(config).r, 4);
  EXPECT_EQ(config.peft.methods[1].name, "bitfit");

  // The resolved config keeps the list, with every default filled in, and loads back to the same settings.
  YAML::Node tree = YAML::Load(config.resolved_yaml);
  ASSERT_TRUE(tree["peft"].IsSequence()) << config.resolved_yaml;
  EXPECT_EQ(tree["peft"][0]["r"].as<int>(), 4);
  EXPECT_EQ(tree["peft"][0]["lora_alpha"].as<double>(), 8.0);
  EXPECT_EQ(tree["peft"][1]["biases"].as<std::string>(), "subset");
  EXPECT_FALSE(tree["peft"][1]["target_modules"]);  // the model family's default, resolved at attach()
  RunConfig again = RunConfig::load(write_config(config.resolved_yaml));
  EXPECT_EQ(again.resolved_yaml, config.resolved_yaml);

  // A one-item list is a single method.
  RunConfig one =
      RunConfig::load(write_config("model: {path: /m}\ndata: {train: t}\npeft:\n  - method: full\n"
                                   "output: {dir: o}\n"));
  ASSERT_EQ(one.peft.methods.size(), 1u);
  EXPECT_EQ(one.peft.methods[0].name, "full");
}

TEST(RunConfig, BadCompositions) {
  EXPECT_EQ(load_error(kComposition, {"peft[1].method=full"}),
            "command line override peft[1].method=full: peft[1].method: 'full' trains every parameter and cannot be "
            "combined with other methods");
  EXPECT_EQ(load_error(kComposition, {"peft[1].r=4"}),
            "command line override peft[1].r=4: unknown key 'peft[1].r' for method 'bitfit'; method 'bitfit' takes "
            "biases, method");
  EXPECT_EQ(load_error(kComposition, {"peft[2].r=4"}),
            "command line override peft[2].r=4: RUN has no peft[2] (peft is a list of 2 method(s))");
  EXPECT_EQ(load_error(kComposition, {"peft.r=4"}),
            "command line override peft.r=4: peft in RUN is a list of methods; address one as peft[N].r=...");
  EXPECT_EQ(load_error(kMinimal, {"peft[0].r=4"}),
            "command line override peft[0].r=4: RUN has no peft[0] (peft is a single method: use peft.r=...)");
  EXPECT_EQ(load_error(kMinimal, {"train[0].epochs=4"}),
            "command line override train[0].epochs=4: only peft is a list (peft[N].key=value)");
  EXPECT_EQ(load_error("model: {path: /m}\ndata: {train: t}\npeft: []\noutput: {dir: o}\n"),
            "RUN:3: peft: the list of methods is empty");
  EXPECT_EQ(load_error("model: {path: /m}\ndata: {train: t}\npeft: [lora]\noutput: {dir: o}\n"),
            "RUN:3: section 'peft[0]' must be a mapping of keys, got 'lora'");
  EXPECT_EQ(load_error("model: {path: /m}\ndata: {train: t}\npeft: [{r: 4}]\noutput: {dir: o}\n"),
            "RUN: missing required key 'peft[0].method'");
  std::string message = load_error(
      "model: {path: /m}\ndata: {train: t}\npeft: [{method: lora}, {method: lroa}]\n"
      "output: {dir: o}\n");
  EXPECT_EQ(message.rfind("RUN:3: peft[1].method: unknown PEFT method 'lroa'", 0), 0u) << message;
}

TEST(RunConfig, QuantizedBase) {
  auto with = [](const std::string& model_keys, const std::string& method = "lora") {
    return "model:\n  path: /m\n" + model_keys + "data:\n  train: t\npeft:\n  method: " + method +
           "\noutput:\n  dir: o\n";
  };
  auto config = RunConfig::load(write_config(with("  quantize: nf4\n  double_quant: true\n")));
  EXPECT_EQ(config.model.quantize, "nf4");
  EXPECT_TRUE(config.model.double_quant);
  EXPECT_NE(config.resolved_yaml.find("quantize: nf4"), std::string::npos) << config.resolved_yaml;
  // Recorded only when given, so that the runs of earlier versions still resume.
  auto plain = RunConfig::load(write_config(with("")));
  EXPECT_EQ(plain.model.quantize, "none");
  EXPECT_EQ(plain.resolved_yaml.find("quantize"), std::string::npos) << plain.resolved_yaml;

  EXPECT_EQ(load_error(with("  quantize: fp4\n")),
            "RUN:3: model.quantize: expected one of none, nf4, int8, got 'fp4' (did you mean 'nf4'?)");
  EXPECT_EQ(load_error(with("  quantize: int8\n  double_quant: true\n")),
            "RUN:4: model.double_quant: applies to quantize: nf4");
  EXPECT_EQ(load_error(with("  quantize: nf4\n", "full")),
            "RUN:3: model.quantize: full fine-tuning trains the base's weights, which a quantized base keeps frozen "
            "in nf4 (use a PEFT method, or quantize: none)");
  EXPECT_EQ(load_error(with("  quantize: int8\n", "bitfit")),
            "RUN:3: model.quantize: bitfit trains the biases of the quantized projections, which stay frozen (use "
            "lora or ia3, or quantize: none)");
  EXPECT_NE(load_error("model:\n  path: m.pt\n  quantize: nf4\ndata:\n  train: t\npeft:\n  method: lora\noutput:\n"
                       "  dir: o\n")
                .find("RUN:3: model.quantize: applies to Hugging Face model directories"),
            std::string::npos);
}

// Every configuration the repository ships parses (the README runs them).
TEST(RunConfig, ShippedConfigsParse) {
  int64_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::source_dir() + "/configs")) {
    if (entry.path().extension() != ".yaml") continue;
    EXPECT_NO_THROW(RunConfig::load(entry.path().string())) << entry.path();
    ++count;
  }
  EXPECT_GT(count, 10);
}

}  // namespace
}  // namespace peft
