// atari_env.hpp: one ALE instance with its preprocessing (frameskip, max-pool, palette,
// resize, frame stack) and its episode state (noop/fire reset, life loss, truncation).
//
// Thread use: one thread at a time. The pool guarantees it: the caller thread sets the
// next action/seed before queuing a task for this env, and exactly one worker then runs it.
// All memory is allocated in the constructor; reset() and step() allocate nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "config.hpp"
#include "frame_ops.hpp"
#include "resize.hpp"
#include "reference_rng.hpp"
#include "snapshot.hpp"

namespace ale {
class ALEInterface;
}

namespace atari_vec {

// What the last reset() or step() produced, apart from the observation.
struct StepOutcome {
  int32_t reward = 0;      // after clipping
  int32_t raw_reward = 0;  // before clipping
  // The game as played is over: game over, or a life lost with episodic_life (the next
  // reset restarts the game). Unlike `terminated`, not set by life_loss_info's life losses.
  bool game_ended = false;
  bool terminated = false;
  bool truncated = false;
  int32_t lives = 0;
  int32_t frame_number = 0;
  int32_t episode_frame_number = 0;
  int64_t episode_return = 0;  // unclipped, since the last reset
  int32_t episode_length = 0;  // steps since the last reset
};

// The episode bookkeeping that, with the emulator state and the frame stack, makes up the
// whole state of an environment (kept together so it can be saved and restored as one).
struct EpisodeState {
  int elapsed_frames = 0;  // emulator frames since the last reset (noops excluded)
  int lives = 0;
  bool game_over = false;
  bool truncated = false;  // the frame limit was reached
  bool life_lost = false;
  int32_t reward = 0;      // of the last step, after clipping
  int32_t raw_reward = 0;  // of the last step, before clipping
  int64_t episode_return = 0;  // unclipped sum since the last reset
  int32_t episode_length = 0;
  int action_index = 0;    // the action the next step() applies
  float paddle_strength = 1.0f;
  int64_t pending_seed = -1;  // applied by the next reset(); -1 keeps the current RNG streams
  // Restored from a snapshot of an env whose reset ran ahead of its step: the next step()
  // only reports that reset (see take_reset_unshown).
  bool reset_unshown = false;
};

// Whether ALE can run the ROM at `path`. ALE's loadROM ends the process (std::exit) on a ROM
// it cannot wrap, so every load is checked here first. Throws std::invalid_argument with the
// reason when the file is unreadable or unsupported; returns the ROM's MD5 (hex).
std::string check_rom_supported(const std::string& path);

class AtariEnv {
 public:
  explicit AtariEnv(const EnvConfig& config);
  ~AtariEnv();
  AtariEnv(const AtariEnv&) = delete;
  AtariEnv& operator=(const AtariEnv&) = delete;

  const EnvConfig& config() const { return config_; }
  std::size_t observation_bytes() const { return static_cast<std::size_t>(config_.stacked_bytes()); }
  // The ALE action ids this env's action indices map to (minimal or full set).
  const std::vector<int>& action_set() const { return action_set_; }
  std::vector<int> available_modes() const;
  std::vector<int> available_difficulties() const;

  // Caller thread, while no task for this env is queued or running.
  void set_action(int action_index, float paddle_strength);
  void set_seed(int64_t seed);

  // Worker thread.
  void reset();
  void step();
  bool episode_over() const;
  StepOutcome outcome() const;
  int32_t last_reward() const { return state_.reward; }  // of the last step, as outcome()
  // Writes the stack oldest frame first (stack_num * frame_bytes bytes), in the layout of
  // EnvConfig::observation_shape().
  void write_observation(uint8_t* dst) const;
  // The current full screen in RGB: screen_height * screen_width * 3 bytes.
  void render_rgb(uint8_t* dst) const;
  // The emulator's RAM now (kRamBytes bytes).
  void write_ram(uint8_t* dst) const;
  int screen_height() const { return screen_h_; }
  int screen_width() const { return screen_w_; }

  // Snapshots (row format: snapshot.hpp). The whole state of the env as one row of
  // snapshot_bytes() bytes: after load(), the env continues exactly as the saved one did
  // (with include_rng, ALE's sticky-action RNG too; without it, the env keeps its own).
  // Caller or worker thread, while the env is idle.
  std::size_t snapshot_bytes() const { return snapshot_bytes_; }
  const SnapshotIdentity& snapshot_identity() const { return identity_; }
  // Writes row[0, width), width >= snapshot_bytes(). reset_unshown: the env's last reset
  // ran ahead of its step (the pool knows), so a restored env reports it on its next step.
  void save(uint8_t* row, std::size_t width, bool include_rng, bool reset_unshown);
  // Restores a row; throws std::invalid_argument, changing nothing, unless check_snapshot
  // accepts it for this env.
  void load(const uint8_t* row, std::size_t width);
  // True once after a load() of a reset_unshown state: the step the pool is running only
  // reports the current state.
  bool take_reset_unshown() {
    const bool r = state_.reset_unshown;
    state_.reset_unshown = false;
    return r;
  }

 private:
  // Loads the ROM (reload: the one loaded before, with new seeds), then the mode and difficulty.
  void load_rom(bool reload);
  // Seeds ALE's RNG (applied by the next load_rom) and the no-op/frameskip RNG.
  void seed_rngs(uint32_t seed);
  // A uniform draw from [low, high) on the env's own RNG (see Seeding).
  int draw(int low, int high);
  // Truncation by frame count, as the config's Seeding counts frames.
  bool frame_limit_reached() const;
  bool ale_counts_frames() const { return config_.raw || config_.seeding == Seeding::kGymnasium; }
  // One observation frame (screen in the configured colours, or RAM) at full resolution.
  void grab_frame(uint8_t* dst);
  void grab_screen(uint8_t* dst);
  // Where a step keeps its second-to-last frame, the max-pool's second frame.
  enum class Second {
    kNone,     // not kept (no max-pooling, or the episode ended first)
    kGrabbed,  // in pool_[1]
    kInTia,    // still in the TIA's frame buffers (pool_from_tia_)
  };
  Second keep_second_frame();
  // The TIA's current or previous frame buffer (palette indices, screen_h_ x screen_w_).
  const uint8_t* tia_frame(bool previous) const;
  // The step's pooled frame into pool_[0] (AtariPreprocessing's first obs_buffer after its
  // in-place max), then pushed: after the step's last frame, or when the episode ended first.
  void pool_full_step(Second second);
  void pool_early_end(Second second);
  // pool_[0] with every row written (see pool_rows_pending_).
  uint8_t* pooled();
  // pool_[0], resized, onto the stack.
  void push_pooled_frame();
  // Snapshots: identity and sizes (constructor), and the payload before ALE's state.
  void init_snapshots(const std::string& md5);
  bool pools_in_snapshot(int which) const;
  std::size_t fixed_payload_bound() const;
  void write_payload(RowWriter& w, const EpisodeState& s) const;

  EnvConfig config_;
  std::unique_ptr<ale::ALEInterface> ale_;
  std::vector<int> action_set_;
  PaletteLut lut_;
  std::unique_ptr<AreaResizer> resizer_;  // null: the geometry is left to cv::resize
  bool fire_on_reset_ = false;
  int screen_h_ = 0;
  int screen_w_ = 0;
  bool maxpool_ = false;  // config_.maxpool, for screens (RAM is never pooled)
  std::mt19937 noop_rng_;  // Seeding::kAlePy
  Pcg64 pcg_;              // Seeding::kGymnasium
  EpisodeState state_;
  // [0] the pooled frame (kept between steps), [1] a step's second-to-last frame, when grabbed.
  std::vector<uint8_t> pool_[2];
  // Grayscale max-pooling reads the step's last two frames from the TIA's two frame buffers
  // (its current one and the previous one, swapped at every frame) at the end of the step,
  // instead of copying each as it is emulated, and maps and pools them row by row. Rows that
  // repeat the row above are not written (most rows of an Atari screen repeat): source_rows_
  // says where their bytes are, and pool_rows_pending_ that some are unwritten, until
  // pooled() writes them (for the rare readers of the whole frame: an episode ending
  // mid-step, a snapshot).
  bool pool_from_tia_ = false;
  // Stochastic frameskip from 1 with max-pooling: a step of one frame pools it with the
  // second-to-last frame of the last step that had two or more (AtariPreprocessing's second
  // obs_buffer), so pool_[1] is kept between steps (and in snapshots), and pooling does not
  // read the TIA's buffers. Otherwise pool_[1] is only read in the step that fills it: between
  // steps AtariPreprocessing's second buffer is never above its first, pixel by pixel.
  bool pool1_is_state_ = false;
  std::vector<int16_t> source_rows_;
  bool pool_rows_pending_ = false;
  std::vector<uint8_t> stack_;  // stack_num frames, circular
  int stack_head_ = 0;          // slot the next frame goes to; also the oldest frame
  int64_t steps_taken_ = 0;     // only for config_.fault_after_steps
  SnapshotIdentity identity_;
  std::size_t ale_state_capacity_ = 0;  // ALE's serialized state, with its RNG
  std::size_t snapshot_bytes_ = 0;
};

}  // namespace atari_vec
