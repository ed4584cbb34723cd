// Data-parallel training across processes on PyTorch's own distributed engine (c10d): a process learns its rank
// from the environment torchrun, Slurm or mpirun give it, meets the others through a TCPStore at
// MASTER_ADDR:MASTER_PORT and joins a Gloo process group (CPU tensors; NCCL for CUDA where LibTorch has it).
// Every rank computes its shard of each global batch; the trainable parameters' gradients (small, for PEFT) travel
// as one flat bucket, summed by a single all-reduce per optimiser step.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace peft {

// Where this process stands among the others, as launchers describe it.
struct World {
  int rank = 0;
  int size = 1;
  int local_rank = 0;       // rank among the processes of this machine (picks the GPU)
  int local_size = 1;       // processes on this machine (shares the cores)
  std::string master_addr;  // rendezvous host (rank 0's TCPStore)
  int master_port = 0;
  std::string launcher;  // which variables it came from: "torchrun", "slurm", "mpirun" or "" (one process)

  bool distributed() const { return size > 1; }
  bool leader() const { return rank == 0; }
};

// RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE (torchrun), else SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID/
// SLURM_NTASKS_PER_NODE, else OMPI_COMM_WORLD_RANK/_SIZE/_LOCAL_RANK/_LOCAL_SIZE; MASTER_ADDR and MASTER_PORT for
// more than one process. No variables: one process. Throws peft::Error naming the variable for a malformed or
// inconsistent value (RANK >= WORLD_SIZE, a missing MASTER_ADDR, a port outside 1..65535).
World world_from_environment();

// A joined process group. Construction blocks until all `world.size` processes have joined (or the timeout).
class DataParallel {
 public:
  DataParallel(const World& world, const torch::Device& device);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  const World& world() const { return world_; }
  std::string backend() const;

  // Sums `flat` (one contiguous tensor) over all ranks, in place.
  void all_reduce_sum(torch::Tensor& flat);
  // Every rank's `tensors` take rank 0's values (the starting adapter, so that all ranks train the same one).
  void broadcast_from_leader(const std::vector<torch::Tensor>& tensors);
  void barrier();

 private:
  World world_;
  torch::Device device_;
  struct Group;
  std::unique_ptr<Group> group_;
};

// Gradients of `parameters` (undefined ones as zeros) and `extra` values, in one flat float32 buffer on the
// parameters' device; unflatten_gradients() writes the summed buffer back into the gradients and returns the
// summed extras.
torch::Tensor flatten_gradients(const std::vector<torch::Tensor>& parameters, const std::vector<double>& extra);
std::vector<double> unflatten_gradients(const torch::Tensor& flat, const std::vector<torch::Tensor>& parameters,
                                        size_t extra);

// The positions of a global batch of `batch_size` examples that rank `rank` of `size` computes: rank, rank + size,
// ... (empty when the batch is shorter than the rank).
std::vector<size_t> shard_positions(size_t batch_size, int rank, int size);

}  // namespace peft
