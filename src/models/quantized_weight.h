// A frozen linear weight stored in 4 or 8 bits (`model.quantize`), QLoRA-style: the base is kept quantized and
// dequantized block by block just before each product, never all layers at once; the adapter trains on top in the
// compute dtype.
//
// nf4 (Dettmers et al. 2023, bitsandbytes' layout): the weight [out, in] flattened row-major into blocks of
// `blocksize` (64) values, each block scaled by its absolute maximum (float32) and every value replaced by the
// nearest of 16 normal-float levels (ties to the lower level); two 4-bit codes per byte, element 2k in the high
// nibble. The last block may be partial, as in bitsandbytes. Double quantization stores the block maxima as 8-bit
// codes of (absmax - mean) over blocks of 256, with bitsandbytes' signed dynamic code book.
// int8: one scale per output row, absmax / 127; codes round(w / scale) in [-127, 127].
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace peft {

enum class QuantKind { nf4, int8 };

// "nf4", "int8".
std::string quant_kind_name(QuantKind kind);

struct QuantizedWeight {
  QuantKind kind = QuantKind::nf4;
  int64_t out_features = 0;
  int64_t in_features = 0;
  int64_t blocksize = 64;  // nf4: values per absmax

  torch::Tensor codes;      // nf4: uint8 [ceil(n / 2)]; int8: int8 [out, in]
  torch::Tensor code_book;  // nf4: float32 [16], the levels the codes index
  torch::Tensor absmax;     // nf4: float32 [blocks] (undefined with double quantization); int8: float32 [out] scales

  // nf4 double quantization: absmax[j] = nested_code_book[absmax_codes[j]] · nested_absmax[j / nested_blocksize]
  // + nested_offset, in float32.
  torch::Tensor absmax_codes;      // uint8 [blocks]
  torch::Tensor nested_absmax;     // float32 [ceil(blocks / nested_blocksize)]
  torch::Tensor nested_code_book;  // float32 [256]
  int64_t nested_blocksize = 256;
  float nested_offset = 0.0f;

  int64_t numel() const { return out_features * in_features; }
  int64_t blocks() const { return (numel() + blocksize - 1) / blocksize; }
  bool double_quantized() const { return absmax_codes.defined(); }

  // The weight [out, in] in `dtype`: code_book[code] · absmax in float32, then cast (bitsandbytes' arithmetic).
  torch::Tensor dequantize(torch::ScalarType dtype) const;
  // nf4: the float32 absmax of every block, double quantization undone.
  torch::Tensor block_absmax() const;
  // Bytes held (codes and scales), for the memory report.
  int64_t bytes() const;
  // Throws peft::Error naming `where` when the parts do not fit each other (a truncated or inconsistent file).
  void check_consistent(const std::string& where) const;
};

// NF4's 16 levels (QLoRA, appendix E; bitsandbytes' table), float32.
torch::Tensor nf4_code_book();
// bitsandbytes' signed dynamic 8-bit code book (create_dynamic_map), float32 [256], ascending. Built here in
// float64 and rounded once to float32.
torch::Tensor dynamic_code_book();

// Quantizes a weight [out, in] of any floating dtype (read as float32).
QuantizedWeight quantize_nf4(const torch::Tensor& weight, int64_t blocksize = 64, bool double_quant = false);
QuantizedWeight quantize_int8(const torch::Tensor& weight);
// Either, by kind (double_quant applies to nf4).
QuantizedWeight quantize_weight(const torch::Tensor& weight, QuantKind kind, bool double_quant);
// `weight` quantized as `like` is: same kind, block size and double quantization (a weight a method rewrote).
QuantizedWeight quantize_like(const torch::Tensor& weight, const QuantizedWeight& like);
// "nf4" / "int8" -> the kind; throws peft::Error for anything else.
QuantKind parse_quant_kind(const std::string& name);

// Wall time spent in QuantizedWeight::dequantize since the process began (all threads), for peft-bench's share.
// Host time: on a GPU it counts kernel launches, not the kernels.
int64_t dequantize_nanoseconds();

// y = x·Wᵀ with W dequantized for the product and, in backward, again for the input's gradient: no copy of W is
// kept between the two (W takes no gradient).
torch::Tensor quantized_linear(const torch::Tensor& x, const std::shared_ptr<const QuantizedWeight>& weight);

}  // namespace peft
