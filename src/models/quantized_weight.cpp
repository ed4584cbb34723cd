#include "models/quantized_weight.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>

#include "core/error.h"

namespace peft {
namespace {

namespace F = torch::nn::functional;

std::atomic<int64_t> dequantize_total_ns{0};

// Midpoints between neighbouring levels, in float32 as bitsandbytes forms them; a value on a midpoint takes the
// lower level (torch::bucketize with right = false).
torch::Tensor midpoints(const torch::Tensor& levels) { return (levels.slice(0, 0, -1) + levels.slice(0, 1)) / 2; }

// Rows of `values` (blocks, width) scaled into [-1, 1] by their absolute maxima, then coded.
torch::Tensor nearest_levels(const torch::Tensor& blocks, const torch::Tensor& absmax, const torch::Tensor& levels) {
  // x · (1 / absmax) in float32, as bitsandbytes; an all-zero block stays zero.
  auto inverse = torch::reciprocal(absmax.clamp_min(1e-38f)).unsqueeze(1);
  auto normalised = (blocks * inverse).clamp(-1.0, 1.0);
  return torch::bucketize(normalised, midpoints(levels).to(blocks.device()), /*out_int32=*/false, /*right=*/false);
}

// Zero padding of a flat tensor to `length`.
torch::Tensor padded(const torch::Tensor& flat, int64_t length) {
  if (flat.numel() == length) return flat;
  return F::pad(flat, F::PadFuncOptions({0, length - flat.numel()}));
}

// Every byte's two levels, (code_book[b >> 4], code_book[b & 15]): one gather per byte dequantizes both nibbles.
torch::Tensor byte_pairs(const torch::Tensor& code_book) {
  auto byte = torch::arange(256, torch::dtype(torch::kLong).device(code_book.device()));
  return torch::stack(
      {code_book.index_select(0, byte.bitwise_right_shift(4)), code_book.index_select(0, byte.bitwise_and(15))}, 1);
}

// Autograd of y = x·Wᵀ for a quantized W: the input's gradient is grad_y·W with W dequantized again.
struct QuantizedLinearBackward : public torch::autograd::Node {
  std::shared_ptr<const QuantizedWeight> weight;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    const auto& grad = grads[0];
    if (!grad.defined()) return {torch::Tensor()};
    return {torch::matmul(grad, weight->dequantize(grad.scalar_type()))};
  }
  std::string name() const override { return "QuantizedLinearBackward"; }
};

}  // namespace

std::string quant_kind_name(QuantKind kind) { return kind == QuantKind::nf4 ? "nf4" : "int8"; }

torch::Tensor nf4_code_book() {
  return torch::tensor({-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
                        -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
                        0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                        0.7229568362236023f, 1.0f});
}

torch::Tensor dynamic_code_book() {
  // bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): for i = 0..6, the midpoints
  // of linspace(0.1, 1, 2^i + 1), scaled by 10^(i - 6), with both signs; then 0 and 1.
  std::vector<double> levels = {0.0, 1.0};
  for (int i = 0; i < 7; ++i) {
    int64_t intervals = int64_t{1} << i;
    double scale = std::pow(10.0, i - 6);
    for (int64_t k = 0; k < intervals; ++k) {
      double low = 0.1 + 0.9 * static_cast<double>(k) / static_cast<double>(intervals);
      double high = 0.1 + 0.9 * static_cast<double>(k + 1) / static_cast<double>(intervals);
      double mean = (low + high) / 2;
      levels.push_back(scale * mean);
      levels.push_back(-scale * mean);
    }
  }
  std::sort(levels.begin(), levels.end());
  return torch::tensor(levels, torch::kDouble).to(torch::kFloat);
}

QuantizedWeight quantize_nf4(const torch::Tensor& weight, int64_t blocksize, bool double_quant) {
  check(weight.dim() == 2, "internal: quantize_nf4 takes a matrix");
  QuantizedWeight q;
  q.kind = QuantKind::nf4;
  q.out_features = weight.size(0);
  q.in_features = weight.size(1);
  q.blocksize = blocksize;
  torch::NoGradGuard no_grad;
  auto levels = nf4_code_book().to(weight.device());
  int64_t n = q.numel(), blocks = q.blocks();
  auto values =
      padded(weight.detach().to(torch::kFloat).contiguous().view(-1), blocks * blocksize).view({blocks, blocksize});
  auto absmax = values.abs().amax(1);
  auto codes = nearest_levels(values, absmax, levels).view(-1).slice(0, 0, n);
  // An odd count ends in a half byte: its low nibble codes 0 (level 7), as bitsandbytes pads.
  codes = F::pad(codes, F::PadFuncOptions({0, n % 2}).value(7)).view({-1, 2});
  q.codes = codes.select(1, 0).bitwise_left_shift(4).bitwise_or(codes.select(1, 1)).to(torch::kUInt8);
  q.code_book = levels;
  if (!double_quant) {
    q.absmax = absmax;
    return q;
  }
  // The maxima less their mean, coded with 8 bits in blocks of 256 (the mean in float64, rounded once).
  q.nested_offset = static_cast<float>(absmax.to(torch::kDouble).mean().item<double>());
  int64_t nested_blocks = (blocks + q.nested_blocksize - 1) / q.nested_blocksize;
  auto centred = padded(absmax - q.nested_offset, nested_blocks * q.nested_blocksize).view({nested_blocks, -1});
  q.nested_absmax = centred.abs().amax(1);
  q.nested_code_book = dynamic_code_book().to(weight.device());
  q.absmax_codes =
      nearest_levels(centred, q.nested_absmax, q.nested_code_book).view(-1).slice(0, 0, blocks).to(torch::kUInt8);
  return q;
}

QuantizedWeight quantize_int8(const torch::Tensor& weight) {
  check(weight.dim() == 2, "internal: quantize_int8 takes a matrix");
  QuantizedWeight q;
  q.kind = QuantKind::int8;
  q.out_features = weight.size(0);
  q.in_features = weight.size(1);
  torch::NoGradGuard no_grad;
  auto w = weight.detach().to(torch::kFloat);
  q.absmax = w.abs().amax(1) / 127.0f;  // the row's scale
  auto scale = q.absmax.unsqueeze(1);
  q.codes = torch::where(scale > 0, torch::round(w / scale), torch::zeros_like(w)).clamp(-127, 127).to(torch::kChar);
  return q;
}

QuantizedWeight quantize_weight(const torch::Tensor& weight, QuantKind kind, bool double_quant) {
  return kind == QuantKind::nf4 ? quantize_nf4(weight, 64, double_quant) : quantize_int8(weight);
}

QuantizedWeight quantize_like(const torch::Tensor& weight, const QuantizedWeight& like) {
  if (like.kind == QuantKind::int8) return quantize_int8(weight);
  return quantize_nf4(weight, like.blocksize, like.double_quantized());
}

QuantKind parse_quant_kind(const std::string& name) {
  if (name == "nf4") return QuantKind::nf4;
  if (name == "int8") return QuantKind::int8;
  throw Error("unknown quantization '" + name + "' (expected nf4 or int8)");
}

torch::Tensor QuantizedWeight::block_absmax() const {
  if (!double_quantized()) return absmax;
  int64_t nested_blocks = nested_absmax.numel();
  auto decoded = nested_code_book.index_select(0, absmax_codes.to(torch::kLong));
  auto scaled =
      padded(decoded, nested_blocks * nested_blocksize).view({nested_blocks, -1}) * nested_absmax.unsqueeze(1);
  return scaled.view(-1).slice(0, 0, blocks()) + nested_offset;
}

int64_t dequantize_nanoseconds() { return dequantize_total_ns.load(); }

torch::Tensor QuantizedWeight::dequantize(torch::ScalarType dtype) const {
  torch::NoGradGuard no_grad;
  auto start = std::chrono::steady_clock::now();
  struct Timer {
    std::chrono::steady_clock::time_point start;
    ~Timer() {
      dequantize_total_ns +=
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
    }
  } timer{start};
  if (kind == QuantKind::int8) return (codes.to(torch::kFloat) * absmax.unsqueeze(1)).to(dtype);
  auto levels = byte_pairs(code_book).index_select(0, codes.to(torch::kLong)).view(-1);
  int64_t blocks = this->blocks();
  auto values = padded(levels.slice(0, 0, std::min(levels.numel(), blocks * blocksize)), blocks * blocksize);
  values = values.view({blocks, blocksize}) * block_absmax().unsqueeze(1);
  return values.view(-1).slice(0, 0, numel()).view({out_features, in_features}).to(dtype);
}

int64_t QuantizedWeight::bytes() const {
  int64_t total = 0;
  for (const auto* tensor : {&codes, &code_book, &absmax, &absmax_codes, &nested_absmax, &nested_code_book}) {
    if (tensor->defined()) total += tensor->numel() * static_cast<int64_t>(tensor->element_size());
  }
  return total;
}

void QuantizedWeight::check_consistent(const std::string& where) const {
  auto fail = [&](const std::string& what) { throw Error(where + ": " + what); };
  if (kind == QuantKind::int8) {
    if (!codes.defined() || codes.sizes() != torch::IntArrayRef({out_features, in_features}))
      fail("int8 codes do not fit");
    if (!absmax.defined() || absmax.numel() != out_features) fail("int8 scales do not fit");
    return;
  }
  if (blocksize < 1) fail("blocksize must be positive, got " + std::to_string(blocksize));
  if (!codes.defined() || codes.numel() != (numel() + 1) / 2) {
    fail("the packed weight holds " + std::to_string(codes.defined() ? codes.numel() : 0) + " bytes, its shape [" +
         std::to_string(out_features) + ", " + std::to_string(in_features) + "] needs " +
         std::to_string((numel() + 1) / 2));
  }
  if (!code_book.defined() || code_book.numel() != 16) fail("the 4-bit code book must hold 16 levels");
  if (double_quantized()) {
    if (absmax_codes.numel() != blocks()) {
      fail("absmax holds " + std::to_string(absmax_codes.numel()) + " values, " + std::to_string(blocks()) +
           " blocks of " + std::to_string(blocksize) + " need one each");
    }
    if (nested_blocksize < 1) fail("nested_blocksize must be positive");
    if (!nested_code_book.defined() || nested_code_book.numel() != 256) fail("nested_quant_map must hold 256 levels");
    if (!nested_absmax.defined() || nested_absmax.numel() != (blocks() + nested_blocksize - 1) / nested_blocksize) {
      fail("nested_absmax does not fit " + std::to_string(blocks()) + " blocks in groups of " +
           std::to_string(nested_blocksize));
    }
  } else if (!absmax.defined() || absmax.numel() != blocks()) {
    fail("absmax holds " + std::to_string(absmax.defined() ? absmax.numel() : 0) + " values, " +
         std::to_string(blocks()) + " blocks of " + std::to_string(blocksize) + " need one each");
  }
}

torch::Tensor quantized_linear(const torch::Tensor& x, const std::shared_ptr<const QuantizedWeight>& weight) {
  torch::Tensor y;
  {
    torch::NoGradGuard no_grad;
    y = F::linear(x, weight->dequantize(x.scalar_type()));
  }
  if (torch::GradMode::is_enabled() && x.requires_grad()) {
    auto node = std::shared_ptr<QuantizedLinearBackward>(new QuantizedLinearBackward(), torch::autograd::deleteNode);
    node->weight = weight;
    node->set_next_edges(torch::autograd::collect_next_edges(x));
    torch::autograd::set_history(y, node);
  }
  return y;
}

}  // namespace peft
