// vector_env.cpp: the CPU list for affinity, and building the pool of Atari environments.
#include "vector_env.hpp"

#include <pthread.h>
#include <sched.h>

#include "frame_ops.hpp"

namespace atari_vec {

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  if (cpus.empty()) {
    const unsigned n = std::thread::hardware_concurrency();
    for (unsigned c = 0; c < (n ? n : 1); ++c) cpus.push_back(static_cast<int>(c));
  }
  return cpus;
}

std::unique_ptr<VectorEnv> make_vector_env(const std::vector<EnvConfig>& configs,
                                           const PoolConfig& pool) {
  init_frame_ops();
  std::vector<std::unique_ptr<AtariEnv>> envs;
  envs.reserve(configs.size());
  for (const EnvConfig& c : configs) {
    envs.push_back(std::make_unique<AtariEnv>(c));
    if (c.grayscale != configs.front().grayscale) {
      throw std::invalid_argument("all environments must produce observations of one shape");
    }
  }
  return std::make_unique<VectorEnv>(std::move(envs), pool);
}

}  // namespace atari_vec
