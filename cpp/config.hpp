// config.hpp: every knob of one environment and of the pool, with defaults and validation.
// Plain data; any thread may read a config once it is built. validate() throws
// std::invalid_argument with a message naming the field, so bad values never reach a worker.
#pragma once

#include <cstdint>
#include <string>

namespace atari_vec {

enum class AutoresetMode { kNextStep, kSameStep, kDisabled };

// One environment: emulator settings plus preprocessing. Defaults follow ale-py's AtariVectorEnv.
struct EnvConfig {
  std::string rom_path;
  int frameskip = 4;
  bool maxpool = true;
  bool grayscale = true;
  int img_height = 84;
  int img_width = 84;
  int stack_num = 4;
  int noop_max = 30;
  bool use_fire_reset = true;
  bool episodic_life = false;
  bool life_loss_info = false;
  bool reward_clipping = true;
  int max_num_frames_per_episode = 108000;
  float repeat_action_probability = 0.0f;
  bool full_action_space = false;
  int mode = -1;        // -1: the game's default mode
  int difficulty = -1;  // -1: the game's default difficulty
  // Testing hook: step() throws after this many steps (-1: never). Lets tests prove that a
  // worker's error reaches recv() and leaves the pool usable. Not exposed by AtariVectorEnv.
  int64_t fault_after_steps = -1;

  int channels() const { return grayscale ? 1 : 3; }
  int frame_bytes() const { return img_height * img_width * channels(); }
  int stacked_bytes() const { return frame_bytes() * stack_num; }
  void validate() const;
};

// The pool around the environments.
struct PoolConfig {
  int num_envs = 1;
  int batch_size = 0;               // 0: num_envs (synchronous)
  // 0: min(num_envs, CPUs this process may run on), one less (at least one) when the caller
  // runs tasks, so that the workers and the caller each have a CPU.
  int num_threads = 0;
  int thread_affinity_offset = -1;  // -1: no pinning
  AutoresetMode autoreset_mode = AutoresetMode::kNextStep;
  // NEXT_STEP only: when a step ends an episode, an idle worker may run the reset that the
  // env's next step will need (it does not depend on the action) before that step is sent.
  // Invisible in results; off while envs must stay renderable in their final state.
  bool reset_ahead = true;
  // The thread waiting for a batch runs queued steps too, instead of sleeping until a
  // worker wakes it. The task it is running when its batch completes (or its timeout
  // passes) finishes first, so recv() may return that much late: one step, or a step and
  // the reset it runs inline (useful work all the same).
  bool caller_runs_tasks = true;
  // How long an idle worker spins, watching the queue, before it sleeps. Used only when the
  // workers leave a CPU to the caller thread: a spinner must never take a CPU from a thread
  // with work.
  int idle_spin_us = 100;

  int effective_batch_size() const { return batch_size == 0 ? num_envs : batch_size; }
  void validate() const;
};

}  // namespace atari_vec
