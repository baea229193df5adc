// counting_env.hpp: a trivial environment for driving BasicVectorEnv without ALE. Its whole
// state is a few counters, so a test can model every result exactly: step() counts, the
// observation encodes the env id and the counters, and an episode ends every
// episode_length steps. It also catches protocol breaches on its own: two threads inside
// one env, or the caller setting an action while a worker runs it, fail at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>

#include "atari_env.hpp"  // StepOutcome
#include "check.hpp"

namespace atari_vec {
namespace testing {

// What write_observation() writes, byte for byte.
struct CountingObs {
  int32_t env_id;
  int32_t episode_steps;
  int64_t total_steps;
  int64_t resets;
  int64_t seed;  // the last seed a reset applied; -1 if none yet
  float strength;  // paddle strength of the last step
  int32_t pad;
};

class CountingEnv {
 public:
  struct Options {
    int episode_length = 3;
    int64_t fault_at_step = -1;  // step() throws once total_steps reaches this
    int64_t fault_at_reset = -1;  // the reset() call with this number (from 1) throws, changing nothing
    int slow_step_us = 0;        // every step() sleeps this long
    bool jitter = true;          // random short spins, so completion order gets shuffled
  };

  CountingEnv(int id, const Options& options) : id_(id), options_(options), rng_(static_cast<unsigned>(id) * 2654435761u + 1u) {}

  std::size_t observation_bytes() const { return sizeof(CountingObs); }

  void set_action(int action, float strength) {
    CHECK_MSG(!busy_.load(), "set_action() on env " + std::to_string(id_) + " while a worker runs it");
    action_ = action;
    strength_ = strength;
  }
  // Never restored from a snapshot (the pool asks every step).
  bool take_reset_unshown() { return false; }

  void set_seed(int64_t seed) {
    CHECK_MSG(!busy_.load(), "set_seed() on env " + std::to_string(id_) + " while a worker runs it");
    seed_ = seed;
  }

  // A seeded reset starts the env's history afresh (resets counts from 1 again), as a seeded
  // AtariEnv reset reloads the ROM: so the pool may drop a reset it prepared ahead when a
  // seeded one replaces it, and an unseeded reset too many still shows.
  void reset() {
    enter();
    if (++reset_calls_ == options_.fault_at_reset) {
      leave();
      throw std::runtime_error("injected reset fault in env " + std::to_string(id_));
    }
    episode_steps_ = 0;
    resets_ = seed_ >= 0 ? 1 : resets_ + 1;
    reward_ = 0;
    episode_return_ = 0;
    if (seed_ >= 0) seed_used_ = seed_;
    seed_ = -1;
    leave();
  }

  void step() {
    enter();
    ++episode_steps_;
    ++total_steps_;
    reward_ = action_;
    episode_return_ += action_;
    last_strength_ = strength_;
    step_thread_ = std::this_thread::get_id();
    if (options_.slow_step_us > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(options_.slow_step_us));
    }
    const bool fault = total_steps_ == options_.fault_at_step;
    leave();
    if (fault) throw std::runtime_error("injected fault in env " + std::to_string(id_));
  }

  bool episode_over() const { return episode_steps_ >= options_.episode_length; }

  StepOutcome outcome() const {
    StepOutcome o;
    o.reward = reward_;
    o.terminated = episode_over();
    o.truncated = false;
    o.lives = id_;  // lets a test see that the row's info belongs to the row's env
    o.frame_number = static_cast<int32_t>(total_steps_);
    o.episode_frame_number = episode_steps_;
    o.episode_return = episode_return_;
    o.episode_length = episode_steps_;
    return o;
  }

  void write_observation(uint8_t* dst) const {
    CountingObs obs{};
    obs.env_id = id_;
    obs.episode_steps = episode_steps_;
    obs.total_steps = total_steps_;
    obs.resets = resets_;
    obs.seed = seed_used_;
    obs.strength = last_strength_;
    std::memcpy(dst, &obs, sizeof(obs));
  }

  // For checks after quiesce(), when no worker touches the env.
  int64_t total_steps() const { return total_steps_; }
  int64_t resets() const { return resets_; }
  std::thread::id step_thread() const { return step_thread_; }  // of the last step()
  float last_strength() const { return last_strength_; }

 private:
  void enter() {
    CHECK_MSG(!busy_.exchange(true), "two threads inside env " + std::to_string(id_));
    if (options_.jitter) {
      const unsigned r = rng_() % 32;
      if (r == 0) {
        std::this_thread::yield();
      } else if (r < 4) {
        for (volatile unsigned i = 0; i < r * 300; ++i) {
        }
      }
    }
  }
  void leave() { busy_.store(false); }

  const int id_;
  const Options options_;
  std::minstd_rand rng_;
  std::atomic<bool> busy_{false};
  // Set by the caller thread between tasks.
  int action_ = 0;
  float strength_ = 1.0f;
  int64_t seed_ = -1;
  // The state.
  int episode_steps_ = 0;
  int64_t total_steps_ = 0;
  int64_t resets_ = 0;
  int64_t seed_used_ = -1;
  int32_t reward_ = 0;
  int64_t episode_return_ = 0;
  float last_strength_ = 1.0f;
  std::thread::id step_thread_;
  int64_t reset_calls_ = 0;  // every reset() call, the failed one included
};

}  // namespace testing
}  // namespace atari_vec
