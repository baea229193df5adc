// result_ring.hpp: where workers write results, straight into the caller's output arrays.
//
// Results are numbered in completion order; result c goes to block (c / B) % R, and within
// it to row c % B (async) or to row env_id (sync, where a batch is exactly every env once).
// A block is complete when B results are committed to it. The caller hands each block's
// buffers in through prepare() before any worker can reach it (the pool's bookkeeping
// guarantees that at most num_envs results are ever ahead of the caller), so workers never
// wait for the caller and never allocate.
//
// Threads: claim()/commit() from any worker; prepare(), wait_complete(), restart() from the
// caller thread only. wait_complete() is woken by the commit() that completes the block.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace atari_vec {

// Output arrays of one batch, B rows each. Owned by the caller (NumPy arrays in Python).
// The final_* arrays are used in SAME_STEP mode only and may be null otherwise.
struct BatchBuffers {
  uint8_t* obs = nullptr;  // B * stacked_bytes
  int32_t* reward = nullptr;
  bool* terminated = nullptr;
  bool* truncated = nullptr;
  int32_t* env_id = nullptr;
  int32_t* lives = nullptr;
  int32_t* frame_number = nullptr;
  int32_t* episode_frame_number = nullptr;
  // EnvPool's info keys that training scripts read: the unclipped reward, the end of the
  // game as played (StepOutcome::game_ended), and the steps since the last reset.
  int32_t* raw_reward = nullptr;
  bool* game_ended = nullptr;
  int32_t* elapsed_step = nullptr;
  // Episode statistics, valid where episode_mask is set (the step that ended an episode).
  float* episode_return = nullptr;
  int32_t* episode_length = nullptr;
  bool* episode_mask = nullptr;
  uint8_t* final_obs = nullptr;
  bool* final_mask = nullptr;
  int32_t* final_lives = nullptr;
  int32_t* final_frame_number = nullptr;
  int32_t* final_episode_frame_number = nullptr;
};

struct RowRef {
  const BatchBuffers* buffers;
  int block;
  int row;
};

class ResultRing {
 public:
  ResultRing(int batch_size, int num_blocks, bool rows_by_env)
      : batch_size_(batch_size),
        rows_by_env_(rows_by_env),
        buffers_(static_cast<std::size_t>(num_blocks)),
        filled_(new std::atomic<int>[static_cast<std::size_t>(num_blocks)]) {
    for (int i = 0; i < num_blocks; ++i) filled_[i].store(0);
  }

  int num_blocks() const { return static_cast<int>(buffers_.size()); }
  int batch_size() const { return batch_size_; }
  const BatchBuffers& buffers(int block) const { return buffers_[static_cast<std::size_t>(block)]; }

  RowRef claim(int env_id) {
    // acq_rel: the claim that lands in a block must happen after the caller's prepare() of
    // it. This worker may have synchronised with the caller (its pop) before that prepare;
    // the claims of workers that popped later carry it along the fetch_add chain.
    const int64_t c = next_.fetch_add(1, std::memory_order_acq_rel);
    const int block = static_cast<int>((c / batch_size_) % num_blocks());
    const int row = rows_by_env_ ? env_id : static_cast<int>(c % batch_size_);
    return RowRef{&buffers_[static_cast<std::size_t>(block)], block, row};
  }

  void commit(const RowRef& ref) {
    if (filled_[ref.block].fetch_add(1, std::memory_order_acq_rel) + 1 == batch_size_) {
      { std::lock_guard<std::mutex> lock(mutex_); }
      complete_.notify_all();
    }
    committed_.fetch_add(1, std::memory_order_release);
  }

  void prepare(int block, const BatchBuffers& buffers) {
    buffers_[static_cast<std::size_t>(block)] = buffers;
    filled_[block].store(0, std::memory_order_release);
  }

  bool is_complete(int block) const {
    return filled_[block].load(std::memory_order_acquire) == batch_size_;
  }

  // Waits up to `timeout` for the block; true if it is complete.
  bool wait_complete(int block, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return complete_.wait_for(lock, timeout, [&] { return is_complete(block); });
  }

  int64_t committed() const { return committed_.load(std::memory_order_acquire); }

  // Caller thread, with no task in flight: numbering starts again at block 0.
  void restart() {
    next_.store(0);
    committed_.store(0);
  }

 private:
  const int batch_size_;
  const bool rows_by_env_;
  std::vector<BatchBuffers> buffers_;
  std::unique_ptr<std::atomic<int>[]> filled_;
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> committed_{0};
  std::mutex mutex_;
  std::condition_variable complete_;
};

}  // namespace atari_vec
