#include "io/bitsandbytes.h"

#include "core/error.h"
#include "core/strings.h"

namespace peft {
namespace {

const char* kStateSuffix = ".quant_state.bitsandbytes__";

std::string state_key(const std::string& weight_name, const std::string& type) {
  return weight_name + kStateSuffix + type;
}

}  // namespace

CheckpointQuantization read_quantization_config(const nlohmann::json& config, const std::string& file) {
  CheckpointQuantization out;
  auto it = config.find("quantization_config");
  if (it == config.end() || it->is_null()) return out;
  const auto& q = *it;
  check(q.is_object(), file + ": quantization_config must be an object");
  std::string method = q.value("quant_method", std::string("(none)"));
  check(method == "bitsandbytes", file + ": quantization_config.quant_method '" + printable(method) +
                                      "' is not supported (bitsandbytes nf4 checkpoints are)");
  auto flag = [&](const char* key) {
    auto value = q.find(key);
    return value != q.end() && value->is_boolean() && value->get<bool>();
  };
  check(!flag("load_in_8bit"), file +
                                   ": an 8-bit bitsandbytes checkpoint (LLM.int8: int8 weight + SCB) is not "
                                   "supported; load the original weights with model.quantize: int8 instead");
  check(flag("load_in_4bit"), file + ": quantization_config says neither load_in_4bit nor load_in_8bit");
  std::string type = q.value("bnb_4bit_quant_type", std::string("fp4"));  // transformers' default
  check(type == "nf4", file + ": bitsandbytes 4-bit type '" + printable(type) + "' is not supported (nf4 is)");
  out.four_bit = true;
  return out;
}

bool has_bnb_quant_state(const safetensors::Checkpoint& checkpoint, const std::string& weight_name) {
  return checkpoint.contains(state_key(weight_name, "nf4")) || checkpoint.contains(state_key(weight_name, "fp4"));
}

QuantizedWeight read_bnb_4bit(const safetensors::Checkpoint& checkpoint, const std::string& weight_name,
                              int64_t out_features, int64_t in_features, const torch::Device& device,
                              std::set<std::string>& used) {
  std::string where = checkpoint.describe() + ": " + weight_name;
  check(!checkpoint.contains(state_key(weight_name, "fp4")),
        where + " is bitsandbytes fp4, which is not supported (nf4 is)");
  auto read = [&](const std::string& suffix, bool required) -> torch::Tensor {
    std::string key = weight_name + suffix;
    if (!checkpoint.contains(key)) {
      check(!required, where + ": the quant state lacks '" + key + "'");
      return {};
    }
    used.insert(key);
    return checkpoint.tensor(key);
  };
  auto state_bytes = read(std::string(kStateSuffix) + "nf4", true);
  check(state_bytes.scalar_type() == torch::kUInt8 && state_bytes.dim() == 1,
        where + ": the quant state must be a 1-D uint8 tensor (packed JSON)");
  auto contiguous = state_bytes.contiguous();
  std::string text(reinterpret_cast<const char*>(contiguous.data_ptr<uint8_t>()), contiguous.numel());
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception&) {
    throw Error(where + ": the quant state is not valid JSON (a truncated file?)");
  }
  check(state.is_object(), where + ": the quant state must be a JSON object");
  auto integer = [&](const char* key) {
    auto it = state.find(key);
    check(it != state.end() && it->is_number_integer(), where + ": quant state '" + key + "' must be an integer");
    return it->get<int64_t>();
  };
  check(state.value("quant_type", std::string()) == "nf4",
        where + ": quant state quant_type '" + printable(state.value("quant_type", std::string("(none)"))) +
            "' is not supported (nf4 is)");
  auto shape = state.find("shape");
  check(shape != state.end() && shape->is_array() && shape->size() == 2 && (*shape)[0].is_number_integer() &&
            (*shape)[1].is_number_integer(),
        where + ": quant state 'shape' must be [out, in]");
  check((*shape)[0].get<int64_t>() == out_features && (*shape)[1].get<int64_t>() == in_features,
        where + ": quant state shape " + shape->dump() + " but config.json implies [" + std::to_string(out_features) +
            ", " + std::to_string(in_features) + "]");

  QuantizedWeight q;
  q.kind = QuantKind::nf4;
  q.out_features = out_features;
  q.in_features = in_features;
  q.blocksize = integer("blocksize");
  check(q.blocksize >= 1 && q.blocksize <= 1 << 20,
        where + ": quant state blocksize " + std::to_string(q.blocksize) + " is out of range");
  // Any storage dtype holds the same bytes (bnb_4bit_quant_storage).
  auto packed = read("", true).contiguous();
  q.codes = packed.view(torch::kUInt8).reshape({-1}).to(device);
  q.code_book = read(".quant_map", true).to(device, torch::kFloat);
  auto absmax = read(".absmax", true);
  bool nested = state.contains("nested_offset") || checkpoint.contains(weight_name + ".nested_absmax");
  if (nested) {
    check(absmax.scalar_type() == torch::kUInt8, where + ": a double-quantized absmax must be uint8");
    q.absmax_codes = absmax.reshape({-1}).to(device);
    q.nested_absmax = read(".nested_absmax", true).reshape({-1}).to(device, torch::kFloat);
    q.nested_code_book = read(".nested_quant_map", true).reshape({-1}).to(device, torch::kFloat);
    q.nested_blocksize = integer("nested_blocksize");
    auto offset = state.find("nested_offset");
    check(offset != state.end() && offset->is_number(), where + ": quant state 'nested_offset' must be a number");
    q.nested_offset = offset->get<float>();
  } else {
    check(absmax.is_floating_point(), where + ": absmax must be floating point");
    q.absmax = absmax.reshape({-1}).to(device, torch::kFloat);
  }
  q.check_consistent(where);
  return q;
}

}  // namespace peft
