// emulator_limit.hpp: the bare-emulator throughput, the ceiling any vector env can reach.
// Each thread owns its ALE instances and calls act() with random minimal-set actions,
// resetting on game over; no screen is read and nothing is preprocessed. Blocking; call
// from any one thread (it starts and joins its own).
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
LimitResult emulator_limit(const std::string& rom_path, int num_envs, int num_threads,
                           int64_t frames_per_env, int frameskip, bool pin, uint64_t seed,
                           float repeat_action_probability);

}  // namespace atari_vec
