// emulator_limit.cpp: see emulator_limit.hpp.
#include "emulator_limit.hpp"

#include <pthread.h>
#include <sched.h>

#include <ale/ale_interface.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "atari_env.hpp"
#include "vector_env.hpp"

namespace atari_vec {

LimitResult emulator_limit(const std::string& rom_path, int num_envs, int num_threads,
                           int64_t frames_per_env, int frameskip, bool pin, uint64_t seed,
                           float repeat_action_probability, Through through) {
  if (num_envs <= 0 || num_threads <= 0 || frames_per_env <= 0 || frameskip <= 0) {
    throw std::invalid_argument("emulator_limit: all counts must be positive");
  }
  if (!(repeat_action_probability >= 0.0f && repeat_action_probability <= 1.0f)) {
    throw std::invalid_argument("emulator_limit: repeat_action_probability must be in [0, 1]");
  }
  ale::Logger::setMode(ale::Logger::Error);
  std::vector<std::unique_ptr<ale::ALEInterface>> ales;
  std::vector<std::unique_ptr<AtariEnv>> envs;
  if (through == Through::kAle) {
    for (int i = 0; i < num_envs; ++i) {
      ales.push_back(std::make_unique<ale::ALEInterface>());
      ales.back()->setInt("random_seed", static_cast<int>(seed + i));
      ales.back()->setFloat("repeat_action_probability", repeat_action_probability);
      ales.back()->loadROM(rom_path);
    }
  } else {
    EnvConfig config;  // the benchmark's settings are EnvConfig's defaults
    config.rom_path = rom_path;
    config.frameskip = frameskip;
    config.repeat_action_probability = repeat_action_probability;
    config.obs_type = through == Through::kEnvRam ? ObsType::kRAM : ObsType::kGrayscale;
    for (int i = 0; i < num_envs; ++i) {
      envs.push_back(std::make_unique<AtariEnv>(config));
      envs.back()->set_seed(static_cast<int64_t>(seed) + i);
      envs.back()->reset();
    }
  }
  // Both play the game's minimal set: ALE's actions, or the env's indices into it.
  const ale::ActionVect actions = ales.empty() ? ale::ActionVect() : ales.front()->getMinimalActionSet();
  const std::size_t num_actions = ales.empty() ? envs.front()->action_set().size() : actions.size();
  const std::vector<int> cpus = allowed_cpus();

  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < num_threads; ++t) {
    threads.emplace_back([&, t] {
      if (pin) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpus[static_cast<std::size_t>(t) % cpus.size()], &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
      }
      std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(t));
      std::uniform_int_distribution<std::size_t> pick(0, num_actions - 1);
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      // Same shape of work as a step: one random action held for `frameskip` frames.
      for (int64_t done = 0; done < frames_per_env; done += frameskip) {
        for (int e = t; e < num_envs; e += num_threads) {
          if (!envs.empty()) {
            AtariEnv& env = *envs[static_cast<std::size_t>(e)];
            env.set_action(static_cast<int>(pick(rng)), 1.0f);
            env.step();
            if (env.episode_over()) env.reset();
            continue;
          }
          ale::ALEInterface& ale = *ales[static_cast<std::size_t>(e)];
          const ale::Action a = actions[pick(rng)];
          for (int k = 0; k < frameskip; ++k) ale.act(a);
          if (ale.game_over()) ale.reset_game();
        }
      }
    });
  }
  while (ready.load() < num_threads) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  go.store(true);
  for (auto& th : threads) th.join();
  LimitResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t steps = (frames_per_env + frameskip - 1) / frameskip;
  r.frames = steps * frameskip * num_envs;
  return r;
}

}  // namespace atari_vec
