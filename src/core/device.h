// Device, dtype and thread settings from their config spellings.
#pragma once

#include <torch/torch.h>

#include <string>

namespace peft {

// "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N". Throws peft::Error for other spellings or
// for CUDA on a machine without it.
torch::Device resolve_device(const std::string& spelling);

// "float32" | "bfloat16" | "float16" (also "auto" = float32). Throws peft::Error otherwise.
torch::Dtype parse_dtype(const std::string& spelling);

// A compute dtype the device has kernels for: LibTorch's CPU lacks float16 matrix products. Throws peft::Error.
void check_dtype_on_device(torch::Dtype dtype, const torch::Device& device);

// Intra-op threads: `requested` > 0, else every core this process may run on.
int configure_threads(int64_t requested);

}  // namespace peft
