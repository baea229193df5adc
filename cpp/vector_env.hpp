// vector_env.hpp: the pool. N AtariEnvs, worker threads, the task queue and the result ring.
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

#include <chrono>
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

class VectorEnv {
 public:
  // One EnvConfig per env (they may differ in game; their observation sizes must agree).
  VectorEnv(const std::vector<EnvConfig>& envs, const PoolConfig& pool);
  ~VectorEnv();
  VectorEnv(const VectorEnv&) = delete;
  VectorEnv& operator=(const VectorEnv&) = delete;

  int num_envs() const { return static_cast<int>(envs_.size()); }
  int batch_size() const { return batch_size_; }
  int num_threads() const { return static_cast<int>(workers_.size()); }
  int num_blocks() const { return ring_->num_blocks(); }
  AutoresetMode autoreset_mode() const { return pool_.autoreset_mode; }
  const AtariEnv& env(int i) const { return *envs_[static_cast<std::size_t>(i)]; }
  // The CPU each worker is pinned to (empty without affinity).
  const std::vector<int>& worker_cpus() const { return worker_cpus_; }

  // Results queued but not yet received; recv is allowed when this is >= batch_size.
  int64_t outstanding() const { return enqueued_ - received_; }
  bool awaiting_send() const { return awaiting_send_; }
  bool started() const { return started_; }
  bool closed() const { return closed_; }

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
  void write_row(const AtariEnv& env, const RowRef& ref, int env_id) const;

  PoolConfig pool_;
  int batch_size_;
  std::vector<std::unique_ptr<AtariEnv>> envs_;
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
  bool closed_ = false;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// CPUs this process may run on (sched_getaffinity), in increasing order.
std::vector<int> allowed_cpus();

}  // namespace atari_vec
