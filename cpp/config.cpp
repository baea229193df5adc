// config.cpp: validation of EnvConfig and PoolConfig.
#include "config.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace atari_vec {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

std::string got(int v) { return ", got " + std::to_string(v); }

}  // namespace

void EnvConfig::validate() const {
  require(!rom_path.empty(), "rom_path must not be empty");
  require(frameskip > 0, "frameskip must be positive" + got(frameskip));
  require(!stochastic_frameskip || frameskip_max > frameskip,
          "a stochastic frameskip (low, high) draws from [low, high) and needs low < high, got (" +
              std::to_string(frameskip) + ", " + std::to_string(frameskip_max) +
              "); for a fixed frameskip pass an int");
  require(img_height > 0, "img_height must be positive" + got(img_height));
  require(img_width > 0, "img_width must be positive" + got(img_width));
  require(stack_num >= 0, "stack_num must be non-negative (0: no stack axis)" + got(stack_num));
  require(noop_max >= 0, "noop_max must be non-negative" + got(noop_max));
  require(max_num_frames_per_episode >= 0,
          "max_num_frames_per_episode must be non-negative (0: no limit)" +
              got(max_num_frames_per_episode));
  require(std::isfinite(repeat_action_probability) && repeat_action_probability >= 0.0f &&
              repeat_action_probability <= 1.0f,
          "repeat_action_probability must be in [0, 1], got " +
              std::to_string(repeat_action_probability));
  require(mode >= -1, "mode must be a valid game mode or -1" + got(mode));
  require(difficulty >= -1, "difficulty must be a valid difficulty or -1" + got(difficulty));
  require(!(channels_last && is_ram()), "channels_last applies to screens, not to RAM observations");
  require(!channels_last || stack_num <= kMaxStackForChannelsLast,
          "channels_last supports stack_num up to " + std::to_string(kMaxStackForChannelsLast) +
              got(stack_num));
  require(raw || !stop_at_game_over, "stop_at_game_over needs raw semantics");
  if (raw) {
    const char* clash = maxpool            ? "maxpool"
                        : noop_max > 0     ? "noop_max > 0"
                        : use_fire_reset   ? "use_fire_reset"
                        : life_loss_info   ? "life_loss_info"
                        : reward_clipping  ? "reward_clipping"
                                           : nullptr;
    require(clash == nullptr, std::string("raw (ale-py AtariEnv) semantics exclude ") +
                                  (clash ? clash : "") + "; turn it off");
  }
}

uint64_t EnvConfig::fingerprint() const {
  // Each field as a 64-bit value, in declaration order; adding a field means adding it here.
  const int64_t fields[] = {frameskip, stochastic_frameskip, frameskip_max, maxpool,
                            static_cast<int64_t>(obs_type), img_height, img_width, stack_num,
                            channels_last, grayscale_newaxis, raw, stop_at_game_over,
                            static_cast<int64_t>(seeding),
                            noop_max, use_fire_reset, episodic_life, life_loss_info,
                            reward_clipping, max_num_frames_per_episode, full_action_space,
                            all_actions, mode, difficulty};
  float rap = repeat_action_probability;
  uint32_t rap_bits;
  std::memcpy(&rap_bits, &rap, sizeof(rap_bits));
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t v) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  };
  for (int64_t f : fields) mix(static_cast<uint64_t>(f));
  mix(rap_bits);
  return h;
}

std::vector<int> EnvConfig::observation_shape() const {
  std::vector<int> frame;
  if (is_ram()) {
    frame = {kRamBytes};
  } else {
    frame = {img_height, img_width};
    if (obs_type == ObsType::kRGB || grayscale_newaxis) frame.push_back(channels());
  }
  if (stack_num == 0) return frame;
  if (!channels_last || is_ram()) {
    frame.insert(frame.begin(), stack_num);
    return frame;
  }
  return {img_height, img_width, stack_num * channels()};
}

void PoolConfig::validate() const {
  require(num_envs > 0, "num_envs must be positive" + got(num_envs));
  require(batch_size >= 0 && batch_size <= num_envs,
          "batch_size must be in [0, num_envs=" + std::to_string(num_envs) + "]" + got(batch_size));
  require(num_threads >= 0, "num_threads must be non-negative" + got(num_threads));
  require(idle_spin_us >= 0 && idle_spin_us <= 100000,
          "idle_spin_us must be in [0, 100000]" + got(idle_spin_us));
  require(thread_affinity_offset >= -1,
          "thread_affinity_offset must be -1 (no affinity) or a CPU offset" +
              got(thread_affinity_offset));
}

}  // namespace atari_vec
