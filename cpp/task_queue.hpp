// task_queue.hpp: the queue of env tasks from the caller thread to the workers.
//
// A bounded FIFO ring guarded by one mutex. Capacity is fixed at construction and
// push_bulk never allocates; the pool never has more than one task per env queued, so
// the capacity (num_envs) is never exceeded, and push_bulk throws if a bug ever tried.
// Producers: the caller thread. Consumers: any worker. pop() blocks until a task is pushed
// (woken by push_bulk) or the queue is closed (woken by close()); after close() it
// returns false at once, so no worker can sleep through shutdown.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace atari_vec {

enum class TaskKind : uint8_t { kStep, kReset, kReport };

struct Task {
  int32_t env_id = 0;
  TaskKind kind = TaskKind::kStep;
};

class TaskQueue {
 public:
  explicit TaskQueue(std::size_t capacity) : ring_(capacity) {}

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

  // Blocks until a task is available (returns true) or the queue is closed (returns false).
  bool pop(Task& out) {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return size_ > 0 || closed_; });
    if (closed_) return false;
    out = ring_[head_];
    head_ = (head_ + 1) % ring_.size();
    --size_;
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
  bool closed_ = false;
};

}  // namespace atari_vec
