#include "models/torchscript/script_model.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/strings.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "io/atomic_file.h"
#include "train/loss.h"

namespace peft {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// The Projections that rewritten graphs call, by site id. Ids are never reused, so a graph can only reach
// projections of the model that made it; a model removes its own when it is destroyed.
class SiteTable {
 public:
  static SiteTable& instance() {
    static SiteTable table;
    return table;
  }
  int64_t add(Projection projection) {
    std::lock_guard<std::mutex> lock(mutex_);
    sites_.emplace(next_, std::move(projection));
    return next_++;
  }
  Projection get(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = sites_.find(id);
    TORCH_CHECK(found != sites_.end(), "peft::project: no linear layer has site id ", id);
    return found->second;
  }
  void remove(int64_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    sites_.erase(id);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<int64_t, Projection> sites_;
  int64_t next_ = 0;
};

// Composed of ATen calls, so autograd records through it like through any other op of the graph.
torch::Tensor project(const torch::Tensor& x, int64_t site) { return SiteTable::instance().get(site)->forward(x); }

TORCH_LIBRARY(peft, library) { library.def("project(Tensor x, int site) -> Tensor", &project); }

// The submodule path a value was read from by prim::GetAttr from the graph's `self` ("blocks.0.fc_in.weight"),
// or "" when it comes from elsewhere.
std::string attribute_path(Value* value, Value* self) {
  std::vector<std::string> names;
  while (value->node()->kind() == torch::jit::prim::GetAttr) {
    names.insert(names.begin(), value->node()->s(torch::jit::attr::name));
    value = value->node()->input(0);
  }
  return value == self ? join(names, ".") : "";
}

void collect_linears(torch::jit::Block* block, std::vector<Node*>& out) {
  for (Node* node : block->nodes()) {
    if (node->kind() == torch::jit::aten::linear) out.push_back(node);
    for (torch::jit::Block* inner : node->blocks()) collect_linears(inner, out);
  }
}

bool has_calls(torch::jit::Block* block) {
  for (Node* node : block->nodes()) {
    if (node->kind() == torch::jit::prim::CallMethod || node->kind() == torch::jit::prim::CallFunction) return true;
    for (torch::jit::Block* inner : node->blocks()) {
      if (has_calls(inner)) return true;
    }
  }
  return false;
}

using LinearSites = std::map<std::string, std::vector<Node*>>;

// The linear layers of an inlined graph: aten::linear calls whose weight (and bias, if any) are a submodule's
// `weight` and `bias` attributes, by submodule path (a layer may be called more than once).
LinearSites linear_sites(torch::jit::Graph& graph) {
  Value* self = graph.inputs()[0];
  std::vector<Node*> linears;
  collect_linears(graph.block(), linears);
  LinearSites sites;
  for (Node* node : linears) {
    std::string weight = attribute_path(node->input(1), self);
    if (weight.empty() || !ends_with(weight, ".weight")) continue;
    std::string module_path = weight.substr(0, weight.size() - 7);
    Value* bias = node->input(2);
    bool no_bias = bias->type()->kind() == c10::TypeKind::NoneType;
    if (!no_bias && attribute_path(bias, self) != module_path + ".bias") continue;
    sites[module_path].push_back(node);
  }
  return sites;
}

std::string shape_string(c10::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// What went wrong in a TorchScript error: its last line ("RuntimeError: mat1 and mat2 shapes cannot be ..."), after
// the interpreter's traceback.
std::string last_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  size_t newline = text.rfind('\n');
  return newline == std::string::npos ? text : text.substr(newline + 1);
}

// The tensor a module output stands for: itself, the first element of a tuple, or a dict's `key`.
torch::Tensor output_tensor(const torch::jit::IValue& value, const std::string& key, const std::string& where) {
  if (value.isTensor()) return value.toTensor();
  if (value.isTuple() && !value.toTupleRef().elements().empty() && value.toTupleRef().elements()[0].isTensor()) {
    return value.toTupleRef().elements()[0].toTensor();
  }
  if (value.isGenericDict()) {
    for (const auto& entry : value.toGenericDict()) {
      if (entry.key().isString() && entry.key().toStringRef() == key && entry.value().isTensor()) {
        return entry.value().toTensor();
      }
    }
  }
  throw Error(where + ": forward returns " + value.tagKind() +
              ", not a tensor, a tuple starting with one or a dict with '" + key + "'");
}

// The logits (N, V), float32, of the positions of (B, T, V) logits that predict a scored token.
torch::Tensor scored_logit_rows(const torch::Tensor& logits, const ScoredPositions& scored) {
  auto rows = logits.narrow(1, 0, logits.size(1) - 1).reshape({-1, logits.size(2)});
  return rows.index_select(0, scored.flat_index).to(torch::kFloat);
}

}  // namespace

ScriptModel::ScriptModel(torch::jit::Module module, std::string path, const std::string& declared_output,
                         const torch::Device& device, torch::Dtype dtype)
    : Model(ModelConfig{}), module_(std::move(module)), path_(std::move(path)) {
  config_.architecture = "TorchScript";
  config_.model_type = "torchscript";
  config_.max_position_embeddings = std::numeric_limits<int32_t>::max();
  module_.to(device);
  if (dtype != torch::kFloat) module_.to(dtype);
  auto method = module_.find_method("forward");
  check(method.has_value(), path_ + ": the TorchScript module has no forward method");
  std::string signature = bind_arguments(method->function().getSchema(), declared_output);

  // The graph with every call inlined, so that each linear layer is an aten::linear on a submodule's weight.
  auto graph = method->graph()->copy();
  for (int pass = 0; pass < 64 && has_calls(graph->block()); ++pass) torch::jit::Inline(*graph);
  auto sites = linear_sites(*graph);
  auto projections = adopt_parameters(sites);
  rewrite_linears(*graph, sites, projections);
  forward_ = std::make_unique<torch::jit::GraphFunction>(c10::QualifiedName("peft_forward"), graph, nullptr);
  probe_output(signature, declared_output, device);
  freeze();
}

// Arguments are bound by name; the first is the token ids whatever it is called. Returns the signature, for
// messages.
std::string ScriptModel::bind_arguments(const c10::FunctionSchema& schema, const std::string& declared_output) {
  std::string signature;
  for (size_t i = 1; i < schema.arguments().size(); ++i) {
    const auto& argument = schema.arguments()[i];
    signature += (i > 1 ? ", " : "") + argument.name();
    Role role = Role::default_value;
    if (i == 1 || argument.name() == "input_ids") {
      role = Role::input_ids;
    } else if (argument.name() == "attention_mask") {
      role = Role::attention_mask;
    } else if (argument.name() == "token_type_ids") {
      role = Role::token_type_ids;
    } else if (argument.name() == "labels" ||
               (declared_output == "loss" && i == 2 && !argument.default_value().has_value())) {
      role = Role::labels;
    }
    bool has_labels = std::find(roles_.begin(), roles_.end(), Role::labels) != roles_.end();
    if (role == Role::labels && (declared_output != "loss" || has_labels)) role = Role::default_value;
    check(role != Role::default_value || argument.default_value().has_value(),
          path_ + ": forward(" + signature + (i + 1 < schema.arguments().size() ? ", ..." : "") +
              ") does not fit model.output: " + declared_output + ": argument '" + argument.name() +
              "' has no default and is none of input_ids, attention_mask, token_type_ids" +
              (declared_output == "loss" ? ", labels" : ""));
    roles_.push_back(role);
    default_values_.push_back(role == Role::default_value ? *argument.default_value() : torch::jit::IValue());
  }
  check(!roles_.empty(), path_ + ": forward takes no input; it must take the token ids (input_ids)");
  if (declared_output == "loss") {
    check(std::find(roles_.begin(), roles_.end(), Role::labels) != roles_.end(),
          path_ + ": model.output: loss, but forward(" + signature +
              ") takes no labels (name the argument `labels`, or make it the second)");
  }
  return signature;
}

// The module's parameters under their own paths in this module tree: a Projection (sharing the module's tensors)
// per linear layer, plain modules elsewhere. Returns the projections by module path.
std::map<std::string, Projection> ScriptModel::adopt_parameters(const LinearSites& sites) {
  torch::NoGradGuard no_grad;
  std::map<std::string, std::shared_ptr<torch::nn::Module>> nodes{{"", nullptr}};
  std::function<torch::nn::Module&(const std::string&)> node_at =
      [&](const std::string& module_path) -> torch::nn::Module& {
    if (module_path.empty()) return *this;
    auto found = nodes.find(module_path);
    if (found != nodes.end()) return *found->second;
    size_t dot = module_path.rfind('.');
    std::string parent = dot == std::string::npos ? "" : module_path.substr(0, dot);
    std::string name = module_path.substr(dot == std::string::npos ? 0 : dot + 1);
    auto child = std::make_shared<torch::nn::Module>();
    nodes[module_path] = child;
    return *node_at(parent).register_module(name, child);
  };
  std::map<std::string, Projection> projections_by_path;
  for (const auto& item : module_.named_parameters(/*recurse=*/true)) {
    size_t dot = item.name.rfind('.');
    std::string owner = dot == std::string::npos ? "" : item.name.substr(0, dot);
    std::string leaf = item.name.substr(dot == std::string::npos ? 0 : dot + 1);
    if (sites.count(owner) && (leaf == "weight" || leaf == "bias")) {
      if (leaf == "bias" || projections_by_path.count(owner)) continue;
      auto submodule = module_;
      for (const auto& name : split(owner, '.')) submodule = submodule.attr(name).toModule();
      auto bias_value = submodule.hasattr("bias") ? submodule.attr("bias") : torch::jit::IValue();
      auto projection = Projection(item.value, bias_value.isTensor() ? bias_value.toTensor() : torch::Tensor());
      size_t last = owner.rfind('.');
      node_at(last == std::string::npos ? "" : owner.substr(0, last))
          .register_module(owner.substr(last == std::string::npos ? 0 : last + 1), projection);
      projections_by_path.emplace(owner, projection);
      continue;
    }
    node_at(owner).register_parameter(leaf, item.value, /*requires_grad=*/false);
  }
  check(!projections_by_path.empty(),
        path_ +
            ": found no linear layer (nn.Linear submodule) in its forward graph, so LoRA, (IA)³ and BitFit have "
            "nothing to attach to");
  return projections_by_path;
}

// Each linear call becomes peft::project(x, site), which runs the layer's Projection and its hooks; the head is
// the layer whose result forward returns directly (alone or first in a tuple).
void ScriptModel::rewrite_linears(torch::jit::Graph& graph, const LinearSites& sites,
                                  const std::map<std::string, Projection>& projections) {
  std::map<int64_t, std::string> site_paths;  // for naming the head below
  for (const auto& [module_path, calls] : sites) {
    auto found = projections.find(module_path);
    if (found == projections.end()) continue;  // its weight is not a parameter: left as it is
    int64_t site = SiteTable::instance().add(found->second);
    site_ids_.push_back(site);
    site_paths[site] = module_path;
    for (Node* node : calls) {
      torch::jit::WithInsertPoint insert_point(node);
      Value* result =
          graph.insert(c10::Symbol::fromQualString("peft::project"), {node->input(0), torch::jit::NamedValue(site)});
      node->output()->replaceAllUsesWith(result);
      node->destroy();
    }
  }
  torch::jit::EliminateDeadCode(graph.block());
  Value* returned = graph.outputs()[0];
  if (returned->node()->kind() == torch::jit::prim::TupleConstruct) returned = returned->node()->input(0);
  if (returned->node()->kind() == c10::Symbol::fromQualString("peft::project")) {
    head_path_ = site_paths.at(returned->node()->input(1)->node()->i(torch::jit::attr::value));
  }
}

// A probe batch tells the output's kind and sizes, and that the signature works at all.
void ScriptModel::probe_output(const std::string& signature, const std::string& declared_output,
                               const torch::Device& device) {
  Batch probe;
  probe.input_ids = torch::zeros({1, 2}, torch::TensorOptions().dtype(torch::kLong).device(device));
  probe.attention_mask = torch::ones_like(probe.input_ids);
  probe.token_type_ids = torch::zeros_like(probe.input_ids);
  probe.labels = probe.input_ids.clone();
  probe.class_labels = torch::zeros({1}, probe.input_ids.options());
  bool was_training = module_.is_training();
  module_.eval();
  torch::Tensor out;
  try {
    out = forward(probe);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (forward(" + signature + ") under model.output: " + declared_output + ")");
  }
  module_.train(was_training);
  if (declared_output == "loss") {
    check(out.dim() == 0, path_ + ": model.output: loss, but forward returns a tensor of shape " +
                              shape_string(out.sizes()) + ", not a scalar");
    output_ = Output::loss;
  } else {
    check(out.dim() == 3 || out.dim() == 2,
          path_ + ": model.output: logits, but forward returns shape " + shape_string(out.sizes()) +
              " for a [1, 2] batch: expected [batch, tokens, vocab] (causal LM) or [batch, classes]" +
              (out.dim() == 0 ? " (a scalar: is it a loss? then set model.output: loss)" : ""));
    check(out.dim() == 2 || out.size(1) == 2,
          path_ + ": forward returns " + shape_string(out.sizes()) +
              " for a [1, 2] batch: causal-LM logits need one row per token ([1, 2, vocab])");
    output_ = out.dim() == 3 ? Output::token_logits : Output::class_logits;
    if (output_ == Output::token_logits) config_.vocab_size = out.size(2);
    if (output_ == Output::class_logits) config_.num_labels = out.size(1);
  }
}

ScriptModel::~ScriptModel() {
  for (int64_t site : site_ids_) SiteTable::instance().remove(site);
}

std::vector<torch::jit::IValue> ScriptModel::arguments(const Batch& batch) const {
  std::vector<torch::jit::IValue> stack{module_._ivalue()};
  for (size_t i = 0; i < roles_.size(); ++i) {
    switch (roles_[i]) {
      case Role::input_ids:
        stack.emplace_back(batch.input_ids);
        break;
      case Role::attention_mask:
        stack.emplace_back(batch.attention_mask);
        break;
      case Role::token_type_ids:
        stack.emplace_back(batch.token_type_ids.defined() ? batch.token_type_ids : torch::zeros_like(batch.input_ids));
        break;
      case Role::labels:
        stack.emplace_back(output_ == Output::class_logits ? batch.class_labels : batch.labels);
        break;
      case Role::default_value:
        stack.push_back(default_values_[i]);
        break;
    }
  }
  return stack;
}

torch::Tensor ScriptModel::forward(const Batch& batch) {
  // The graph runs as written (no fusion or specialisation), so results equal the module's own forward.
  torch::jit::GraphOptimizerEnabledGuard plain(false);
  torch::jit::IValue out;
  try {
    out = (*forward_)(arguments(batch));
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {  // the module's own code refused the batch
    throw Error(path_ + ": forward failed on a batch of shape " + shape_string(batch.input_ids.sizes()) + ": " +
                last_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {  // the interpreter reports errors in the module's code as runtime errors
    throw Error(path_ + ": forward failed on a batch of shape " + shape_string(batch.input_ids.sizes()) + ": " +
                last_line(e.what()));
  }
  return output_tensor(out, output_ == Output::loss ? "loss" : "logits", path_);
}

torch::Tensor ScriptModel::loss(const Batch& batch) {
  auto out = forward(batch);
  if (output_ == Output::loss) return out.to(torch::kFloat);
  if (output_ == Output::class_logits) {
    return torch::nn::functional::cross_entropy(out.to(torch::kFloat), batch.class_labels);
  }
  auto scored = scored_positions(batch.labels);
  return torch::nn::functional::cross_entropy(scored_logit_rows(out, scored), scored.targets);
}

torch::Tensor ScriptModel::scored_nll(const Batch& batch) {
  auto scored = scored_positions(batch.labels);
  if (output_ == Output::token_logits) {
    return torch::nn::functional::cross_entropy(
        scored_logit_rows(forward(batch), scored), scored.targets,
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  }
  check(output_ == Output::loss, path_ + ": returns class logits, which score classes, not tokens");
  auto nll =
      torch::zeros({scored.row.size(0)}, torch::TensorOptions().dtype(torch::kFloat).device(scored.row.device()));
  for (int64_t row = 0; row < batch.input_ids.size(0); ++row) {
    auto positions = (scored.row == row).nonzero().squeeze(1);
    if (positions.numel() == 0) continue;
    int64_t length = batch.attention_mask[row].sum().item<int64_t>();
    Batch one;
    one.input_ids = batch.input_ids[row].narrow(0, 0, length).unsqueeze(0);
    one.attention_mask = batch.attention_mask[row].narrow(0, 0, length).unsqueeze(0);
    one.labels = batch.labels[row].narrow(0, 0, length).unsqueeze(0);
    one.token_type_ids = torch::zeros_like(one.input_ids);
    nll.index_fill_(0, positions, forward(one).to(torch::kFloat).item<double>());
  }
  return nll;
}

void ScriptModel::train(bool on) {
  torch::nn::Module::train(on);
  module_.train(on);
}

void ScriptModel::save(const std::string& path) {
  std::ostringstream bytes;
  module_.save(bytes);
  write_file_atomic(path, bytes.str());
}

}  // namespace peft
