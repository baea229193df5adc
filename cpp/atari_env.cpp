// atari_env.cpp: semantics of one environment. The order of operations follows Gymnasium's
// AtariPreprocessing (frames of a step grabbed only while the episode runs, max of the last
// two, pooled frame kept for the next step) and ale-py's vector env (fire and noop reset,
// life-loss and truncation rules), because observations must match both bit for bit.
#include "atari_env.hpp"

#include <ale/ale_interface.hpp>
#include <ale/emucore/MD5.hxx>
#include <ale/games/Roms.hpp>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace atari_vec {
namespace {
constexpr int kAllActions = 18;  // ALE's PLAYER_A_NOOP .. PLAYER_A_DOWNLEFTFIRE
}  // namespace

void check_rom_supported(const std::string& path) {
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
}

AtariEnv::AtariEnv(const EnvConfig& config) : config_(config) {
  config_.validate();
  check_rom_supported(config_.rom_path);
  // Before the first ALEInterface prints its banner; once, as envs may be built in parallel.
  static std::once_flag quiet;
  std::call_once(quiet, [] { ale::Logger::setMode(ale::Logger::Error); });
  ale_ = std::make_unique<ale::ALEInterface>();
  ale_->setFloat("repeat_action_probability", config_.repeat_action_probability);
  if (ale_counts_frames()) {
    ale_->setInt("max_num_frames_per_episode", config_.max_num_frames_per_episode);
  }
  // Unseeded, as a reference env is before its first seeded reset: from fresh entropy.
  seed_rngs(std::random_device{}() & 0x7fffffffu);
  load_rom();
  maxpool_ = config_.maxpool && !config_.is_ram();

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
  if (config_.is_ram()) return;  // nothing to resize
  if (!resize_supported(screen_h_, screen_w_, config_.img_height, config_.img_width)) {
    throw std::invalid_argument(
        unsupported_resize_message(screen_h_, screen_w_, config_.img_height, config_.img_width));
  }
  if (AreaResizer::supports(screen_h_, screen_w_, config_.img_height, config_.img_width)) {
    resizer_ = std::make_unique<AreaResizer>(screen_h_, screen_w_, config_.img_height,
                                             config_.img_width, config_.channels());
  }
}

AtariEnv::~AtariEnv() = default;

void AtariEnv::load_rom() {
  ale_->loadROM(config_.rom_path);
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

void AtariEnv::grab_last_screen() {
  if (!(maxpool_ && config_.obs_type == ObsType::kGrayscale)) {
    grab_frame(pool_[0].data());
    return;
  }
  apply_gray_max(lut_, ale_->getScreen().getArray(), pool_[1].data(), pool_[0].size(),
                 pool_[0].data());
  last_pooled_ = true;
}

void AtariEnv::push_pooled_frame() {
  uint8_t* last = pool_[0].data();
  if (maxpool_ && !last_pooled_) max_inplace(last, pool_[1].data(), pool_[0].size());
  last_pooled_ = false;
  uint8_t* slot = stack_.data() + static_cast<std::size_t>(stack_head_) * config_.frame_bytes();
  if (config_.is_ram() || (config_.img_height == screen_h_ && config_.img_width == screen_w_)) {
    std::memcpy(slot, last, pool_[0].size());
  } else if (resizer_) {
    resizer_->run(last, slot);
  } else {
    resize_area(last, screen_h_, screen_w_, slot, config_.img_height, config_.img_width,
                config_.channels());
  }
  stack_head_ = (stack_head_ + 1) % config_.stack_frames();
}

void AtariEnv::reset() {
  if (state_.pending_seed >= 0) {
    seed_rngs(static_cast<uint32_t>(state_.pending_seed));
    load_rom();
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
  grab_frame(pool_[0].data());
  std::fill(pool_[1].begin(), pool_[1].end(), 0);
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
    // ALE still draws its sticky-action numbers for them, so they must be asked for.
    for (int i = 0; i < skip; ++i) reward += ale_->act(action, strength);
    state_.elapsed_frames += skip;
    state_.game_over = ale_->game_over(false);
    state_.truncated = ale_->game_truncated();
    grab_frame(pool_[0].data());
  } else {
    // As AtariPreprocessing.step: stop at the end of the episode, keeping the frames of
    // the previous step in that case.
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
      if (left == 2 && maxpool_) grab_frame(pool_[1].data());
      if (left == 1) grab_last_screen();
    }
  }
  push_pooled_frame();
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

void AtariEnv::write_observation(uint8_t* dst) const {
  const std::size_t frame = static_cast<std::size_t>(config_.frame_bytes());
  const int frames = config_.stack_frames();
  if (!config_.channels_last || frames == 1) {
    const std::size_t older = static_cast<std::size_t>(frames - stack_head_) * frame;
    // Oldest frames sit at [head, frames), the newest at [0, head).
    std::memcpy(dst, stack_.data() + stack_head_ * frame, older);
    std::memcpy(dst + older, stack_.data(), static_cast<std::size_t>(stack_head_) * frame);
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

}  // namespace atari_vec
