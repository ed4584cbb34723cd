// The process's resident memory as Linux reports it (/proc/self/status): what a CPU run's memory costs.
#pragma once

namespace peft {

// Peak resident set size (VmHWM), in bytes; 0 where /proc is unavailable.
double peak_rss_bytes();
// Starts the peak over from the current resident size (Linux 4.0+: clear_refs "5"); false where that is refused.
bool reset_peak_rss();

// Peak bytes CUDA's caching allocator has handed out on `device` since reset_cuda_peak; -1 in a build without CUDA.
double cuda_peak_bytes(int device);
void reset_cuda_peak(int device);

// glibc serves large blocks with mmap and hands them back to the kernel when freed, so the next tensor of that
// size faults every page in again. Inference, whose shapes change from batch to batch, spent most of its time
// there: peft-eval on the E2E slice with 3 in-context demonstrations took 59 s (27 s in the kernel), 5.7 s with
// every block kept in the heap, for 28% more peak resident memory (358 MB against 280 MB); plain peft-eval on it
// 4.7 s against 2.7 s. Training is unchanged.
void keep_freed_tensors_in_heap();

}  // namespace peft
