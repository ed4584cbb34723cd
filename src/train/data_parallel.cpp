#include "train/data_parallel.h"

// LibTorch declares its Gloo process group only for builds that have it (Debian's and PyTorch's do).
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "build_features.h"  // PEFT_WITH_NCCL: CMake found a LibTorch built with NCCL
#if PEFT_WITH_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <limits>

#include "core/error.h"
#include "core/strings.h"

namespace peft {
namespace {

const char* variable(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

// An integer environment variable in [low, high]; `fallback` when unset. Slurm writes SLURM_NTASKS_PER_NODE as
// "2(x3)" for three nodes of two tasks: with `count_prefix` the leading count is the value.
int integer_variable(const char* name, int fallback, int low, int high, bool count_prefix = false) {
  const char* text = variable(name);
  if (!text) return fallback;
  char* end = nullptr;
  errno = 0;
  long value = std::strtol(text, &end, 10);
  bool tail_ok = *end == '\0' || (count_prefix && *end == '(');
  check(end != text && tail_ok && errno == 0 && value >= low && value <= high,
        std::string("environment variable ") + name + "='" + printable(text, 40) + "' is not an integer in " +
            std::to_string(low) + ".." + std::to_string(high));
  return static_cast<int>(value);
}

bool is_loopback(const std::string& host) { return host == "localhost" || starts_with(host, "127.") || host == "::1"; }

// The first line of a LibTorch message (they carry a C++ backtrace after it).
std::string first_line(const std::string& text) { return printable(text.substr(0, text.find('\n'))); }

}  // namespace

World world_from_environment() {
  World world;
  const int most = std::numeric_limits<int>::max();
  const char *rank = nullptr, *size = nullptr, *local_rank = nullptr, *local_size = nullptr;
  if (variable("RANK") || variable("WORLD_SIZE")) {
    world.launcher = "torchrun";
    rank = "RANK", size = "WORLD_SIZE", local_rank = "LOCAL_RANK", local_size = "LOCAL_WORLD_SIZE";
  } else if (variable("SLURM_PROCID") && variable("SLURM_NTASKS")) {
    world.launcher = "slurm";
    rank = "SLURM_PROCID", size = "SLURM_NTASKS", local_rank = "SLURM_LOCALID", local_size = "SLURM_NTASKS_PER_NODE";
  } else if (variable("OMPI_COMM_WORLD_RANK")) {
    world.launcher = "mpirun";
    rank = "OMPI_COMM_WORLD_RANK", size = "OMPI_COMM_WORLD_SIZE", local_rank = "OMPI_COMM_WORLD_LOCAL_RANK",
    local_size = "OMPI_COMM_WORLD_LOCAL_SIZE";
  } else {
    return world;
  }
  check(variable(rank) && variable(size), std::string("environment variable ") + (variable(rank) ? size : rank) +
                                              " is missing (" + world.launcher + " sets both " + rank + " and " + size +
                                              ")");
  world.size = integer_variable(size, 1, 1, most);
  world.rank = integer_variable(rank, 0, 0, most);
  check(world.rank < world.size, std::string("environment variable ") + rank + "=" + std::to_string(world.rank) +
                                     " is not below " + size + "=" + std::to_string(world.size));
  world.local_size = integer_variable(local_size, 1, 1, world.size, /*count_prefix=*/world.launcher == "slurm");
  world.local_rank = integer_variable(local_rank, 0, 0, world.size - 1);
  if (!world.distributed()) return world;
  const char* address = variable("MASTER_ADDR");
  check(address != nullptr, "environment variable MASTER_ADDR is missing: " + std::to_string(world.size) +
                                " processes (" + size + ") meet at MASTER_ADDR:MASTER_PORT, rank 0's host");
  world.master_addr = address;
  world.master_port = integer_variable("MASTER_PORT", c10d::TCPStoreOptions::kDefaultPort, 1, 65535);
  return world;
}

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;  // always: host tensors, the start broadcast, barriers
#if PEFT_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // CUDA runs: the gradient bucket stays on the GPU
#endif
};

DataParallel::DataParallel(const World& world, const torch::Device& device)
    : world_(world), device_(device), group_(std::make_unique<Group>()) {
  std::string where = world.master_addr + ":" + std::to_string(world.master_port) + " as rank " +
                      std::to_string(world.rank) + " of " + std::to_string(world.size);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(world.master_port);
    options.isServer = world.leader();
    options.numWorkers = static_cast<size_t>(world.size);
    options.waitWorkers = true;
    options.timeout = std::chrono::minutes(5);
    group_->store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, options);

    auto gloo_options = c10d::ProcessGroupGloo::Options::create();
    // GLOO_SOCKET_IFNAME picks the network interface, as in PyTorch; a loopback rendezvous stays on loopback.
    if (const char* interface = variable("GLOO_SOCKET_IFNAME")) {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else if (is_loopback(world.master_addr)) {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    group_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, world.rank, world.size, gloo_options);
#if PEFT_WITH_NCCL
    if (device.is_cuda()) {
      // A stopped peer must end the others with an error, not leave them waiting on the GPU: NCCL's asynchronous
      // error handling (both spellings of PyTorch's variable) and the same timeout as the rendezvous.
      setenv("NCCL_ASYNC_ERROR_HANDLING", "1", /*overwrite=*/0);
      setenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1", /*overwrite=*/0);
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = std::chrono::minutes(5);
      // A key prefix of its own in the shared store, as PyTorch gives each process group.
      auto store = c10::make_intrusive<c10d::PrefixStore>("nccl", group_->store);
      group_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, world.rank, world.size, nccl_options);
    }
#endif
  } catch (const std::exception& e) {
    throw Error("cannot join the process group at " + where + ": " + first_line(e.what()));
  }
}

DataParallel::~DataParallel() = default;

std::string DataParallel::backend() const {
#if PEFT_WITH_NCCL
  if (group_->nccl) return "nccl";
#endif
  return "gloo";
}

void DataParallel::all_reduce_sum(torch::Tensor& flat) {
  try {
#if PEFT_WITH_NCCL
    if (group_->nccl && flat.is_cuda()) {
      std::vector<at::Tensor> tensors{flat};
      group_->nccl->allreduce(tensors)->wait();  // orders the current CUDA stream after the sum
      return;
    }
#endif
    // Gloo sums host tensors; a PEFT bucket is small enough that the round trip from a GPU costs little.
    std::vector<at::Tensor> host{flat.to(torch::kCPU)};
    group_->gloo->allreduce(host)->wait();
    if (!flat.is_cpu()) flat.copy_(host[0]);
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(world_.rank) +
                ": summing gradients with the other processes failed (did one stop?): " + first_line(e.what()));
  }
}

void DataParallel::broadcast_from_leader(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  for (const auto& tensor : tensors) {
    std::vector<at::Tensor> host{tensor.detach().to(torch::kCPU).contiguous()};
    try {
      group_->gloo->broadcast(host)->wait();
    } catch (const std::exception& e) {
      throw Error("rank " + std::to_string(world_.rank) +
                  ": receiving the starting parameters failed: " + first_line(e.what()));
    }
    tensor.detach().copy_(host[0]);
  }
}

void DataParallel::barrier() {
  try {
    group_->gloo->barrier()->wait();
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(world_.rank) +
                ": waiting for the other processes failed: " + first_line(e.what()));
  }
}

torch::Tensor flatten_gradients(const std::vector<torch::Tensor>& parameters, const std::vector<double>& extra) {
  std::vector<torch::Tensor> pieces;
  torch::Device device = parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
  auto options = torch::TensorOptions().dtype(torch::kFloat).device(device);
  for (const auto& parameter : parameters) {
    const auto& grad = parameter.grad();
    pieces.push_back(grad.defined() ? grad.detach().reshape(-1).to(options)
                                    : torch::zeros({parameter.numel()}, options));
  }
  pieces.push_back(torch::tensor(std::vector<float>(extra.begin(), extra.end()), options));
  return torch::cat(pieces);
}

std::vector<double> unflatten_gradients(const torch::Tensor& flat, const std::vector<torch::Tensor>& parameters,
                                        size_t extra) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (const auto& parameter : parameters) {
    auto piece = flat.narrow(0, offset, parameter.numel()).view(parameter.sizes());
    offset += parameter.numel();
    auto& grad = parameter.mutable_grad();
    if (grad.defined()) {
      grad.copy_(piece);
    } else {
      grad = piece.to(parameter.options(), /*non_blocking=*/false, /*copy=*/true);
    }
  }
  auto tail = flat.narrow(0, offset, static_cast<int64_t>(extra)).to(torch::kCPU, torch::kDouble).contiguous();
  return std::vector<double>(tail.data_ptr<double>(), tail.data_ptr<double>() + extra);
}

std::vector<size_t> shard_positions(size_t batch_size, int rank, int size) {
  std::vector<size_t> positions;
  for (size_t i = static_cast<size_t>(rank); i < batch_size; i += static_cast<size_t>(size)) positions.push_back(i);
  return positions;
}

}  // namespace peft
