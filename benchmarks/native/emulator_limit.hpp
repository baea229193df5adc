// emulator_limit.hpp: the bare-emulator throughput, the ceiling any vector env can reach.
// Each thread owns its ALE instances and calls act() with random minimal-set actions,
// resetting on game over; no screen is read and nothing is preprocessed. Blocking; call
// from any one thread (it starts and joins its own).
//
// With `through` set to Through::kEnvRam or kEnvGray the same loop drives atari_vec's own
// AtariEnv instead (the benchmark's settings: no-op and fire reset, reward clipping, and for
// kEnvGray the 84x84 grayscale max-pooled stack of 4; kEnvRam observes the RAM), still with
// no pool, no barrier between steps and no Python: the three together split the gap between
// the pool and the bare emulator into what a step's preprocessing costs and what the pool
// costs (benchmarks/limit_split.py).
#pragma once

#include <cstdint>
#include <string>

namespace atari_vec {

struct LimitResult {
  int64_t frames = 0;  // act() calls, summed over threads
  double seconds = 0;  // wall time from the first act() to the last thread's end
};

// num_envs ALE instances split round-robin over num_threads threads; every instance runs
// `frames_per_env` frames. Threads are pinned to allowed CPUs when pin is true. Sticky
// actions are ALE's `repeat_action_probability`: pass the peers' value (the benchmark runs
// everything at 0.0; ALE's own default is 0.25) so the limit plays the same game.
enum class Through { kAle, kEnvRam, kEnvGray };

LimitResult emulator_limit(const std::string& rom_path, int num_envs, int num_threads,
                           int64_t frames_per_env, int frameskip, bool pin, uint64_t seed,
                           float repeat_action_probability, Through through = Through::kAle);

}  // namespace atari_vec
