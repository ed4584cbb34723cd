// The data-parallel pieces: launch variables of torchrun, Slurm and mpirun, the shard each rank computes, the
// gradient bucket, and a real two-rank Gloo group (two threads of this process over loopback) summing and
// broadcasting.
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "test_util.h"
#include "train/data_parallel.h"

namespace peft {
namespace {

// Sets launch variables for one test and removes every launcher's afterwards.
class Environment {
 public:
  explicit Environment(const std::vector<std::pair<std::string, std::string>>& variables) {
    clear();
    for (const auto& [name, value] : variables) setenv(name.c_str(), value.c_str(), 1);
  }
  ~Environment() { clear(); }

 private:
  static void clear() {
    for (const char* name :
         {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID",
          "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
          "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"}) {
      unsetenv(name);
    }
  }
};

TEST(World, NoLaunchVariablesIsOneProcess) {
  Environment environment({});
  auto world = world_from_environment();
  EXPECT_FALSE(world.distributed());
  EXPECT_TRUE(world.leader());
  EXPECT_EQ(world.launcher, "");
}

TEST(World, ReadsTorchrunSlurmAndMpirunVariables) {
  {
    Environment environment({{"RANK", "3"},
                             {"WORLD_SIZE", "8"},
                             {"LOCAL_RANK", "1"},
                             {"LOCAL_WORLD_SIZE", "2"},
                             {"MASTER_ADDR", "node0"},
                             {"MASTER_PORT", "29400"}});
    auto world = world_from_environment();
    EXPECT_EQ(world.launcher, "torchrun");
    EXPECT_EQ(world.rank, 3);
    EXPECT_EQ(world.size, 8);
    EXPECT_EQ(world.local_rank, 1);
    EXPECT_EQ(world.local_size, 2);
    EXPECT_EQ(world.master_addr, "node0");
    EXPECT_EQ(world.master_port, 29400);
    EXPECT_FALSE(world.leader());
  }
  {
    Environment environment({{"SLURM_PROCID", "5"},
                             {"SLURM_NTASKS", "6"},
                             {"SLURM_LOCALID", "2"},
                             {"SLURM_NTASKS_PER_NODE", "3(x2)"},
                             {"MASTER_ADDR", "10.0.0.1"}});
    auto world = world_from_environment();
    EXPECT_EQ(world.launcher, "slurm");
    EXPECT_EQ(world.rank, 5);
    EXPECT_EQ(world.size, 6);
    EXPECT_EQ(world.local_rank, 2);
    EXPECT_EQ(world.local_size, 3);
    EXPECT_EQ(world.master_port, 29500);  // PyTorch's default
  }
  {
    Environment environment({{"OMPI_COMM_WORLD_RANK", "0"},
                             {"OMPI_COMM_WORLD_SIZE", "2"},
                             {"OMPI_COMM_WORLD_LOCAL_RANK", "0"},
                             {"MASTER_ADDR", "127.0.0.1"}});
    auto world = world_from_environment();
    EXPECT_EQ(world.launcher, "mpirun");
    EXPECT_EQ(world.size, 2);
    EXPECT_TRUE(world.leader());
  }
  {
    Environment environment({{"RANK", "0"}, {"WORLD_SIZE", "1"}});  // torchrun with one process: no rendezvous
    EXPECT_FALSE(world_from_environment().distributed());
  }
}

TEST(World, MalformedOrInconsistentVariablesAreNamed) {
  auto error = [](const std::vector<std::pair<std::string, std::string>>& variables) {
    Environment environment(variables);
    return test::error_of([] { world_from_environment(); });
  };
  EXPECT_NE(error({{"RANK", "1"}}).find("WORLD_SIZE is missing"), std::string::npos);
  EXPECT_NE(error({{"RANK", "1"}, {"WORLD_SIZE", "1"}}).find("RANK=1 is not below WORLD_SIZE=1"), std::string::npos);
  EXPECT_NE(error({{"RANK", "-1"}, {"WORLD_SIZE", "2"}}).find("RANK='-1' is not an integer in 0.."), std::string::npos);
  EXPECT_NE(error({{"RANK", "0"}, {"WORLD_SIZE", "2x"}}).find("WORLD_SIZE='2x'"), std::string::npos);
  EXPECT_NE(error({{"RANK", "0"}, {"WORLD_SIZE", "99999999999"}}).find("WORLD_SIZE"), std::string::npos);
  EXPECT_NE(error({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).find("MASTER_ADDR is missing"), std::string::npos);
  EXPECT_NE(error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "0"}})
                .find("MASTER_PORT='0' is not an integer in 1..65535"),
            std::string::npos);
  EXPECT_NE(
      error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "2"}, {"MASTER_ADDR", "h"}}).find("LOCAL_RANK='2'"),
      std::string::npos);
}

TEST(DataParallelShards, EveryPositionOnceAndEmptyShardsAllowed) {
  EXPECT_EQ(shard_positions(5, 0, 2), (std::vector<size_t>{0, 2, 4}));
  EXPECT_EQ(shard_positions(5, 1, 2), (std::vector<size_t>{1, 3}));
  EXPECT_EQ(shard_positions(2, 2, 3), (std::vector<size_t>{}));
  EXPECT_EQ(shard_positions(4, 0, 1), (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(DataParallelBucket, RoundTripsGradientsAndExtrasAndFillsMissingOnes) {
  auto a = torch::randn({3, 4}, torch::requires_grad());
  auto b = torch::randn({5}, torch::requires_grad());
  a.mutable_grad() = torch::arange(12, torch::kFloat).view({3, 4});
  auto bucket = flatten_gradients({a, b}, {2.5, 1.0});
  ASSERT_EQ(bucket.numel(), 12 + 5 + 2);
  EXPECT_TRUE(torch::equal(bucket.narrow(0, 12, 5), torch::zeros({5})));  // b had no gradient: zeros travel
  bucket.mul_(2);
  auto extras = unflatten_gradients(bucket, {a, b}, 2);
  EXPECT_EQ(extras, (std::vector<double>{5.0, 2.0}));
  EXPECT_TRUE(torch::equal(a.grad(), 2 * torch::arange(12, torch::kFloat).view({3, 4})));
  ASSERT_TRUE(b.grad().defined());
  EXPECT_TRUE(torch::equal(b.grad(), torch::zeros({5})));
}

TEST(DataParallelGroup, TwoRanksSumAndBroadcastOverLoopback) {
  int port = test::free_tcp_port();
  torch::Tensor sums[2], received[2];
  std::string errors[2];
  auto rank = [&](int r) {
    try {
      World world;
      world.rank = r, world.size = 2, world.master_addr = "127.0.0.1", world.master_port = port;
      DataParallel group(world, torch::kCPU);
      EXPECT_EQ(group.backend(), "gloo");
      sums[r] = torch::full({4}, static_cast<float>(r + 1));
      group.all_reduce_sum(sums[r]);
      received[r] = torch::full({2, 2}, static_cast<float>(10 * (r + 1)));
      group.broadcast_from_leader({received[r]});
      group.barrier();
    } catch (const std::exception& e) {
      errors[r] = e.what();
    }
  };
  std::thread second(rank, 1);
  rank(0);
  second.join();
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(errors[r], "") << "rank " << r;
    EXPECT_TRUE(torch::equal(sums[r], torch::full({4}, 3.0f))) << "rank " << r;
    EXPECT_TRUE(torch::equal(received[r], torch::full({2, 2}, 10.0f))) << "rank " << r;
  }
}

}  // namespace
}  // namespace peft
