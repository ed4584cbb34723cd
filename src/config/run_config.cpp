#include "config/run_config.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <regex>

#include "config/section.h"
#include "config/section_state.h"
#include "core/error.h"
#include "core/strings.h"
#include "peft/registry.h"

namespace peft {

namespace {

// In the order they are read and written to the resolved config.
const std::vector<std::string> kSections = {"model", "data", "peft", "train", "output"};

std::string trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

std::string unknown_section_message(const std::string& name) {
  std::string message = "unknown section '" + printable(name) + "'";
  std::string close = closest_match(name, kSections);
  if (!close.empty()) message += " (did you mean '" + close + "'?)";
  return message + "; sections are " + join(kSections, ", ");
}

struct Override {
  std::string section;
  int64_t index = -1;  // N of peft[N].key; -1 for section.key
  std::string key;
  std::string text;  // as given, for messages
  YAML::Node value;
};

Override parse_override(const std::string& given) {
  const std::string text = printable(given);  // for messages: one line, bounded
  const std::string usage =
      "invalid override '" + text + "': expected section.key=value, e.g. train.learning_rate=1e-4";
  size_t equals = given.find('=');
  if (equals == std::string::npos) throw Error(usage);
  std::string name = trim(given.substr(0, equals));
  std::string value = trim(given.substr(equals + 1));
  size_t dot = name.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == name.size()) throw Error(usage);
  Override result{name.substr(0, dot), -1, name.substr(dot + 1), text, {}};
  // peft[N].key addresses one method of a `peft` list.
  std::smatch indexed;
  static const std::regex kIndexed(R"(([A-Za-z_]+)\[([0-9]{1,6})\])");
  if (std::regex_match(result.section, indexed, kIndexed)) {
    if (indexed[1] != "peft")
      throw Error("command line override " + text + ": only peft is a list (peft[N].key=value)");
    result.section = "peft";
    result.index = std::stoll(indexed[2]);
  }
  if (std::find(kSections.begin(), kSections.end(), result.section) == kSections.end()) {
    throw Error("command line override " + text + ": " + unknown_section_message(result.section));
  }
  if (value.empty()) {
    result.value = YAML::Node(std::string());  // "key=" sets the empty string
  } else {
    try {
      result.value = YAML::Load(value);   // typed like the file: "16", "2e-4", "[q_proj, v_proj]"
    } catch (const YAML::Exception& e) {  // a parse error, or nesting beyond yaml-cpp's depth limit
      throw Error("command line override " + text + ": invalid YAML value: " + printable(e.msg));
    }
  }
  return result;
}

// Reads the file and checks its shape: a mapping whose keys are known sections holding mappings.
YAML::Node load_tree(const std::string& path) {
  YAML::Node root = load_yaml_file(path, "config file");
  if (!root.IsDefined() || root.IsNull()) return YAML::Node(YAML::NodeType::Map);  // empty file
  if (!root.IsMap()) {
    throw Error(yaml_location(path, root) + ": the config must be a mapping of sections (" + join(kSections, ", ") +
                "), got " + describe_yaml(root));
  }
  std::set<std::string> seen;
  for (const auto& pair : root) {
    std::string name = pair.first.IsScalar() ? pair.first.Scalar() : describe_yaml(pair.first);
    if (std::find(kSections.begin(), kSections.end(), name) == kSections.end()) {
      throw Error(yaml_location(path, pair.first) + ": " + unknown_section_message(name));
    }
    if (!seen.insert(name).second)
      throw Error(yaml_location(path, pair.first) + ": duplicate section '" + printable(name) + "'");
    bool method_list = name == "peft" && pair.second.IsSequence();  // a composition
    if (!pair.second.IsNull() && !pair.second.IsMap() && !method_list) {
      throw Error(yaml_location(path, pair.first) + ": section '" + name + "' must be a mapping of keys, got " +
                  describe_yaml(pair.second));
    }
  }
  return root;
}

void check_positive(Section& section, const std::string& key, int64_t value) {
  if (value <= 0) section.fail(key, "must be positive, got " + std::to_string(value));
}

void check_non_negative(Section& section, const std::string& key, int64_t value) {
  if (value < 0) section.fail(key, "must not be negative, got " + std::to_string(value));
}

void check_non_negative(Section& section, const std::string& key, double value) {
  if (value < 0) section.fail(key, "must not be negative, got " + std::to_string(value));
}

void check_non_empty(Section& section, const std::string& key, const std::string& value) {
  if (value.empty()) section.fail(key, "must not be empty");
}

bool valid_device(const std::string& device) {
  if (device == "auto" || device == "cpu" || device == "cuda") return true;
  if (!starts_with(device, "cuda:") || device.size() == 5) return false;
  return device.find_first_not_of("0123456789", 5) == std::string::npos;
}

void read_model(Section& section, ModelOptions& model) {
  section.require("path", model.path);
  section.get_choice("dtype", model.dtype, {"float32", "bfloat16", "float16"});
  section.get("device", model.device);
  section.get("tokenizer", model.tokenizer);
  section.get("new_head", model.new_head);
  // A file is a TorchScript archive (a Hugging Face model is a directory); arch and output are its keys, recorded in
  // the resolved config only there.
  auto extension = std::filesystem::path(model.path).extension();
  std::error_code error;  // an unusable path (too long, say) is simply not a file here
  bool archive = std::filesystem::is_regular_file(model.path, error) || extension == ".pt" || extension == ".pth";
  for (const char* key : {"arch", "output"}) {
    if (!archive && section.has(key)) section.fail(key, "is only used with a TorchScript archive (a .pt file)");
  }
  if (archive) {
    section.get_choice("arch", model.arch, {"auto", "custom", "llama", "mistral", "qwen2", "gpt2", "bert", "roberta"});
    section.get_choice("output", model.output, {"logits", "loss"});
  }
  if (section.has("quantize")) {  // recorded only when given, so that older runs still resume
    section.get_choice("quantize", model.quantize, {"none", "nf4", "int8"});
    if (archive && model.quantize != "none") {
      section.fail("quantize", "applies to Hugging Face model directories, not to a TorchScript archive");
    }
  }
  if (section.has("double_quant")) {
    section.get("double_quant", model.double_quant);
    if (model.double_quant && model.quantize != "nf4") section.fail("double_quant", "applies to quantize: nf4");
  }
  section.finish();
  check_non_empty(section, "path", model.path);
  if (!valid_device(model.device)) {
    section.fail("device", "expected auto, cpu, cuda or cuda:N, got '" + model.device + "'");
  }
}

void read_data(Section& section, DataOptions& data) {
  section.require("train", data.train);
  section.get("eval", data.eval);
  data.max_length_given = section.has("max_length");
  section.get("max_length", data.max_length);
  section.get("shuffle", data.shuffle);
  section.get("packing", data.packing);
  section.get("max_eval_examples", data.max_eval_examples);
  section.get_choice("task", data.task, {"language_modeling", "classification"});
  if (section.has("chat_template")) section.get("chat_template", data.chat_template);
  if (section.has("train_on")) section.get_choice("train_on", data.train_on, {"assistant", "all"});
  bool classification = data.task == "classification";
  for (const char* key : {"chat_template", "train_on"}) {
    if (classification && section.has(key)) {
      section.fail(key, "applies to conversations (task: language_modeling), not to task: classification");
    }
  }
  for (const char* key : {"label_names", "template", "verbalizers"}) {
    if (!classification && section.has(key)) section.fail(key, "is only used with task: classification");
  }
  if (classification) {  // recorded in the resolved config only where they apply
    section.get("label_names", data.label_names);
    section.get("template", data.template_text);
    section.get("verbalizers", data.verbalizers);
  }
  section.finish();
  check_non_empty(section, "train", data.train);
  if (section.has("chat_template")) check_non_empty(section, "chat_template", data.chat_template);
  if (data.max_length < 2) {
    section.fail("max_length",
                 "must be at least 2 (an input and a target token), got " + std::to_string(data.max_length));
  }
  check_non_negative(section, "max_eval_examples", data.max_eval_examples);
}

void read_method(Section& section, MethodChoice& choice, bool in_composition) {
  section.require("method", choice.name);
  const MethodEntry* entry = nullptr;
  try {
    entry = &find_method(choice.name);
  } catch (const Error& e) {
    section.fail("method", e.what());
  }
  if (in_composition && !entry->standalone_reason.empty()) {
    section.fail("method", "'" + choice.name + "' " + entry->standalone_reason);
  }
  choice.options = entry->make_options();
  choice.options->read(section);
  if (section.has("modules_to_save")) {  // recorded only when given, so that older runs still resume
    section.get("modules_to_save", choice.modules_to_save);
    if (choice.name == "full") section.fail("modules_to_save", "full fine-tuning trains every module already");
  }
  section.finish("method '" + choice.name + "'");
}

void read_train(Section& section, TrainOptions& train) {
  section.get("epochs", train.epochs);
  section.get("max_steps", train.max_steps);
  section.get("batch_size", train.batch_size);
  section.get("gradient_accumulation_steps", train.gradient_accumulation_steps);
  section.get("learning_rate", train.learning_rate);
  section.get("loraplus_lr_ratio", train.loraplus_lr_ratio);
  section.get("weight_decay", train.weight_decay);
  section.get("adam_beta1", train.adam_beta1);
  section.get("adam_beta2", train.adam_beta2);
  section.get("adam_epsilon", train.adam_epsilon);
  section.get_choice("lr_scheduler", train.lr_scheduler, {"constant", "linear", "cosine"});
  section.get("warmup_steps", train.warmup_steps);
  section.get("warmup_ratio", train.warmup_ratio);
  section.get("max_grad_norm", train.max_grad_norm);
  section.get("seed", train.seed);
  section.get("eval_every", train.eval_every);
  section.get("eval_batch_size", train.eval_batch_size);
  section.get("log_every", train.log_every);
  section.get("threads", train.threads);
  section.get("gradient_checkpointing", train.gradient_checkpointing);
  section.get("save_every", train.save_every);
  section.get("keep_checkpoints", train.keep_checkpoints);
  section.get_choice("on_nonfinite", train.on_nonfinite, {"stop", "skip"});
  section.get("max_nonfinite_in_a_row", train.max_nonfinite_in_a_row);
  section.finish();

  check_non_negative(section, "max_steps", train.max_steps);
  check_non_negative(section, "epochs", train.epochs);
  if (train.max_steps == 0 && train.epochs < 1) {
    section.fail("epochs", "must be at least 1 when max_steps is 0, got " + std::to_string(train.epochs));
  }
  check_positive(section, "batch_size", train.batch_size);
  check_positive(section, "gradient_accumulation_steps", train.gradient_accumulation_steps);
  if (!(train.learning_rate > 0)) {
    section.fail("learning_rate", "must be positive, got " + std::to_string(train.learning_rate));
  }
  // The optimiser multiplies float tensors by it: beyond float's range it cannot even be converted.
  if (train.learning_rate > std::numeric_limits<float>::max()) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", train.learning_rate);
    section.fail("learning_rate", "must be within float's range (3.4e38), got " + std::string(text));
  }
  if (!(train.loraplus_lr_ratio > 0) || train.loraplus_lr_ratio > 1e6) {
    section.fail("loraplus_lr_ratio", "must be positive (at most 1e6), got " + std::to_string(train.loraplus_lr_ratio));
  }
  check_non_negative(section, "weight_decay", train.weight_decay);
  for (const auto& [key, beta] : {std::pair<std::string, double>{"adam_beta1", train.adam_beta1},
                                  std::pair<std::string, double>{"adam_beta2", train.adam_beta2}}) {
    if (beta < 0 || beta >= 1) section.fail(key, "must be in [0, 1), got " + std::to_string(beta));
  }
  if (!(train.adam_epsilon > 0)) {
    section.fail("adam_epsilon", "must be positive, got " + std::to_string(train.adam_epsilon));
  }
  check_non_negative(section, "warmup_steps", train.warmup_steps);
  if (train.warmup_ratio < 0 || train.warmup_ratio >= 1) {
    section.fail("warmup_ratio", "must be in [0, 1), got " + std::to_string(train.warmup_ratio));
  }
  check_non_negative(section, "max_grad_norm", train.max_grad_norm);
  check_non_negative(section, "seed", train.seed);
  check_non_negative(section, "eval_every", train.eval_every);
  check_non_negative(section, "eval_batch_size", train.eval_batch_size);
  check_non_negative(section, "log_every", train.log_every);
  check_non_negative(section, "threads", train.threads);
  check_non_negative(section, "save_every", train.save_every);
  check_non_negative(section, "keep_checkpoints", train.keep_checkpoints);
  check_positive(section, "max_nonfinite_in_a_row", train.max_nonfinite_in_a_row);
}

void read_output(Section& section, OutputOptions& output) {
  section.require("dir", output.dir);
  section.get("overwrite", output.overwrite);
  section.finish();
  check_non_empty(section, "dir", output.dir);
}

}  // namespace

RunConfig RunConfig::load(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root = load_tree(path);

  // Overrides edit the tree before typed parsing, so they get exactly the same checks as the file.
  std::map<std::string, std::map<std::string, std::string>> override_texts;
  for (const auto& text : overrides) {
    Override item = parse_override(text);
    const YAML::Node& const_root = root;
    bool method_list = item.section == "peft" && const_root["peft"] && const_root["peft"].IsSequence();
    if (item.index >= 0) {
      if (!method_list || item.index >= static_cast<int64_t>(const_root["peft"].size())) {
        throw Error("command line override " + item.text + ": " + path + " has no peft[" + std::to_string(item.index) +
                    "] (peft is " +
                    (method_list ? "a list of " + std::to_string(const_root["peft"].size()) + " method(s))"
                                 : "a single method: use peft." + item.key + "=...)"));
      }
      YAML::Node method = root["peft"][static_cast<size_t>(item.index)];
      if (!method.IsMap()) continue;  // reported as a non-mapping item when the list is read
      method[item.key] = item.value;
      override_texts["peft[" + std::to_string(item.index) + "]"][item.key] = item.text;
      continue;
    }
    if (method_list) {
      throw Error("command line override " + item.text + ": peft in " + path +
                  " is a list of methods; address one as peft[N]." + item.key + "=...");
    }
    if (!const_root[item.section] || !const_root[item.section].IsMap()) {
      root[item.section] = YAML::Node(YAML::NodeType::Map);
    }
    root[item.section][item.key] = item.value;
    override_texts[item.section][item.key] = item.text;
  }

  RunConfig config;
  config.source = path;
  auto resolved = std::make_shared<YAML::Node>(YAML::NodeType::Map);
  for (const auto& name : kSections) (*resolved)[name] = YAML::Node(YAML::NodeType::Map);  // fixes the order

  auto section = [&](const std::string& name) {
    const YAML::Node& const_root = root;
    return Section(make_section_state(const_root[name], path, name, resolved, override_texts[name]));
  };
  Section model = section("model");
  read_model(model, config.model);
  Section data = section("data");
  read_data(data, config.data);
  const YAML::Node peft_node = static_cast<const YAML::Node&>(root)["peft"];
  if (peft_node && peft_node.IsSequence()) {
    // A composition: each item is a method's mapping, recorded as a list in the resolved config.
    if (peft_node.size() == 0) throw Error(yaml_location(path, peft_node) + ": peft: the list of methods is empty");
    config.peft.is_list = true;
    (*resolved)["peft"] = YAML::Node(YAML::NodeType::Sequence);
    for (size_t i = 0; i < peft_node.size(); ++i) {
      std::string name = "peft[" + std::to_string(i) + "]";
      (*resolved)["peft"].push_back(YAML::Node(YAML::NodeType::Map));
      auto state = make_section_state(peft_node[i], path, name, resolved, override_texts[name]);
      state->record_into = (*resolved)["peft"][i];
      Section method(state);
      read_method(method, config.peft.methods.emplace_back(), peft_node.size() > 1);
    }
  } else {
    Section peft = section("peft");
    read_method(peft, config.peft.methods.emplace_back(), false);
  }
  for (const auto& method : config.peft.methods) {
    // Both would train weights that are stored quantized and take no gradient.
    if (config.model.quantize == "none") break;
    if (method.name == "full") {
      model.fail("quantize", "full fine-tuning trains the base's weights, which a quantized base keeps frozen in " +
                                 config.model.quantize + " (use a PEFT method, or quantize: none)");
    }
    if (method.name == "bitfit") {
      model.fail("quantize", "bitfit trains the biases of the quantized projections, which stay frozen (use " +
                                 std::string("lora or ia3, or quantize: none)"));
    }
  }
  Section train = section("train");
  read_train(train, config.train);
  Section output = section("output");
  read_output(output, config.output);

  config.resolved_yaml = emit_yaml(*resolved);
  return config;
}

void check_resumable_config(const std::string& saved_path, const std::string& resolved_yaml) {
  // Keys that may change between the interrupted run and its continuation.
  static const std::set<std::string> free_keys = {"data.train",
                                                  "data.eval",
                                                  "data.max_eval_examples",
                                                  "train.epochs",
                                                  "train.max_steps",
                                                  "train.eval_every",
                                                  "train.eval_batch_size",
                                                  "train.log_every",
                                                  "train.threads",
                                                  "train.gradient_checkpointing",
                                                  "train.save_every",
                                                  "train.keep_checkpoints",
                                                  "train.on_nonfinite",
                                                  "train.max_nonfinite_in_a_row",
                                                  "model.device"};
  YAML::Node saved = load_yaml_file(saved_path, "checkpoint configuration");
  YAML::Node current = YAML::Load(resolved_yaml);
  check(saved.IsMap(), saved_path + ": not a run configuration");
  for (const auto& name : kSections) {
    if (name == "output") continue;
    const YAML::Node was = static_cast<const YAML::Node&>(saved)[name];
    const YAML::Node now = static_cast<const YAML::Node&>(current)[name];
    std::set<std::string> keys;
    for (const auto& node : {was, now}) {
      if (node && node.IsMap()) {
        for (const auto& pair : node) keys.insert(pair.first.Scalar());
      }
    }
    if (!(was && was.IsMap()) || !(now && now.IsMap())) keys = {""};  // a method list: compared whole
    for (const auto& key : keys) {
      std::string path = key.empty() ? name : name + "." + key;
      if (free_keys.count(path)) continue;
      auto text = [&](const YAML::Node& node) {
        YAML::Node value = key.empty() ? node : (node && node.IsMap() ? node[key] : YAML::Node());
        if (!value || !value.IsDefined()) return std::string("(unset)");
        YAML::Emitter out;
        out << YAML::Flow << value;
        return std::string(out.c_str());
      };
      if (text(was) != text(now)) {
        throw Error("cannot resume: " + path + " was " + text(was) + " in the checkpoint's run (" + saved_path +
                    ") but is " + text(now) + " now; resume with the same setting or start a new run");
      }
    }
  }
}

std::vector<std::string> PeftConfig::modules_to_save() const {
  std::vector<std::string> out;
  for (const auto& method : methods) {
    for (const auto& module : method.modules_to_save) {
      if (std::find(out.begin(), out.end(), module) == out.end()) out.push_back(module);
    }
  }
  return out;
}

}  // namespace peft
