// task_queue.hpp: the queue of env tasks from the caller thread to the workers.
//
// Two bounded FIFO rings guarded by one mutex: the caller's tasks, and background tasks
// that workers queue for themselves (resets prepared ahead), which workers take first.
// Capacities are fixed at construction and pushes never allocate; the pool never has more
// than one caller task per env queued, so that capacity (num_envs) is never exceeded, and
// push_bulk throws if a bug ever tried; a background task is queued at most once per env at
// a time (a second push for the same env is dropped).
// Producers: the caller thread (push_bulk), workers (push_background). Consumers: any
// worker (pop), and the caller thread helping while it waits for a batch (try_pop, caller
// tasks only). pop() may first spin for a bounded time, watching a lock-free count (the
// wake-up of a thread sleeping on a condition variable costs tens of microseconds on a
// virtual machine, a sizeable part of a synchronous batch's turnaround); then it blocks
// until a task is pushed or the queue is closed (woken by close()); after close() it
// returns false at once, so no worker can sleep through shutdown.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace atari_vec {

// A hint to the CPU that this thread is spinning (frees resources for a sibling hyperthread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

enum class TaskKind : uint8_t { kStep, kReset, kReport, kPrepareReset, kPlan };

struct Task {
  int32_t env_id = 0;
  TaskKind kind = TaskKind::kStep;
};

class TaskQueue {
 public:
  explicit TaskQueue(std::size_t capacity)
      : ring_(capacity), background_(capacity), background_queued_(capacity, 0) {}

  // wake = false queues without notifying a sleeping worker: for a caller that runs tasks
  // itself and waits at once (a worker still spinning may take them; none is woken).
  void push_bulk(const Task* tasks, std::size_t n, bool wake = true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (size_ + n > ring_.size()) throw std::logic_error("task queue overflow");
      for (std::size_t i = 0; i < n; ++i) {
        ring_[(head_ + size_) % ring_.size()] = tasks[i];
        ++size_;
      }
      queued_.fetch_add(n, std::memory_order_release);
    }
    if (!wake) return;
    if (n == 1) {
      ready_.notify_one();
    } else {
      ready_.notify_all();
    }
  }

  // Queues a background task for env_id (0 <= env_id < capacity) unless one is queued.
  void push_background(int32_t env_id, TaskKind kind) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      char& queued = background_queued_[static_cast<std::size_t>(env_id)];
      if (queued) return;
      queued = 1;
      background_[(background_head_ + background_size_) % background_.size()] = Task{env_id, kind};
      ++background_size_;
      queued_.fetch_add(1, std::memory_order_release);
    }
    ready_.notify_one();
  }

  // Blocks until a task is available (returns true) or the queue is closed (returns false).
  // Background tasks come first: they are the resets prepared ahead, each as long as some
  // twenty steps, and the earlier one starts, the more of the caller's steps run beside it instead
  // of after it. Before blocking it spins for up to `spin` (zero: not at all) while nothing
  // is queued.
  bool pop(Task& out, std::chrono::microseconds spin = std::chrono::microseconds(0)) {
    if (spin.count() > 0) spin_until_queued(spin);
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return size_ > 0 || background_size_ > 0 || closed_; });
    if (closed_) return false;
    if (background_size_ > 0) {
      out = background_[background_head_];
      background_head_ = (background_head_ + 1) % background_.size();
      --background_size_;
      background_queued_[static_cast<std::size_t>(out.env_id)] = 0;
      queued_.fetch_sub(1, std::memory_order_relaxed);
    } else {
      take_caller_task(out);
    }
    return true;
  }

  // Takes a caller task if one is queued (never a background task); never blocks for long.
  bool try_pop(Task& out) {
    if (queued_.load(std::memory_order_acquire) == 0) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_ || size_ == 0) return false;
    take_caller_task(out);
    return true;
  }

  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_.store(true, std::memory_order_release);
    }
    ready_.notify_all();
  }

 private:
  void take_caller_task(Task& out) {
    out = ring_[head_];
    head_ = (head_ + 1) % ring_.size();
    --size_;
    queued_.fetch_sub(1, std::memory_order_relaxed);
  }

  void spin_until_queued(std::chrono::microseconds spin) const {
    const auto deadline = std::chrono::steady_clock::now() + spin;
    for (unsigned i = 1;; ++i) {
      if (queued_.load(std::memory_order_acquire) > 0 ||
          closed_.load(std::memory_order_acquire)) {
        return;
      }
      cpu_relax();
      if (i % 64 == 0 && std::chrono::steady_clock::now() >= deadline) return;
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<Task> ring_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::vector<Task> background_;
  std::vector<char> background_queued_;  // per env: a background task is queued
  std::size_t background_head_ = 0;
  std::size_t background_size_ = 0;
  // Written under the mutex, atomic so a spinning pop can watch it without the mutex.
  std::atomic<bool> closed_{false};
  // size_ + background_size_, for the same reason.
  std::atomic<std::size_t> queued_{0};
};

}  // namespace atari_vec
