#include "core/process_memory.h"

#include <malloc.h>

#ifdef PEFT_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <fstream>
#include <string>

namespace peft {

double peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "VmHWM:") {
      double kilobytes = 0.0;
      status >> kilobytes;
      return kilobytes * 1024.0;
    }
    std::getline(status, key);
  }
  return 0.0;
}

bool reset_peak_rss() {
  std::ofstream clear("/proc/self/clear_refs");
  clear << "5";
  clear.flush();
  return clear.good();
}

#ifdef PEFT_WITH_CUDA
double cuda_peak_bytes(int device) {
  // allocated_bytes[0]: the aggregate over small and large pools.
  return static_cast<double>(c10::cuda::CUDACachingAllocator::getDeviceStats(device).allocated_bytes[0].peak);
}
void reset_cuda_peak(int device) { c10::cuda::CUDACachingAllocator::resetPeakStats(device); }
#else
double cuda_peak_bytes(int) { return -1.0; }
void reset_cuda_peak(int) {}
#endif

void keep_freed_tensors_in_heap() {
  mallopt(M_MMAP_MAX, 0);                // no block from mmap: freed memory is reused, not returned
  mallopt(M_TRIM_THRESHOLD, 256 << 20);  // the heap's free top goes back only beyond 256 MiB
}

}  // namespace peft
