// vector_env.cpp: the CPU list for affinity, and building the pool of Atari environments.
#include "vector_env.hpp"

#include <pthread.h>
#include <sched.h>

#include <exception>
#include <thread>

#include "frame_ops.hpp"
#include "resize.hpp"

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
  init_resize();
  for (const EnvConfig& c : configs) {
    if (c.observation_shape() != configs.front().observation_shape()) {
      throw std::invalid_argument("all environments must produce observations of one shape");
    }
  }
  // Loading a ROM costs ALE ~80 ms (it builds colour tables), so envs are built in parallel.
  std::vector<std::unique_ptr<AtariEnv>> envs(configs.size());
  std::vector<std::exception_ptr> errors(configs.size());
  const std::size_t threads = std::min(configs.size(), allowed_cpus().size());
  std::vector<std::thread> builders;
  for (std::size_t t = 0; t < threads; ++t) {
    builders.emplace_back([&, t] {
      for (std::size_t i = t; i < configs.size(); i += threads) {
        try {
          envs[i] = std::make_unique<AtariEnv>(configs[i]);
        } catch (...) {
          errors[i] = std::current_exception();
        }
      }
    });
  }
  for (std::thread& b : builders) b.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  // Actions are indices into each env's action set, checked against env 0's: one set for all
  // (several games: the full set, unless their minimal sets agree).
  for (std::size_t i = 1; i < envs.size(); ++i) {
    if (envs[i]->action_set() != envs.front()->action_set()) {
      throw std::invalid_argument(
          "all environments must share one action set, but the minimal action sets of " +
          configs.front().rom_path + " and " + configs[i].rom_path +
          " differ; leave full_action_space at its default (None), which gives several games "
          "ALE's 18 actions");
    }
  }
  return std::make_unique<VectorEnv>(std::move(envs), pool);
}

}  // namespace atari_vec
