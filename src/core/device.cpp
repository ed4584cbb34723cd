#include "core/device.h"

#include <dlfcn.h>
#include <sched.h>

#include <thread>

#include "core/error.h"

namespace peft {

torch::Device resolve_device(const std::string& spelling) {
  if (spelling == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (spelling == "cpu") return torch::Device(torch::kCPU);
  if (spelling == "cuda" || spelling.rfind("cuda:", 0) == 0) {
    check(torch::cuda::is_available(), "device '" + spelling + "' requested but CUDA is not available");
    int index = 0;
    if (spelling.size() > 5) {
      try {
        size_t used = 0;
        index = std::stoi(spelling.substr(5), &used);
        check(used == spelling.size() - 5, "");
      } catch (const std::exception&) {
        throw Error("invalid device '" + spelling + "' (expected auto, cpu, cuda or cuda:N)");
      }
    }
    check(index >= 0 && index < static_cast<int>(torch::cuda::device_count()),
          "device '" + spelling + "': only " + std::to_string(torch::cuda::device_count()) + " CUDA device(s)");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error("invalid device '" + spelling + "' (expected auto, cpu, cuda or cuda:N)");
}

torch::Dtype parse_dtype(const std::string& spelling) {
  if (spelling == "float32" || spelling == "auto") return torch::kFloat;
  if (spelling == "bfloat16") return torch::kBFloat16;
  if (spelling == "float16") return torch::kHalf;
  throw Error("invalid dtype '" + spelling + "' (expected float32, bfloat16 or float16)");
}

void check_dtype_on_device(torch::Dtype dtype, const torch::Device& device) {
  check(dtype != torch::kHalf || !device.is_cpu(),
        "model.dtype float16 needs a GPU: LibTorch's CPU kernels have no float16 matrix products; use bfloat16 or "
        "float32 on the CPU");
}

namespace {

// OpenBLAS chooses its kernels from CPUID. On processors it does not recognise (seen in virtual machines) it
// falls back to generic "Prescott" kernels, several times slower than the AVX2/AVX-512 ones the CPU supports.
// The choice is made when the library loads, so the tool can only say how to fix it.
void warn_about_generic_blas_kernels() {
  using CoreName = char* (*)();
  auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (!core_name || !core_name()) return;
  std::string core = core_name();
  if (core != "Prescott" && core != "Core2" && core != "Nehalem" && core != "Sandybridge") return;
  const char* better = __builtin_cpu_supports("avx512f") ? "SkylakeX"
                       : __builtin_cpu_supports("avx2")  ? "Haswell"
                                                         : nullptr;
  if (!better) return;
  spdlog::warn(
      "OpenBLAS is using its generic '{}' kernels on a CPU with {}; matrix products are several times "
      "slower than they could be. Run with OPENBLAS_CORETYPE={} in the environment to fix it.",
      core, std::string(better) == "SkylakeX" ? "AVX-512" : "AVX2", better);
}

}  // namespace

int configure_threads(int64_t requested) {
  static bool warned = false;
  if (!warned) {
    warned = true;
    warn_about_generic_blas_kernels();
  }
  int threads = static_cast<int>(requested);
  if (threads <= 0) {
    cpu_set_t set;
    threads = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                           : static_cast<int>(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;
  }
  torch::set_num_threads(threads);
  return threads;
}

}  // namespace peft
