// batch_storage.hpp: caller-owned output arrays for the C++ tests, the part of the binding's
// job (PyVectorEnv::prepare) that a test must do itself. Plain arrays, because
// std::vector<bool> has no bool*; poisoned before each use, so a row the pool forgot to
// write shows up as a mismatch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "result_ring.hpp"

namespace atari_vec {
namespace testing {

// The arrays of one block (B rows).
struct BlockStorage {
  BlockStorage(int rows, std::size_t obs_bytes)
      : b(static_cast<std::size_t>(rows)),
        obs_bytes(obs_bytes),
        obs(new uint8_t[b * obs_bytes]),
        final_obs(new uint8_t[b * obs_bytes]),
        reward(new int32_t[b]),
        env_id(new int32_t[b]),
        lives(new int32_t[b]),
        frame_number(new int32_t[b]),
        episode_frame_number(new int32_t[b]),
        episode_length(new int32_t[b]),
        final_lives(new int32_t[b]),
        final_frame_number(new int32_t[b]),
        final_episode_frame_number(new int32_t[b]),
        episode_return(new float[b]),
        terminated(new bool[b]),
        truncated(new bool[b]),
        episode_mask(new bool[b]),
        final_mask(new bool[b]) {}

  void poison() {
    std::memset(obs.get(), 0xA5, b * obs_bytes);
    std::memset(final_obs.get(), 0xA5, b * obs_bytes);
    for (int32_t* a : {reward.get(), env_id.get(), lives.get(), frame_number.get(),
                       episode_frame_number.get(), episode_length.get(), final_lives.get(),
                       final_frame_number.get(), final_episode_frame_number.get()}) {
      std::fill(a, a + b, -99);
    }
    std::fill(episode_return.get(), episode_return.get() + b, -99.0f);
    // A bool must hold 0 or 1; 2 is "never written" and compares unequal to both.
    for (bool* a : {terminated.get(), truncated.get(), episode_mask.get(), final_mask.get()}) {
      std::memset(a, 2, b);
    }
  }

  BatchBuffers buffers(bool with_final) {
    BatchBuffers out;
    out.obs = obs.get();
    out.reward = reward.get();
    out.terminated = terminated.get();
    out.truncated = truncated.get();
    out.env_id = env_id.get();
    out.lives = lives.get();
    out.frame_number = frame_number.get();
    out.episode_frame_number = episode_frame_number.get();
    out.episode_return = episode_return.get();
    out.episode_length = episode_length.get();
    out.episode_mask = episode_mask.get();
    if (with_final) {
      out.final_obs = final_obs.get();
      out.final_mask = final_mask.get();
      out.final_lives = final_lives.get();
      out.final_frame_number = final_frame_number.get();
      out.final_episode_frame_number = final_episode_frame_number.get();
    }
    return out;
  }

  std::size_t b;
  std::size_t obs_bytes;
  std::unique_ptr<uint8_t[]> obs, final_obs;
  std::unique_ptr<int32_t[]> reward, env_id, lives, frame_number, episode_frame_number,
      episode_length, final_lives, final_frame_number, final_episode_frame_number;
  std::unique_ptr<float[]> episode_return;
  std::unique_ptr<bool[]> terminated, truncated, episode_mask, final_mask;
};

// Reads a bool the pool should have written as a byte: poison (2) is then a plain mismatch
// instead of an invalid bool load.
inline int flag(const std::unique_ptr<bool[]>& a, std::size_t row) {
  uint8_t v;
  std::memcpy(&v, a.get() + row, 1);
  return v;
}

}  // namespace testing
}  // namespace atari_vec
