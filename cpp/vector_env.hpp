// vector_env.hpp: the pool. N environments (AtariEnv in production), worker threads, the task queue and the result ring.
//
// Protocol (caller thread only, one call at a time; the Python layer enforces both):
//   quiesce()            wait until no task is in flight, then number results from 0 again;
//   prepare_block(b, ..) hand the output arrays of block b to the ring (all blocks after
//                        quiesce(), then one per recv());
//   reset(ids, seeds)    queue resets (and, for a partial reset, reports of the other envs);
//   send(actions, ...)   queue one step for each env of the last received batch;
//   wait_batch(timeout)  true once the next batch is complete; returns early on timeout so
//                        the caller can check for Ctrl-C between waits;
//   finish_batch()       consume it: returns its block index;
//   rethrow_worker_error() raise the first error a worker met since the last call.
// Workers never throw out of their loop: an error is stored, the row is still committed so
// the batch completes, and finish_batch() rethrows it. close() (or the destructor) closes
// the queue, which wakes every worker, and joins them.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "atari_env.hpp"
#include "config.hpp"
#include "result_ring.hpp"
#include "task_queue.hpp"

namespace atari_vec {

// Env is any type with: observation_bytes(), set_action(int, float), set_seed(int64_t),
// reset(), step(), episode_over(), outcome() -> StepOutcome, write_observation(uint8_t*) const
// (and render_rgb(uint8_t*) const if render_rgb is used). AtariEnv is the real one; the C++
// tests drive the same pool with a counting env.
template <class Env>
class BasicVectorEnv {
 public:
  // Takes the environments (at least one; their observation sizes must agree) and starts the
  // workers.
  BasicVectorEnv(std::vector<std::unique_ptr<Env>> envs, const PoolConfig& pool);
  ~BasicVectorEnv();
  BasicVectorEnv(const BasicVectorEnv&) = delete;
  BasicVectorEnv& operator=(const BasicVectorEnv&) = delete;

  int num_envs() const { return static_cast<int>(envs_.size()); }
  int batch_size() const { return batch_size_; }
  int num_threads() const { return static_cast<int>(workers_.size()); }
  int num_blocks() const { return ring_->num_blocks(); }
  AutoresetMode autoreset_mode() const { return pool_.autoreset_mode; }
  const Env& env(int i) const { return *envs_[static_cast<std::size_t>(i)]; }
  // The CPU each worker is pinned to (empty without affinity).
  const std::vector<int>& worker_cpus() const { return worker_cpus_; }

  // Results queued but not yet received; recv is allowed when this is >= batch_size.
  int64_t outstanding() const { return enqueued_ - received_; }
  bool awaiting_send() const { return awaiting_send_; }
  bool started() const { return started_; }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  bool quiesce(std::chrono::milliseconds timeout);
  void prepare_block(int block, const BatchBuffers& buffers) { ring_->prepare(block, buffers); }
  // env_ids: distinct, in range; seeds: -1 for none. count == num_envs for a full reset.
  void reset(const int32_t* env_ids, const int64_t* seeds, int count);
  // batch_size action indices (already range-checked) and paddle strengths. In DISABLED
  // mode it throws std::invalid_argument, queuing nothing, if an env's episode is over.
  void send(const int32_t* actions, const float* strengths);
  bool wait_batch(std::chrono::milliseconds timeout);
  int finish_batch();
  void rethrow_worker_error();
  // The block a caller may refill after finish_batch() returned `block`: the one it
  // received two batches ago, which no worker can reach yet.
  int block_to_refill(int block) const { return (block + num_blocks() - 2) % num_blocks(); }
  // True if no task for env_id is queued or running and its last result was received.
  bool is_idle(int env_id) const;
  // The env's current full RGB screen; throws std::invalid_argument unless it is idle.
  void render_rgb(int env_id, uint8_t* dst) const;
  void close();

 private:
  void worker_loop();
  void run_task(const Task& task);
  void write_row(const Env& env, const RowRef& ref, int env_id) const;

  PoolConfig pool_;
  std::vector<std::unique_ptr<Env>> envs_;
  int batch_size_ = 0;
  std::size_t stacked_bytes_;
  std::unique_ptr<TaskQueue> queue_;
  std::unique_ptr<ResultRing> ring_;
  std::vector<Task> task_scratch_;
  std::vector<char> reset_scratch_;
  std::vector<int32_t> last_ids_;
  std::vector<std::thread> workers_;
  std::vector<int> worker_cpus_;
  int64_t enqueued_ = 0;
  int64_t received_ = 0;
  int64_t next_block_ = 0;
  bool awaiting_send_ = false;
  bool started_ = false;
  std::atomic<bool> closed_{false};  // close() may come from another thread than a waiter
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// CPUs this process may run on (sched_getaffinity), in increasing order.
std::vector<int> allowed_cpus();

template <class Env>
inline BasicVectorEnv<Env>::BasicVectorEnv(std::vector<std::unique_ptr<Env>> envs, const PoolConfig& pool)
    : pool_(pool), envs_(std::move(envs)) {
  if (envs_.empty()) throw std::invalid_argument("num_envs must be positive, got 0");
  pool_.num_envs = static_cast<int>(envs_.size());  // the env list is the truth
  pool_.validate();
  batch_size_ = pool_.effective_batch_size();
  for (const auto& e : envs_) {
    if (e->observation_bytes() != envs_.front()->observation_bytes()) {
      throw std::invalid_argument("all environments must produce observations of one size");
    }
  }
  stacked_bytes_ = envs_.front()->observation_bytes();

  queue_ = std::make_unique<TaskQueue>(envs_.size());
  const int ahead = (num_envs() + batch_size_ - 1) / batch_size_;
  ring_ = std::make_unique<ResultRing>(batch_size_, ahead + 2, batch_size_ == num_envs());
  task_scratch_.resize(envs_.size());
  reset_scratch_.resize(envs_.size());
  last_ids_.assign(static_cast<std::size_t>(batch_size_), 0);

  const std::vector<int> cpus = allowed_cpus();
  const int threads = pool_.num_threads > 0
                          ? pool_.num_threads
                          : std::min(num_envs(), static_cast<int>(cpus.size()));
  workers_.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });

  if (pool_.thread_affinity_offset >= 0) {
    for (int i = 0; i < threads; ++i) {
      const int cpu = cpus[static_cast<std::size_t>(pool_.thread_affinity_offset + i) % cpus.size()];
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      const int rc = pthread_setaffinity_np(workers_[static_cast<std::size_t>(i)].native_handle(),
                                            sizeof(set), &set);
      if (rc != 0) {
        close();
        throw std::system_error(rc, std::generic_category(),
                                "could not pin worker " + std::to_string(i) + " to CPU " +
                                    std::to_string(cpu));
      }
      worker_cpus_.push_back(cpu);
    }
  }
}

template <class Env>
inline BasicVectorEnv<Env>::~BasicVectorEnv() { close(); }

template <class Env>
inline void BasicVectorEnv<Env>::close() {
  if (closed_.exchange(true)) return;
  if (queue_) queue_->close();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
}

template <class Env>
inline bool BasicVectorEnv<Env>::quiesce(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ring_->committed() < enqueued_) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ring_->restart();
  enqueued_ = 0;
  received_ = 0;
  next_block_ = 0;
  awaiting_send_ = false;
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error_ = nullptr;
  }
  return true;
}

template <class Env>
inline void BasicVectorEnv<Env>::reset(const int32_t* env_ids, const int64_t* seeds, int count) {
  if (enqueued_ != 0) throw std::logic_error("reset() needs quiesce() first");
  if (count != num_envs() && batch_size_ != num_envs()) {
    throw std::invalid_argument("a partial reset needs batch_size == num_envs");
  }
  std::vector<char>& is_reset = reset_scratch_;
  std::fill(is_reset.begin(), is_reset.end(), 0);
  int n = 0;
  for (int i = 0; i < count; ++i) {
    envs_[static_cast<std::size_t>(env_ids[i])]->set_seed(seeds[i]);
    is_reset[static_cast<std::size_t>(env_ids[i])] = 1;
    task_scratch_[static_cast<std::size_t>(n++)] = Task{env_ids[i], TaskKind::kReset};
  }
  for (int e = 0; e < num_envs(); ++e) {
    if (!is_reset[static_cast<std::size_t>(e)]) {
      task_scratch_[static_cast<std::size_t>(n++)] = Task{e, TaskKind::kReport};
    }
  }
  queue_->push_bulk(task_scratch_.data(), static_cast<std::size_t>(n));
  enqueued_ += n;
  started_ = true;
  awaiting_send_ = false;
}

template <class Env>
inline void BasicVectorEnv<Env>::send(const int32_t* actions, const float* strengths) {
  if (pool_.autoreset_mode == AutoresetMode::kDisabled) {
    // Sync mode (validated), so after recv no task runs and env state is safe to read here.
    std::string ended;
    for (int e = 0; e < num_envs(); ++e) {
      if (envs_[static_cast<std::size_t>(e)]->episode_over()) {
        ended += (ended.empty() ? "" : ", ") + std::to_string(e);
      }
    }
    if (!ended.empty()) {
      throw std::invalid_argument(
          "autoreset_mode is DISABLED and the episodes of environments [" + ended +
          "] are over; reset them with reset(options={'reset_mask': mask}) before stepping");
    }
  }
  for (int i = 0; i < batch_size_; ++i) {
    const int32_t e = last_ids_[static_cast<std::size_t>(i)];
    envs_[static_cast<std::size_t>(e)]->set_action(actions[i], strengths ? strengths[i] : 1.0f);
    task_scratch_[static_cast<std::size_t>(i)] = Task{e, TaskKind::kStep};
  }
  queue_->push_bulk(task_scratch_.data(), static_cast<std::size_t>(batch_size_));
  enqueued_ += batch_size_;
  awaiting_send_ = false;
}

template <class Env>
inline bool BasicVectorEnv<Env>::wait_batch(std::chrono::milliseconds timeout) {
  const int block = static_cast<int>(next_block_ % num_blocks());
  return ring_->wait_complete(block, timeout);
}

template <class Env>
inline int BasicVectorEnv<Env>::finish_batch() {
  const int block = static_cast<int>(next_block_ % num_blocks());
  ++next_block_;
  received_ += batch_size_;
  awaiting_send_ = true;
  // Rows are complete, so the env ids are final; read them from the caller's array.
  std::memcpy(last_ids_.data(), ring_->buffers(block).env_id, sizeof(int32_t) * batch_size_);
  return block;
}

template <class Env>
inline void BasicVectorEnv<Env>::rethrow_worker_error() {
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    std::swap(error, error_);
  }
  if (error) std::rethrow_exception(error);
}

template <class Env>
inline bool BasicVectorEnv<Env>::is_idle(int env_id) const {
  if (enqueued_ == received_) return true;  // nothing queued, running or unreceived
  if (!awaiting_send_) return false;
  for (int32_t e : last_ids_) {
    if (e == env_id) return true;  // received, and no action sent to it since
  }
  return false;
}

template <class Env>
inline void BasicVectorEnv<Env>::render_rgb(int env_id, uint8_t* dst) const {
  if (!is_idle(env_id)) {
    throw std::invalid_argument("environment " + std::to_string(env_id) +
                                " is being stepped; render it once its result is received");
  }
  envs_[static_cast<std::size_t>(env_id)]->render_rgb(dst);
}

template <class Env>
inline void BasicVectorEnv<Env>::worker_loop() {
  Task task;
  while (queue_->pop(task)) run_task(task);
}

template <class Env>
inline void BasicVectorEnv<Env>::run_task(const Task& task) {
  Env& env = *envs_[static_cast<std::size_t>(task.env_id)];
  const bool same_step = pool_.autoreset_mode == AutoresetMode::kSameStep;
  StepOutcome final_outcome;
  bool ended = false;     // SAME_STEP: this step ended the episode, reset follows here
  bool finished = false;  // this step ended the episode (any mode)
  try {
    switch (task.kind) {
      case TaskKind::kReset:
        env.reset();
        break;
      case TaskKind::kReport:
        break;
      case TaskKind::kStep:
        if (pool_.autoreset_mode == AutoresetMode::kNextStep && env.episode_over()) {
          env.reset();
        } else {
          env.step();
          finished = env.episode_over();
          ended = same_step && finished;
        }
        break;
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }

  const RowRef ref = ring_->claim(task.env_id);
  const BatchBuffers& out = *ref.buffers;
  const std::size_t row = static_cast<std::size_t>(ref.row);
  try {
    if (ended) {
      // SAME_STEP: keep the final observation and info, then start the next episode; the
      // row reports the final step's reward and flags with the new episode's observation.
      final_outcome = env.outcome();
      env.write_observation(out.final_obs + row * stacked_bytes_);
      out.final_lives[row] = final_outcome.lives;
      out.final_frame_number[row] = final_outcome.frame_number;
      out.final_episode_frame_number[row] = final_outcome.episode_frame_number;
      env.reset();
    }
    if (same_step) out.final_mask[row] = ended;
    // Statistics of an episode that ended on this step; zeros elsewhere, as Gymnasium's
    // RecordEpisodeStatistics reports them.
    out.episode_mask[row] = finished;
    const StepOutcome stats = ended ? final_outcome : finished ? env.outcome() : StepOutcome{};
    out.episode_return[row] = static_cast<float>(stats.episode_return);
    out.episode_length[row] = stats.episode_length;
    write_row(env, ref, task.env_id);
    if (ended) {
      out.reward[row] = final_outcome.reward;
      out.terminated[row] = final_outcome.terminated;
      out.truncated[row] = final_outcome.truncated;
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
  ring_->commit(ref);
}

template <class Env>
inline void BasicVectorEnv<Env>::write_row(const Env& env, const RowRef& ref, int env_id) const {
  const BatchBuffers& out = *ref.buffers;
  const std::size_t row = static_cast<std::size_t>(ref.row);
  const StepOutcome o = env.outcome();
  env.write_observation(out.obs + row * stacked_bytes_);
  out.reward[row] = o.reward;
  out.terminated[row] = o.terminated;
  out.truncated[row] = o.truncated;
  out.env_id[row] = env_id;
  out.lives[row] = o.lives;
  out.frame_number[row] = o.frame_number;
  out.episode_frame_number[row] = o.episode_frame_number;
}


// The pool of Atari environments, built from one EnvConfig per env (games may differ).
using VectorEnv = BasicVectorEnv<AtariEnv>;
std::unique_ptr<VectorEnv> make_vector_env(const std::vector<EnvConfig>& envs, const PoolConfig& pool);

}  // namespace atari_vec
