// task_queue.hpp: the queue of env tasks from the caller thread to the workers.
//
// Two bounded FIFO rings guarded by one mutex: the caller's tasks, and background tasks
// that workers queue for themselves (resets prepared ahead) and that run only when no
// caller task waits. Capacities are fixed at construction and pushes never allocate; the
// pool never has more than one caller task per env queued, so that capacity (num_envs) is
// never exceeded, and push_bulk throws if a bug ever tried; a background task is queued at
// most once per env at a time (a second push for the same env is dropped).
// Producers: the caller thread (push_bulk), workers (push_background). Consumers: any
// worker. pop() blocks until a task is pushed or the queue is closed (woken by close());
// after close() it returns false at once, so no worker can sleep through shutdown.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace atari_vec {

enum class TaskKind : uint8_t { kStep, kReset, kReport, kPrepareReset };

struct Task {
  int32_t env_id = 0;
  TaskKind kind = TaskKind::kStep;
};

class TaskQueue {
 public:
  explicit TaskQueue(std::size_t capacity)
      : ring_(capacity), background_(capacity), background_queued_(capacity, 0) {}

  void push_bulk(const Task* tasks, std::size_t n) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (size_ + n > ring_.size()) throw std::logic_error("task queue overflow");
      for (std::size_t i = 0; i < n; ++i) {
        ring_[(head_ + size_) % ring_.size()] = tasks[i];
        ++size_;
      }
    }
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
    }
    ready_.notify_one();
  }

  // Blocks until a task is available (returns true) or the queue is closed (returns false).
  // Caller tasks come first; a background task only when no caller task is queued.
  bool pop(Task& out) {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return size_ > 0 || background_size_ > 0 || closed_; });
    if (closed_) return false;
    if (size_ > 0) {
      out = ring_[head_];
      head_ = (head_ + 1) % ring_.size();
      --size_;
    } else {
      out = background_[background_head_];
      background_head_ = (background_head_ + 1) % background_.size();
      --background_size_;
      background_queued_[static_cast<std::size_t>(out.env_id)] = 0;
    }
    return true;
  }

  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<Task> ring_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::vector<Task> background_;
  std::vector<char> background_queued_;  // per env: a background task is queued
  std::size_t background_head_ = 0;
  std::size_t background_size_ = 0;
  bool closed_ = false;
};

}  // namespace atari_vec
