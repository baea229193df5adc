// atari_env.cpp: semantics of one environment. The order of operations follows Gymnasium's
// AtariPreprocessing (frames of a step grabbed only while the episode runs, max of the last
// two, pooled frame kept for the next step) and ale-py's vector env (fire and noop reset,
// life-loss and truncation rules), because observations must match both bit for bit.
#include "atari_env.hpp"

#include <ale/ale_interface.hpp>
#include <ale/emucore/MD5.hxx>
#ifdef ATARI_VEC_ALE_PATCHED
#include <ale/emucore/Console.hxx>
#include <ale/emucore/OSystem.hxx>
#include <ale/emucore/System.hxx>
#include <ale/emucore/TIA.hxx>
#endif
#include <ale/games/Roms.hpp>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace atari_vec {
namespace {
constexpr int kAllActions = 18;  // ALE's PLAYER_A_NOOP .. PLAYER_A_DOWNLEFTFIRE
}  // namespace

std::string check_rom_supported(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::invalid_argument("cannot read ROM file " + path);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const std::string md5 = ale::stella::MD5(reinterpret_cast<const uint8_t*>(bytes.data()),
                                           static_cast<uint32_t>(bytes.size()));
  std::unique_ptr<ale::RomSettings> wrapper(ale::buildRomRLWrapper(path, md5));
  if (!wrapper) {
    throw std::invalid_argument("ALE " ALE_VERSION " has no game definition for the ROM " + path +
                                " (md5 " + md5 + "); it cannot be played");
  }
  return md5;
}

AtariEnv::AtariEnv(const EnvConfig& config) : config_(config) {
  config_.validate();
  const std::string md5 = check_rom_supported(config_.rom_path);
  // Before the first ALEInterface prints its banner; once, as envs may be built in parallel.
  static std::once_flag quiet;
  std::call_once(quiet, [] { ale::Logger::setMode(ale::Logger::Error); });
  ale_ = std::make_unique<ale::ALEInterface>();
  ale_->setFloat("repeat_action_probability", config_.repeat_action_probability);
#ifdef ATARI_VEC_ALE_PATCHED
  // Snapshots of envs that observe screens carry the TIA's frame buffers, so that a frame
  // the game only partly repaints after a restore is still the original's (our patch's
  // setting; read when the ROM is loaded).
  ale_->setBool("serialize_frame_buffers", !config_.is_ram());
#endif
  if (ale_counts_frames()) {
    ale_->setInt("max_num_frames_per_episode", config_.max_num_frames_per_episode);
  }
  // Unseeded, as a reference env is before its first seeded reset: from fresh entropy.
  seed_rngs(std::random_device{}() & 0x7fffffffu);
  load_rom(false);
  maxpool_ = config_.maxpool && !config_.is_ram();
  pool1_is_state_ = maxpool_ && config_.stochastic_frameskip && config_.frameskip < 2;

  const ale::ActionVect own = config_.full_action_space || config_.all_actions
                                 ? ale_->getLegalActionSet()
                                 : ale_->getMinimalActionSet();
  fire_on_reset_ = config_.use_fire_reset &&
                   std::find(own.begin(), own.end(), ale::PLAYER_A_FIRE) != own.end();
  if (config_.all_actions) {
    for (int a = 0; a < kAllActions; ++a) action_set_.push_back(a);
  } else {
    for (ale::Action a : own) action_set_.push_back(static_cast<int>(a));
  }

  uint8_t index[256];
  for (int i = 0; i < 256; ++i) index[i] = static_cast<uint8_t>(i);
  auto& palette = ale_->theOSystem->colourPalette();
  // ALE's grayscale of index i is palette entry i + 1, so asking it for 255 reads past its
  // 256-entry table; the TIA only emits even indices, so entry 255 is never used.
  palette.applyPaletteGrayscale(lut_.gray.data(), index, 255);
  lut_.gray[255] = 0;
  palette.applyPaletteRGB(lut_.rgb.data(), index, 256);

  screen_h_ = static_cast<int>(ale_->getScreen().height());
  screen_w_ = static_cast<int>(ale_->getScreen().width());
  const std::size_t raw = config_.is_ram() ? static_cast<std::size_t>(kRamBytes)
                                           : static_cast<std::size_t>(screen_h_) * screen_w_ * config_.channels();
  pool_[0].assign(raw, 0);
  pool_[1].assign(raw, 0);
  stack_.assign(static_cast<std::size_t>(config_.stacked_bytes()), 0);
  init_snapshots(md5);
  if (config_.is_ram()) return;  // nothing to resize
  if (!resize_supported(screen_h_, screen_w_, config_.img_height, config_.img_width)) {
    throw std::invalid_argument(
        unsupported_resize_message(screen_h_, screen_w_, config_.img_height, config_.img_width));
  }
  if (AreaResizer::supports(screen_h_, screen_w_, config_.img_height, config_.img_width)) {
    resizer_ = std::make_unique<AreaResizer>(screen_h_, screen_w_, config_.img_height,
                                             config_.img_width, config_.channels());
  }
#ifdef ATARI_VEC_ALE_PATCHED
  // The pooled frame straight from the TIA's two frame buffers (see pool_from_tia).
  pool_from_tia_ = maxpool_ && config_.obs_type == ObsType::kGrayscale && resizer_ != nullptr &&
                   !pool1_is_state_;
  if (pool_from_tia_) source_rows_.assign(static_cast<std::size_t>(screen_h_), 0);
#endif
}

void AtariEnv::init_snapshots(const std::string& md5) {
  identity_.rom_hash = std::stoull(md5.substr(0, 16), nullptr, 16);
  identity_.config_hash = config_.fingerprint();
  const std::string& path = config_.rom_path;
  const std::size_t slash = path.find_last_of('/');
  identity_.game = path.substr(slash == std::string::npos ? 0 : slash + 1);
  const std::size_t dot = identity_.game.rfind('.');
  if (dot != std::string::npos && dot > 0) identity_.game.resize(dot);
  // With our ALE patch a game's serialized state has one size (the RNGs are written as
  // words). Stock ALE writes its RNGs as text whose length varies by a few hundred bytes, so
  // leave room and round up: two envs of a game then almost always agree on the width (only
  // a state near a rounding boundary can make them differ; stock builds are for comparison).
  const std::size_t ale_size = ale_->cloneState(true).serialize().size();
#ifdef ATARI_VEC_ALE_PATCHED
  ale_state_capacity_ = ale_size;
#else
  constexpr std::size_t kRound = 16384;
  ale_state_capacity_ = (ale_size + 4096 + kRound - 1) / kRound * kRound;
#endif
  // The payload's fixed part, measured by writing it once.
  std::vector<uint8_t> scratch(fixed_payload_bound());
  RowWriter w(scratch.data(), scratch.size());
  write_payload(w, state_);
  snapshot_bytes_ = sizeof(SnapshotHeader) + w.written() + ale_state_capacity_;
}

AtariEnv::~AtariEnv() = default;

void AtariEnv::load_rom(bool reload) {
#ifdef ATARI_VEC_ALE_PATCHED
  // A seeded reset: our patch puts the console back as loadROM() built it, bit for bit the
  // same as loading the ROM again with the new seed (tests/test_reseed.py), in a fraction
  // of the time.
  if (reload) {
    ale_->reloadROM();
  } else {
    ale_->loadROM(config_.rom_path);
  }
#else
  (void)reload;
  ale_->loadROM(config_.rom_path);
#endif
  if (config_.mode >= 0) {
    const auto modes = available_modes();
    if (std::find(modes.begin(), modes.end(), config_.mode) == modes.end()) {
      std::string list;
      for (int m : modes) list += (list.empty() ? "" : ", ") + std::to_string(m);
      throw std::invalid_argument("mode " + std::to_string(config_.mode) +
                                  " is not available for this game; available modes: " + list);
    }
    ale_->setMode(static_cast<ale::game_mode_t>(config_.mode));
  }
  if (config_.difficulty >= 0) {
    const auto levels = available_difficulties();
    if (std::find(levels.begin(), levels.end(), config_.difficulty) == levels.end()) {
      std::string list;
      for (int d : levels) list += (list.empty() ? "" : ", ") + std::to_string(d);
      throw std::invalid_argument("difficulty " + std::to_string(config_.difficulty) +
                                  " is not available for this game; available: " + list);
    }
    ale_->setDifficulty(static_cast<ale::difficulty_t>(config_.difficulty));
  }
}

std::vector<int> AtariEnv::available_modes() const {
  std::vector<int> out;
  for (auto m : ale_->getAvailableModes()) out.push_back(static_cast<int>(m));
  return out;
}

std::vector<int> AtariEnv::available_difficulties() const {
  std::vector<int> out;
  for (auto d : ale_->getAvailableDifficulties()) out.push_back(static_cast<int>(d));
  return out;
}

void AtariEnv::set_action(int action_index, float paddle_strength) {
  state_.action_index = action_index;
  state_.paddle_strength = paddle_strength;
}

void AtariEnv::set_seed(int64_t seed) { state_.pending_seed = seed; }

void AtariEnv::seed_rngs(uint32_t seed) {
  if (config_.seeding == Seeding::kGymnasium) {
    const ReferenceSeeds s = reference_seeds(seed);
    // ale-py passes np.int32(ale_seed): the same bits, read as signed.
    ale_->setInt("random_seed", static_cast<int32_t>(s.ale_seed));
    pcg_.seed(s.np_seed);
  } else {
    ale_->setInt("random_seed", static_cast<int>(seed));
    noop_rng_.seed(seed);
  }
}

int AtariEnv::draw(int low, int high) {
  if (config_.seeding == Seeding::kGymnasium) return static_cast<int>(pcg_.integers(low, high));
  return std::uniform_int_distribution<int>(low, high - 1)(noop_rng_);
}

bool AtariEnv::frame_limit_reached() const {
  if (ale_counts_frames()) return ale_->game_truncated();
  return config_.max_num_frames_per_episode > 0 &&
         state_.elapsed_frames >= config_.max_num_frames_per_episode;
}

void AtariEnv::grab_frame(uint8_t* dst) {
  if (config_.is_ram()) {
    std::memcpy(dst, ale_->getRAM().array(), kRamBytes);
  } else {
    grab_screen(dst);
  }
}

void AtariEnv::grab_screen(uint8_t* dst) {
  const ale::ALEScreen& screen = ale_->getScreen();
  apply_palette(lut_, config_.obs_type == ObsType::kGrayscale, screen.getArray(),
                static_cast<std::size_t>(screen_h_) * screen_w_, dst);
}

AtariEnv::Second AtariEnv::keep_second_frame() {
#ifdef ATARI_VEC_ALE_PATCHED
  // Left in the TIA: the next frame's update() swaps its buffers, so this one becomes the
  // previous buffer, untouched while the last frame is drawn. Unless this frame is partial:
  // then the next update() goes on drawing into it.
  if (pool_from_tia_ && !ale_->theOSystem->console().system().tia().partialFrame()) {
    return Second::kInTia;
  }
#endif
  grab_frame(pool_[1].data());
  return Second::kGrabbed;
}

const uint8_t* AtariEnv::tia_frame(bool previous) const {
#ifdef ATARI_VEC_ALE_PATCHED
  const ale::stella::TIA& tia = ale_->theOSystem->console().system().tia();
  return previous ? tia.previousFrameBuffer() : tia.currentFrameBuffer();
#else
  (void)previous;
  throw std::logic_error("tia_frame: needs atari_vec's ALE patches");
#endif
}

uint8_t* AtariEnv::pooled() {
  if (pool_rows_pending_) {
    fill_repeated_rows(pool_[0].data(), screen_h_, screen_w_, source_rows_.data());
    pool_rows_pending_ = false;
  }
  return pool_[0].data();
}

void AtariEnv::pool_full_step(Second second) {
  const std::size_t n = pool_[0].size();
  switch (second) {
    case Second::kInTia:
      pool_gray_rows(lut_, tia_frame(true), tia_frame(false), screen_h_, screen_w_, pool_[0].data(),
                     source_rows_.data());
      pool_rows_pending_ = true;
      break;
    case Second::kGrabbed:
      if (config_.obs_type == ObsType::kGrayscale) {
        apply_gray_max(lut_, ale_->getScreen().getArray(), pool_[1].data(), n, pooled());
      } else {
        grab_frame(pooled());
        max_inplace(pool_[0].data(), pool_[1].data(), n);
      }
      break;
    case Second::kNone:
      grab_frame(pooled());
      // A step of one frame: AtariPreprocessing pools it with its second buffer, the
      // second-to-last frame of the last step that had one.
      if (pool1_is_state_) max_inplace(pool_[0].data(), pool_[1].data(), n);
      break;
  }
  push_pooled_frame();
}

void AtariEnv::pool_early_end(Second second) {
  // The episode ended before the step's last frame was kept. AtariPreprocessing then pools
  // its second buffer into the first (the previous step's pooled frame) in place. That
  // buffer is this step's second frame if it was kept; otherwise it is older, and never
  // above the first buffer pixel by pixel (every pooling leaves the first buffer at least as
  // high as the second, a reset zeroes the second), so the first is unchanged.
  const std::size_t n = pool_[0].size();
  if (second == Second::kInTia) {
    // Kept in the TIA, and the episode ended on the last frame: that frame's update()
    // swapped the buffers, so the kept frame is the previous buffer.
    apply_gray_max(lut_, tia_frame(true), pooled(), n, pool_[0].data());
  } else if (second == Second::kGrabbed) {
    max_inplace(pooled(), pool_[1].data(), n);
  }
  push_pooled_frame();
}

void AtariEnv::push_pooled_frame() {
  // Rows pool_gray_rows left unwritten are read from their source rows by the resize.
  const int16_t* source_rows = pool_rows_pending_ ? source_rows_.data() : nullptr;
  const uint8_t* last = source_rows ? pool_[0].data() : pooled();
  uint8_t* slot = stack_.data() + static_cast<std::size_t>(stack_head_) * config_.frame_bytes();
  if (config_.is_ram() || (config_.img_height == screen_h_ && config_.img_width == screen_w_)) {
    std::memcpy(slot, last, pool_[0].size());
  } else if (resizer_) {
    resizer_->run(last, slot, source_rows);
  } else {
    resize_area(last, screen_h_, screen_w_, slot, config_.img_height, config_.img_width,
                config_.channels());
  }
  stack_head_ = (stack_head_ + 1) % config_.stack_frames();
}

void AtariEnv::reset() {
  if (state_.pending_seed >= 0) {
    seed_rngs(static_cast<uint32_t>(state_.pending_seed));
    load_rom(true);
    state_.pending_seed = -1;
  }
  ale_->reset_game();
  if (fire_on_reset_) ale_->act(ale::PLAYER_A_FIRE);
  // The no-op count, as each reference draws it. Gymnasium's AtariPreprocessing: 1..noop_max
  // from np_random, only when noop_max > 0. ale-py's vector env: d in 0..noop_max-1 on every
  // reset (noop_max 0 included), of which the FIRE press counts as one.
  int noops = 0;
  if (config_.seeding == Seeding::kGymnasium) {
    noops = config_.noop_max > 0 ? draw(1, config_.noop_max + 1) : 0;
  } else {
    noops = std::uniform_int_distribution<int>(0, std::max(config_.noop_max - 1, 0))(noop_rng_) -
            (fire_on_reset_ ? 1 : 0);
  }
  for (; noops > 0; --noops) {
    ale_->act(ale::PLAYER_A_NOOP);
    if (ale_->game_over()) ale_->reset_game();
  }

  std::fill(stack_.begin(), stack_.end(), 0);
  stack_head_ = 0;
  // AtariPreprocessing's reset zeroes its second buffer. Unless pool1_is_state_, pool_[1] is
  // only read in the step that fills it, and a zero buffer would pool to nothing.
  if (pool1_is_state_) std::fill(pool_[1].begin(), pool_[1].end(), 0);
  grab_frame(pooled());
  push_pooled_frame();

  state_.elapsed_frames = 0;
  state_.reward = 0;
  state_.raw_reward = 0;
  state_.episode_return = 0;
  state_.episode_length = 0;
  state_.game_over = false;
  state_.truncated = false;
  state_.life_lost = false;
  state_.lives = ale_->lives();
  state_.action_index = 0;
  state_.paddle_strength = 1.0f;
}

void AtariEnv::step() {
  if (config_.fault_after_steps >= 0 && steps_taken_++ >= config_.fault_after_steps) {
    throw std::runtime_error("injected fault after " + std::to_string(config_.fault_after_steps) +
                             " steps");
  }
  const int skip =
      config_.stochastic_frameskip ? draw(config_.frameskip, config_.frameskip_max) : config_.frameskip;
  const auto action = static_cast<ale::Action>(action_set_[state_.action_index]);
  const float strength = state_.paddle_strength;
  int reward = 0;
  if (config_.raw) {
    // As ale-py's AtariEnv.step: no early exit. Frames past the end emulate nothing, but
    // ALE still draws its sticky-action numbers for them, so they must be asked for (unless
    // stop_at_game_over asks for OpenEnv's server semantics, which stop there).
    int i = 0;
    while (i < skip) {
      reward += ale_->act(action, strength);
      ++i;
      if (config_.stop_at_game_over && ale_->game_over(false)) break;
    }
    state_.elapsed_frames += i;
    state_.game_over = ale_->game_over(false);
    state_.truncated = ale_->game_truncated();
    // Only read with episodic_life (atari_vec.plangym's sensible mode): a life lost ends it.
    const int lives = ale_->lives();
    state_.life_lost = lives < state_.lives && lives > 0;
    grab_frame(pooled());
    push_pooled_frame();
  } else {
    // As AtariPreprocessing.step: stop at the end of the episode, keeping the frames of
    // the previous step in that case.
    Second second = Second::kNone;
    bool full = false;
    for (int left = skip; left > 0; --left) {
      reward += ale_->act(action, strength);
      ++state_.elapsed_frames;
      state_.game_over = ale_->game_over(false);
      state_.truncated = frame_limit_reached();
      const int lives = ale_->lives();
      state_.life_lost = lives < state_.lives && lives > 0;
      if (state_.game_over || state_.truncated || (config_.episodic_life && state_.life_lost)) {
        break;
      }
      if (left == 2 && maxpool_) second = keep_second_frame();
      if (left == 1) {
        pool_full_step(second);
        full = true;
      }
    }
    if (!full) pool_early_end(second);
  }
  state_.lives = ale_->lives();
  state_.raw_reward = reward;
  state_.reward = config_.reward_clipping ? std::clamp(reward, -1, 1) : reward;
  state_.episode_return += reward;
  ++state_.episode_length;
}

bool AtariEnv::episode_over() const {
  return state_.game_over || state_.truncated || (config_.episodic_life && state_.life_lost);
}

StepOutcome AtariEnv::outcome() const {
  StepOutcome out;
  out.reward = state_.reward;
  out.raw_reward = state_.raw_reward;
  out.terminated =
      state_.game_over || ((config_.episodic_life || config_.life_loss_info) && state_.life_lost);
  out.game_ended = state_.game_over || (config_.episodic_life && state_.life_lost);
  // The references differ: Gymnasium's stack reports ALE's truncation flag as it is, ale-py's
  // vector env only when the step did not also terminate.
  out.truncated = state_.truncated && (ale_counts_frames() || !out.terminated);
  out.lives = state_.lives;
  out.frame_number = ale_->getFrameNumber();
  out.episode_frame_number = ale_->getEpisodeFrameNumber();
  out.episode_return = state_.episode_return;
  out.episode_length = state_.episode_length;
  return out;
}

void AtariEnv::render_rgb(uint8_t* dst) const {
  const ale::ALEScreen& screen = ale_->getScreen();
  apply_palette(lut_, false, screen.getArray(), static_cast<std::size_t>(screen_h_) * screen_w_, dst);
}

void AtariEnv::write_ram(uint8_t* dst) const {
  std::memcpy(dst, ale_->getRAM().array(), kRamBytes);
}

void AtariEnv::write_observation(uint8_t* dst) const {
  const std::size_t frame = static_cast<std::size_t>(config_.frame_bytes());
  const int frames = config_.stack_frames();
  if (!config_.channels_last || frames == 1) {
    const std::size_t older = static_cast<std::size_t>(frames - stack_head_) * frame;
    // Oldest frames sit at [head, frames), the newest at [0, head).
    copy_bytes(dst, stack_.data() + stack_head_ * frame, older);
    copy_bytes(dst + older, stack_.data(), static_cast<std::size_t>(stack_head_) * frame);
    return;
  }
  // (H, W, frames * channels): each pixel's channels, frame after frame, oldest first. Pixel
  // by pixel, so the writes are sequential and the reads come from `frames` running streams.
  const int c = config_.channels();
  const std::size_t pixels = frame / static_cast<std::size_t>(c);
  const uint8_t* src[kMaxStackForChannelsLast];
  for (int f = 0; f < frames; ++f) {
    src[f] = stack_.data() + static_cast<std::size_t>((stack_head_ + f) % frames) * frame;
  }
  uint8_t* out = dst;
  if (c == 1) {
    for (std::size_t p = 0; p < pixels; ++p) {
      for (int f = 0; f < frames; ++f) *out++ = src[f][p];
    }
  } else {
    for (std::size_t p = 0; p < 3 * pixels; p += 3) {
      for (int f = 0; f < frames; ++f) {
        *out++ = src[f][p];
        *out++ = src[f][p + 1];
        *out++ = src[f][p + 2];
      }
    }
  }
}

namespace {

// EpisodeState field by field (no padding bytes in the row, so equal states give equal rows).
// The action the next step will apply is not part of the state: whoever steps a restored
// env sets it (the action that sticky actions repeat is ALE's, in ALE's part of the row).
void write_episode(RowWriter& w, const EpisodeState& s) {
  w.put<int32_t>(s.elapsed_frames);
  w.put<int32_t>(s.lives);
  w.put<uint8_t>(s.game_over);
  w.put<uint8_t>(s.truncated);
  w.put<uint8_t>(s.life_lost);
  w.put<uint8_t>(s.reset_unshown);
  w.put<int32_t>(s.reward);
  w.put<int32_t>(s.raw_reward);
  w.put<int64_t>(s.episode_return);
  w.put<int32_t>(s.episode_length);
  w.put<int64_t>(s.pending_seed);
}

// Into `s`, whose next action stays.
void read_episode(RowReader& r, EpisodeState& s) {
  s.elapsed_frames = r.get<int32_t>();
  s.lives = r.get<int32_t>();
  s.game_over = r.get<uint8_t>() != 0;
  s.truncated = r.get<uint8_t>() != 0;
  s.life_lost = r.get<uint8_t>() != 0;
  s.reset_unshown = r.get<uint8_t>() != 0;
  s.reward = r.get<int32_t>();
  s.raw_reward = r.get<int32_t>();
  s.episode_return = r.get<int64_t>();
  s.episode_length = r.get<int32_t>();
  s.pending_seed = r.get<int64_t>();
}

static_assert(std::is_trivially_copyable<std::mt19937>::value, "copied into rows verbatim");

}  // namespace

bool AtariEnv::pools_in_snapshot(int which) const {
  // Between steps, raw mode overwrites pool_[0] before it reads it; otherwise a step that ends
  // early pushes the previous step's pooled frame (AtariPreprocessing's first obs_buffer), so
  // it is part of the state. pool_[1] only is when a step of one frame pools with it.
  return !config_.raw && (which == 0 || pool1_is_state_);
}

std::size_t AtariEnv::fixed_payload_bound() const {
  return 256 + sizeof(std::mt19937) + stack_.size() + pool_[0].size() + pool_[1].size();
}

void AtariEnv::write_payload(RowWriter& w, const EpisodeState& s) const {
  write_episode(w, s);
  w.put<int32_t>(stack_head_);
  for (uint64_t word : pcg_.words()) w.put<uint64_t>(word);
  w.bytes(&noop_rng_, sizeof(noop_rng_));
  w.bytes(stack_.data(), stack_.size());
  for (int k = 0; k < 2; ++k) {
    if (pools_in_snapshot(k)) w.bytes(pool_[k].data(), pool_[k].size());
  }
}

void AtariEnv::save(uint8_t* row, std::size_t width, bool include_rng, bool reset_unshown) {
  if (width < snapshot_bytes_) {
    throw std::invalid_argument("a state row of this env needs " + std::to_string(snapshot_bytes_) +
                                " bytes, got " + std::to_string(width));
  }
  const std::string ale_state = ale_->cloneState(include_rng).serialize();
  if (ale_state.size() > ale_state_capacity_) {
    throw std::logic_error("ALE's state (" + std::to_string(ale_state.size()) +
                           " bytes) outgrew the room measured for it (" +
                           std::to_string(ale_state_capacity_) + ")");
  }
  pooled();  // the snapshot holds the pooled frame in full
  RowWriter w(row + sizeof(SnapshotHeader), width - sizeof(SnapshotHeader));
  EpisodeState s = state_;
  s.reset_unshown = reset_unshown;
  write_payload(w, s);
  w.bytes(ale_state.data(), ale_state.size());
  const std::size_t payload = w.written();
  std::memset(w.position(), 0, w.left());

  SnapshotHeader h{};
  std::memcpy(h.magic, kSnapshotMagic, sizeof(h.magic));
  h.version = kSnapshotVersion;
  h.header_bytes = sizeof(SnapshotHeader);
  h.row_bytes = width;
  h.build_hash = snapshot_build_hash();
  h.rom_hash = identity_.rom_hash;
  h.config_hash = identity_.config_hash;
  h.payload_bytes = static_cast<uint32_t>(payload);
  h.ale_bytes = static_cast<uint32_t>(ale_state.size());
  h.flags = (include_rng ? kSnapshotIncludesRng : 0u) | (reset_unshown ? kSnapshotResetUnshown : 0u);
  h.checksum = snapshot_checksum(row + sizeof(SnapshotHeader), payload);
  std::strncpy(h.game, identity_.game.c_str(), sizeof(h.game) - 1);
  std::memcpy(row, &h, sizeof(h));
}

void AtariEnv::load(const uint8_t* row, std::size_t width) {
  check_snapshot(row, width, identity_);
  SnapshotHeader h;
  std::memcpy(&h, row, sizeof(h));
  // Everything is read and checked before anything changes; ALE's restore goes first among
  // the changes, as the only one that can fail.
  RowReader r(row + sizeof(SnapshotHeader), h.payload_bytes - h.ale_bytes);
  EpisodeState s = state_;
  read_episode(r, s);
  const int32_t head = r.get<int32_t>();
  Pcg64::Words pcg;
  for (uint64_t& word : pcg) word = r.get<uint64_t>();
  std::mt19937 noop;
  r.bytes(&noop, sizeof(noop));
  const uint8_t* stack = r.position();
  std::size_t frames_bytes = stack_.size();
  for (int k = 0; k < 2; ++k) frames_bytes += pools_in_snapshot(k) ? pool_[k].size() : 0;
  if (r.left() != frames_bytes || head < 0 || head >= config_.stack_frames()) {
    throw std::invalid_argument("corrupt state: its layout does not fit this env");
  }
  try {
    ale_->restoreState(ale::ALEState(std::string(
        reinterpret_cast<const char*>(row + sizeof(SnapshotHeader) + h.payload_bytes - h.ale_bytes),
        h.ale_bytes)));
  } catch (const char* what) {  // Stella's serializer throws string literals
    throw std::invalid_argument(std::string("ALE could not restore the state: ") + what);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("ALE could not restore the state: ") + e.what());
  }
  state_ = s;
  stack_head_ = head;
  pcg_.set_words(pcg);
  noop_rng_ = noop;
  std::memcpy(stack_.data(), stack, stack_.size());
  stack += stack_.size();
  for (int k = 0; k < 2; ++k) {
    if (!pools_in_snapshot(k)) continue;
    std::memcpy(pool_[k].data(), stack, pool_[k].size());
    stack += pool_[k].size();
  }
  pool_rows_pending_ = false;
}

}  // namespace atari_vec
