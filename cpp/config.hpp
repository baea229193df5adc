// config.hpp: every knob of one environment and of the pool, with defaults and validation.
// Plain data; any thread may read a config once it is built. validate() throws
// std::invalid_argument with a message naming the field, so bad values never reach a worker.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace atari_vec {

enum class AutoresetMode { kNextStep, kSameStep, kDisabled };

// What an observation frame is: the screen in gray or colour, or the console's 128 RAM bytes.
enum class ObsType { kGrayscale, kRGB, kRAM };

// Which reference a seed (and the frame count behind truncation) reproduces.
//   kGymnasium: ale-py's AtariEnv under Gymnasium's wrappers, env i of a SyncVectorEnv reset
//     with seed s + i: ALE's seed and the no-op/frameskip draws come from NumPy's
//     SeedSequence(s + i) (reference_rng.hpp); truncation is ALE's own episode frame count,
//     which includes the reset's fire and no-op frames.
//   kAlePy: ale-py's AtariVectorEnv: ALE is seeded with s + i itself, no-ops come from a
//     std::mt19937 seeded with s + i, and truncation counts frames from the end of the reset.
enum class Seeding { kGymnasium, kAlePy };

// ALE's RAM size; a RAM observation frame is this many bytes.
constexpr int kRamBytes = 128;
// channels_last interleaves the frames of a stack pixel by pixel, up to this many.
constexpr int kMaxStackForChannelsLast = 64;

// One environment: emulator settings plus preprocessing. Defaults follow ale-py's AtariVectorEnv.
struct EnvConfig {
  std::string rom_path;
  int frameskip = 4;
  // Stochastic frameskip: each step's drawn uniformly from [frameskip, frameskip_max).
  bool stochastic_frameskip = false;
  int frameskip_max = 0;  // read only when stochastic_frameskip
  bool maxpool = true;
  ObsType obs_type = ObsType::kGrayscale;
  int img_height = 84;
  int img_width = 84;
  // Frames per observation; 0 means one frame with no stack axis.
  int stack_num = 4;
  // Observation layout (H, W, stack * channels) instead of (stack, H, W[, 3]).
  bool channels_last = false;
  // Grayscale frames get a trailing axis of 1, (H, W, 1), as Gymnasium's grayscale_newaxis.
  bool grayscale_newaxis = false;
  // Step and reset as ale-py's AtariEnv does (gym.make of an ALE id): every frame of a step
  // is emulated (ALE ignores those past the end), the observation is the last frame as the
  // emulator shows it, terminated and truncated are ALE's own. Needs no max-pool, no no-ops,
  // no fire reset, no life_loss_info and no reward clipping (validate() says so); with
  // episodic_life a lost life ends the episode (atari_vec.plangym's sensible mode).
  bool raw = false;
  // With raw: a step stops repeating its action at game over, as OpenEnv's Atari server does
  // (ale-py goes on asking, and ALE draws sticky-action numbers for frames it then skips).
  bool stop_at_game_over = false;
  Seeding seeding = Seeding::kGymnasium;
  int noop_max = 30;
  bool use_fire_reset = true;
  bool episodic_life = false;
  bool life_loss_info = false;
  bool reward_clipping = true;
  int max_num_frames_per_episode = 108000;  // 0: no limit
  float repeat_action_probability = 0.0f;
  bool full_action_space = false;
  // Action i is ALE's action i, for all 18 (pools of several games, whose own sets differ,
  // share this one; ALE plays an action a game does not use as NOOP). Fire reset still
  // follows the game's own full set.
  bool all_actions = false;
  int mode = -1;        // -1: the game's default mode
  int difficulty = -1;  // -1: the game's default difficulty
  // Testing hook: step() throws after this many steps (-1: never). Lets tests prove that a
  // worker's error reaches recv() and leaves the pool usable. Not exposed by AtariVectorEnv.
  // It stays in the production build on purpose: the error path must be tested in the very
  // module users run (a separate test build would test another binary), and no real input
  // makes a step throw at a chosen moment. Its cost is one predictable branch per step.
  int64_t fault_after_steps = -1;

  int channels() const { return obs_type == ObsType::kRGB ? 3 : 1; }
  bool is_ram() const { return obs_type == ObsType::kRAM; }
  int frame_bytes() const { return is_ram() ? kRamBytes : img_height * img_width * channels(); }
  int stack_frames() const { return stack_num > 0 ? stack_num : 1; }
  int stacked_bytes() const { return frame_bytes() * stack_frames(); }
  // The shape of one observation, e.g. {4, 84, 84}, {84, 84, 4} (channels last), {4, 128}
  // (RAM), {210, 160, 3} (one RGB frame, no stack axis).
  std::vector<int> observation_shape() const;
  void validate() const;
  // A hash of every setting that shapes an env's state or its meaning (all but the ROM path,
  // which snapshots identify by the ROM's MD5, and the testing hook): a snapshot is restored
  // only into an env with the same fingerprint.
  uint64_t fingerprint() const;
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
