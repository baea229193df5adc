// vector_env.hpp: the pool. N environments (AtariEnv in production), worker threads, the task queue and the result ring.
//
// Protocol (caller thread only, one call at a time; the Python layer enforces both):
//   quiesce()            wait until no task is in flight, then number results from 0 again;
//   prepare_block(b, ..) hand the output arrays of block b to the ring (all blocks after
//                        quiesce(), then one per recv());
//   reset(ids, seeds)    queue resets (and, for a partial reset, reports of the other envs);
//   send(actions, ...)   queue one step for each env of the last received batch;
//   send(ids, actions, ..) queue one step for each env named (any envs whose last result
//                        was received and that have no task queued since: "ready" envs);
//   reset_envs(ids, ..)  queue resets of ready envs; their rows come back like steps'
//                        (a session server resets one env while others step);
//   wait_batch(timeout)  true once the next batch is complete; returns early on timeout so
//                        the caller can check for Ctrl-C between waits;
//   finish_batch()       consume it: returns its block index;
//   rethrow_worker_error() raise the first error a worker met since the last call.
// Workers never throw out of their loop: an error is stored, the row is still committed so
// the batch completes, and finish_batch() rethrows it. close() (or the destructor) closes
// the queue, which wakes every worker, and joins them.
//
// Resets ahead (NEXT_STEP with PoolConfig::reset_ahead): the worker that ends an episode
// queues a background task that runs the env's next reset before its next step is sent;
// reset_ahead.hpp holds the per-env state machine and says why.
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
#include <type_traits>
#include <vector>

#include "atari_env.hpp"
#include "config.hpp"
#include "planning.hpp"
#include "reset_ahead.hpp"
#include "result_ring.hpp"
#include "task_queue.hpp"

namespace atari_vec {

// Whether Env can save and load snapshot rows (AtariEnv can; the C++ tests' counting env
// cannot): snapshots and planning are compiled only for such envs.
template <class E, class = void>
struct SupportsSnapshots : std::false_type {};
template <class E>
struct SupportsSnapshots<E, std::void_t<decltype(&E::save), decltype(&E::load)>> : std::true_type {};

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
  // PoolConfig::caller_runs_tasks: wait_batch() runs queued tasks.
  bool caller_runs_tasks() const { return caller_runs_tasks_; }
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
  // batch_size action indices (already range-checked) and paddle strengths, for the envs of
  // the last batch received. In DISABLED mode it throws std::invalid_argument, queuing
  // nothing, if an env's episode is over.
  void send(const int32_t* actions, const float* strengths, bool wake = true);
  // One step for each of `count` ready envs (distinct, in range, last result received and
  // nothing queued for them since; else std::invalid_argument and nothing is queued).
  // recv() then returns the next batch_size results, from whichever envs finish first.
  // wake = false (with caller_runs_tasks; ignored without) wakes no sleeping worker: the
  // caller's next wait runs the tasks, which saves a thread wake-up when it waits at once.
  void send(const int32_t* env_ids, const int32_t* actions, const float* strengths, int count,
            bool wake = true);
  // A reset of each of `count` ready envs (seeds: -1 for none), queued like steps: each
  // produces one row, received through wait_batch()/finish_batch(). A reset running ahead
  // for one of them is waited for first (about a millisecond); an unseeded reset uses it.
  void reset_envs(const int32_t* env_ids, const int64_t* seeds, int count);
  // Whether env_id's last result was received and nothing was queued for it since.
  bool ready(int env_id) const { return ready_[static_cast<std::size_t>(env_id)] != 0; }
  // Waits up to `timeout` for the next batch; true if it is complete. When the caller runs
  // tasks, it may return up to one task's duration after the timeout.
  bool wait_batch(std::chrono::milliseconds timeout);
  int finish_batch();
  // True if the next batch is complete (wait_batch() would return at once); never blocks.
  bool batch_ready() const {
    return outstanding() >= batch_size_ && ring_->is_complete(static_cast<int>(next_block_ % num_blocks()));
  }
  void rethrow_worker_error();
  // The block a caller may refill after finish_batch() returned `block`: the one it
  // received two batches ago, which no worker can reach yet.
  int block_to_refill(int block) const { return (block + num_blocks() - 2) % num_blocks(); }
  // Resets run ahead of their step so far (NEXT_STEP with reset_ahead), for tests and tuning.
  int64_t resets_ahead() const { return ahead_.resets_ahead(); }
  // Of those, the ones whose step arrived while they ran (and was finished by their worker).
  int64_t handoffs() const { return ahead_.handoffs(); }
  // After quiesce(): env_id has run the reset its next step needs (not yet shown).
  bool reset_prepared(int env_id) const { return ahead_.ready(env_id); }
  // True if no task for env_id is queued or running and its last result was received.
  bool is_idle(int env_id) const;
  // The env's current full RGB screen, and its RAM (kRamBytes); both throw
  // std::invalid_argument unless the env is idle (and std::logic_error with reset_ahead).
  void render_rgb(int env_id, uint8_t* dst) const { shown_env(env_id).render_rgb(dst); }
  void read_ram(int env_id, uint8_t* dst) const { shown_env(env_id).write_ram(dst); }

  // Snapshots (Env = AtariEnv; caller thread). The envs named must be idle (is_idle), or
  // std::invalid_argument is thrown before anything changes. Rows are snapshot_bytes() wide
  // (the widest env's snapshot). clone_states writes `count` rows to `out`; a state taken
  // when an env's reset ran ahead records that, so a restored env reports the reset on its
  // next step as the original would. restore_states checks every row against its env first
  // (AtariEnv::load's checks), then restores them all.
  std::size_t snapshot_bytes() const;
  void clone_states(const int32_t* env_ids, int count, bool include_rng, uint8_t* out);
  void restore_states(const uint8_t* rows, const int32_t* env_ids, int count);

  // Batched planning (planning.hpp; Env = AtariEnv; caller thread). start_plan needs every
  // env idle and one game and setting in the pool; it queues a plan task per env. Then
  // wait_plan until it returns true (the caller runs plan tasks too when it runs tasks), and
  // finish_plan, which rethrows a walker's error. After an interrupt, stop_plan() makes the
  // tasks take no more walkers; wait for them all the same before dropping the job.
  void start_plan(PlanJob& job);
  bool wait_plan(std::chrono::milliseconds timeout);
  void finish_plan();
  void stop_plan() {
    if (plan_) plan_->stop.store(true, std::memory_order_relaxed);
  }
  void close();

 private:
  void worker_loop();
  void run_task(const Task& task);
  void run_reset_ahead(int env_id);
  // One plan task: save the env's own state (once), run walkers until none is left or
  // `until`, then put the env back, or queue the task again to go on later.
  void run_plan(int env_id, std::chrono::steady_clock::time_point until);
  void require_idle(const int32_t* env_ids, int count, const char* what) const;
  // Checks that env_ids are distinct ready envs; throws std::invalid_argument naming `what`.
  void require_ready(const int32_t* env_ids, int count, const char* what);
  // Queues `count` tasks for ready envs (ordering steps by lives with reset_ahead); wake:
  // as send()'s.
  void push_tasks(Task* tasks, int count, bool wake = true);
  // An idle env whose emulator shows its last result (no reset ran ahead of it).
  const Env& shown_env(int env_id) const;
  // A row's outcome and info fields (the observation is written by the caller).
  void write_outcome(const RowRef& ref, int env_id, const StepOutcome& o) const;
  void store_error();

  PoolConfig pool_;
  std::vector<std::unique_ptr<Env>> envs_;
  int batch_size_ = 0;
  std::size_t stacked_bytes_;
  std::unique_ptr<TaskQueue> queue_;
  std::unique_ptr<ResultRing> ring_;
  std::vector<Task> task_scratch_;
  std::vector<Task> order_scratch_;   // send(): the batch's tasks, in queue order (push_tasks)
  std::vector<int32_t> last_lives_;   // per env: lives in its last row received (caller thread)
  // Per env: how long its last step took (ns / 1024), stored by the worker that ran it and
  // read by send() to queue long steps first.
  std::unique_ptr<std::atomic<uint32_t>[]> step_cost_;
  std::vector<char> reset_scratch_;
  std::vector<int32_t> last_ids_;
  std::vector<char> ready_;  // per env: last result received, nothing queued since (caller thread)
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
  bool reset_ahead_ = false;
  bool caller_runs_tasks_ = false;
  std::chrono::microseconds worker_spin_{0};
  std::chrono::microseconds caller_spin_{0};
  ResetAhead ahead_;  // every env stays none in it unless reset_ahead_
  // The planning call in progress, if any. Set and cleared by the caller thread; close()
  // (maybe another thread) reads it too, so both hold plan_mutex_ while the job is touched.
  PlanJob* plan_ = nullptr;
  std::mutex plan_mutex_;
  std::vector<std::vector<uint8_t>> own_state_;  // per env: its state while it plans
  std::vector<char> own_unshown_;                // and whether its reset ran ahead
  std::vector<char> own_saved_;                  // and whether own_state_ holds it now
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
  order_scratch_.resize(envs_.size());
  last_lives_.assign(envs_.size(), 0);
  step_cost_ = std::make_unique<std::atomic<uint32_t>[]>(envs_.size());
  reset_scratch_.resize(envs_.size());
  reset_ahead_ = pool_.reset_ahead && pool_.autoreset_mode == AutoresetMode::kNextStep;
  ahead_.init(envs_.size(), stacked_bytes_, reset_ahead_);
  last_ids_.assign(static_cast<std::size_t>(batch_size_), 0);
  ready_.assign(envs_.size(), 0);

  const std::vector<int> cpus = allowed_cpus();
  const int num_cpus = static_cast<int>(cpus.size());
  caller_runs_tasks_ = pool_.caller_runs_tasks;
  const int threads = pool_.num_threads > 0
                          ? pool_.num_threads
                          : std::max(1, std::min(num_envs(), num_cpus) - (caller_runs_tasks_ ? 1 : 0));
  // Spinning workers must leave the caller thread a CPU: it runs Python between batches, and
  // in async mode while the workers step.
  if (threads + 1 <= num_cpus) {
    worker_spin_ = std::chrono::microseconds(pool_.idle_spin_us);
    // The caller waits for the batch's last tasks, which other CPUs run: it may spin longer.
    caller_spin_ = std::chrono::microseconds(10 * pool_.idle_spin_us);
  }
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
  {
    // A planning call in progress fails (with this error, whoever finishes it) and its
    // workers take no more walkers; the error is set first, so that a call whose tasks all
    // end now cannot return as if it had completed.
    std::lock_guard<std::mutex> plan_lock(plan_mutex_);
    if (PlanJob* job = plan_) {
      std::lock_guard<std::mutex> lock(job->mutex);
      if (!job->error) {
        job->error = std::make_exception_ptr(
            std::runtime_error("step_states() interrupted: the environment was closed"));
      }
      job->stop.store(true, std::memory_order_relaxed);
    }
  }
  if (queue_) queue_->close();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  // A planning call waiting in another thread: the plan tasks still queued will never run.
  std::lock_guard<std::mutex> plan_lock(plan_mutex_);
  if (PlanJob* job = plan_) {
    std::lock_guard<std::mutex> lock(job->mutex);
    job->tasks_left = 0;
    job->finished.notify_all();
  }
}

template <class Env>
inline bool BasicVectorEnv<Env>::quiesce(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Prepared resets: cancel those not started, wait for those running (a handoff also
  // holds back a row, so the committed count covers it).
  while (ring_->committed() < enqueued_ || !ahead_.cancel_pending()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ring_->restart();
  std::fill(ready_.begin(), ready_.end(), 0);
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
    // A seeded reset starts from the seed: a prepared reset is of no use to it.
    if (seeds[i] >= 0) ahead_.discard(env_ids[i]);
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
inline void BasicVectorEnv<Env>::send(const int32_t* actions, const float* strengths, bool wake) {
  send(last_ids_.data(), actions, strengths, batch_size_, wake);
  awaiting_send_ = false;
}

template <class Env>
inline void BasicVectorEnv<Env>::require_ready(const int32_t* env_ids, int count, const char* what) {
  if (count < 1 || count > num_envs()) {
    throw std::invalid_argument(std::string(what) + ": expected 1 to " + std::to_string(num_envs()) +
                                " env ids, got " + std::to_string(count));
  }
  // reset_scratch_ marks the ids seen, to find duplicates without allocating.
  std::vector<char>& seen = reset_scratch_;
  std::fill(seen.begin(), seen.end(), 0);
  for (int i = 0; i < count; ++i) {
    const int32_t e = env_ids[i];
    if (e < 0 || e >= num_envs()) {
      throw std::invalid_argument(std::string(what) + ": env id " + std::to_string(e) +
                                  " is out of range [0, " + std::to_string(num_envs()) + ")");
    }
    if (seen[static_cast<std::size_t>(e)]++) {
      throw std::invalid_argument(std::string(what) + ": env id " + std::to_string(e) + " appears twice");
    }
    if (!ready_[static_cast<std::size_t>(e)]) {
      throw std::invalid_argument(std::string(what) + ": environment " + std::to_string(e) +
                                  " is not waiting for an action (its last result was not "
                                  "received yet, or it was already sent one)");
    }
  }
}

template <class Env>
inline void BasicVectorEnv<Env>::send(const int32_t* env_ids, const int32_t* actions, const float* strengths,
                                      int count, bool wake) {
  require_ready(env_ids, count, "send");
  if (pool_.autoreset_mode == AutoresetMode::kDisabled) {
    // The envs are ready: no task runs on them, so their state is safe to read here.
    std::string ended;
    for (int i = 0; i < count; ++i) {
      if (envs_[static_cast<std::size_t>(env_ids[i])]->episode_over()) {
        ended += (ended.empty() ? "" : ", ") + std::to_string(env_ids[i]);
      }
    }
    if (!ended.empty()) {
      throw std::invalid_argument(
          "autoreset_mode is DISABLED and the episodes of environments [" + ended +
          "] are over; reset them (reset(options={'reset_mask': mask}) or send_reset()) before "
          "stepping");
    }
  }
  for (int i = 0; i < count; ++i) {
    const int32_t e = env_ids[i];
    // An env with a prepared reset may be in a worker's hands right now; its next step is
    // that reset, which ignores the action, so the action is not passed on.
    if (ahead_.idle(e)) {
      envs_[static_cast<std::size_t>(e)]->set_action(actions[i], strengths ? strengths[i] : 1.0f);
    }
    task_scratch_[static_cast<std::size_t>(i)] = Task{e, TaskKind::kStep};
  }
  push_tasks(task_scratch_.data(), count, wake);
}

template <class Env>
inline void BasicVectorEnv<Env>::reset_envs(const int32_t* env_ids, const int64_t* seeds, int count) {
  require_ready(env_ids, count, "reset");
  for (int i = 0; i < count; ++i) {
    // As after quiesce(): the env is then none or ready in ahead_, and no worker holds it.
    ahead_.settle_idle(env_ids[i]);
    if (seeds[i] >= 0) ahead_.discard(env_ids[i]);
    envs_[static_cast<std::size_t>(env_ids[i])]->set_seed(seeds[i]);
    task_scratch_[static_cast<std::size_t>(i)] = Task{env_ids[i], TaskKind::kReset};
  }
  push_tasks(task_scratch_.data(), count);
}

template <class Env>
inline void BasicVectorEnv<Env>::push_tasks(Task* tasks, int count, bool wake) {
  // Longest steps first, by each env's last step time: a batch then ends on its shortest
  // steps, and the threads run out of work at nearly the same time (a synchronous batch
  // waits for its last step). With reset_ahead_, envs on their last life go before all
  // others (lives <= 1 covers both ways games count: 1 or 0 lives left on the last one).
  // Episodes mostly end on such a step, and the reset it queues then starts early in this
  // batch. Started late, a reset (about 20 steps of emulation) can outlast the next batch's
  // other steps, and that batch waits for it. Only the order of the queue changes: each
  // env's own results are the same (in async mode, which envs make up a batch depends on
  // timing anyway).
  auto key = [this](const Task& t) {
    const std::size_t e = static_cast<std::size_t>(t.env_id);
    const uint64_t first = reset_ahead_ && last_lives_[e] <= 1 ? 1 : 0;
    return (first << 32) | step_cost_[e].load(std::memory_order_relaxed);
  };
  // std::sort, not std::stable_sort, which allocates a buffer on every call; equal keys go
  // by env id.
  std::copy(tasks, tasks + count, order_scratch_.begin());
  std::sort(order_scratch_.begin(), order_scratch_.begin() + count,
            [&key](const Task& a, const Task& b) {
              const uint64_t ka = key(a), kb = key(b);
              return ka != kb ? ka > kb : a.env_id < b.env_id;
            });
  const Task* queued = order_scratch_.data();
  for (int i = 0; i < count; ++i) ready_[static_cast<std::size_t>(tasks[i].env_id)] = 0;
  // Without a caller that runs tasks, only a woken worker would ever run them.
  queue_->push_bulk(queued, static_cast<std::size_t>(count), wake || !caller_runs_tasks_);
  enqueued_ += count;
}

template <class Env>
inline bool BasicVectorEnv<Env>::wait_batch(std::chrono::milliseconds timeout) {
  const int block = static_cast<int>(next_block_ % num_blocks());
  if (caller_runs_tasks_) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Task task;
    while (!ring_->is_complete(block) && queue_->try_pop(task)) {
      run_task(task);
      if (std::chrono::steady_clock::now() >= deadline) return ring_->is_complete(block);
    }
    // Nothing left to take: the batch's last tasks are running on workers.
    const auto spin_end = std::min(deadline, std::chrono::steady_clock::now() + caller_spin_);
    for (unsigned i = 1; !ring_->is_complete(block); ++i) {
      cpu_relax();
      if (i % 64 == 0 && std::chrono::steady_clock::now() >= spin_end) {
        return ring_->wait_complete(block, std::chrono::duration_cast<std::chrono::milliseconds>(
                                               deadline - std::chrono::steady_clock::now()));
      }
    }
    return true;
  }
  return ring_->wait_complete(block, timeout);
}

template <class Env>
inline int BasicVectorEnv<Env>::finish_batch() {
  const int block = static_cast<int>(next_block_ % num_blocks());
  ++next_block_;
  received_ += batch_size_;
  awaiting_send_ = true;
  // Rows are complete, so the env ids are final; read them from the caller's array (and
  // the lives that send() orders the next tasks by).
  const BatchBuffers& out = ring_->buffers(block);
  std::memcpy(last_ids_.data(), out.env_id, sizeof(int32_t) * batch_size_);
  for (int i = 0; i < batch_size_; ++i) {
    last_lives_[static_cast<std::size_t>(out.env_id[i])] = out.lives[i];
    ready_[static_cast<std::size_t>(out.env_id[i])] = 1;
  }
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
  // Nothing queued, running or unreceived; or this env's result received, nothing sent since.
  return enqueued_ == received_ || ready_[static_cast<std::size_t>(env_id)];
}

template <class Env>
inline const Env& BasicVectorEnv<Env>::shown_env(int env_id) const {
  if (!is_idle(env_id)) {
    throw std::invalid_argument("environment " + std::to_string(env_id) +
                                " is being stepped; render it once its result is received");
  }
  if (!ahead_.idle(env_id)) {
    throw std::logic_error("render_rgb and read_ram need a pool built with reset_ahead = false");
  }
  return *envs_[static_cast<std::size_t>(env_id)];
}

template <class Env>
inline std::size_t BasicVectorEnv<Env>::snapshot_bytes() const {
  std::size_t width = 0;
  for (const auto& e : envs_) width = std::max(width, e->snapshot_bytes());
  return width;
}

template <class Env>
inline void BasicVectorEnv<Env>::require_idle(const int32_t* env_ids, int count, const char* what) const {
  for (int i = 0; i < count; ++i) {
    if (env_ids[i] < 0 || env_ids[i] >= num_envs()) {
      throw std::invalid_argument(std::string(what) + ": env id " + std::to_string(env_ids[i]) +
                                  " is out of range [0, " + std::to_string(num_envs()) + ")");
    }
    if (!is_idle(env_ids[i])) {
      throw std::invalid_argument(std::string(what) + ": environment " + std::to_string(env_ids[i]) +
                                  " is being stepped; use it once its result is received");
    }
  }
}

template <class Env>
inline void BasicVectorEnv<Env>::clone_states(const int32_t* env_ids, int count, bool include_rng,
                                              uint8_t* out) {
  require_idle(env_ids, count, "clone_states");
  const std::size_t width = snapshot_bytes();
  for (int i = 0; i < count; ++i) {
    const bool unshown = ahead_.settle_idle(env_ids[i]);
    envs_[static_cast<std::size_t>(env_ids[i])]->save(out + static_cast<std::size_t>(i) * width, width,
                                                      include_rng, unshown);
  }
}

template <class Env>
inline void BasicVectorEnv<Env>::restore_states(const uint8_t* rows, const int32_t* env_ids, int count) {
  require_idle(env_ids, count, "restore_states");
  const std::size_t width = snapshot_bytes();
  for (int i = 0; i < count; ++i) {
    for (int j = 0; j < i; ++j) {
      if (env_ids[j] == env_ids[i]) {
        throw std::invalid_argument("restore_states: env id " + std::to_string(env_ids[i]) +
                                    " appears twice");
      }
    }
    const Env& env = *envs_[static_cast<std::size_t>(env_ids[i])];
    try {
      check_snapshot(rows + static_cast<std::size_t>(i) * width, width, env.snapshot_identity());
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("state " + std::to_string(i) + " (for environment " +
                                  std::to_string(env_ids[i]) + "): " + e.what());
    }
  }
  for (int i = 0; i < count; ++i) {
    ahead_.settle_idle(env_ids[i]);
    ahead_.discard(env_ids[i]);  // the restored state replaces a reset that ran ahead
    envs_[static_cast<std::size_t>(env_ids[i])]->load(rows + static_cast<std::size_t>(i) * width, width);
  }
}

template <class Env>
inline void BasicVectorEnv<Env>::start_plan(PlanJob& job) {
  if (plan_) throw std::logic_error("a planning call is already running");
  for (int e = 0; e < num_envs(); ++e) {
    if (!is_idle(e)) {
      throw std::invalid_argument(
          "step_states needs every environment idle: call it after recv() has returned every "
          "env's result (in async mode some are still being stepped)");
    }
    const auto& id = envs_[static_cast<std::size_t>(e)]->snapshot_identity();
    const auto& first = envs_.front()->snapshot_identity();
    if (id.rom_hash != first.rom_hash || id.config_hash != first.config_hash) {
      throw std::invalid_argument("step_states needs a pool of one game and one setting");
    }
  }
  if (job.width != snapshot_bytes()) throw std::invalid_argument("states of the wrong width");
  if (own_state_.empty()) {
    own_state_.resize(envs_.size());
    own_unshown_.assign(envs_.size(), 0);
    own_saved_.assign(envs_.size(), 0);
    for (std::size_t e = 0; e < envs_.size(); ++e) own_state_[e].resize(envs_[e]->snapshot_bytes());
  }
  for (int e = 0; e < num_envs(); ++e) own_unshown_[static_cast<std::size_t>(e)] = ahead_.settle_idle(e);
  job.next.store(0, std::memory_order_relaxed);
  job.stop.store(false, std::memory_order_relaxed);
  // One plan task per thread that can run one (the workers and the caller), not per env: any
  // env runs any walker, and every task costs a save and a restore of its env's own state.
  const int64_t threads = static_cast<int64_t>(workers_.size()) + (caller_runs_tasks_ ? 1 : 0);
  const int tasks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({num_envs(), threads, job.count})));
  job.tasks_left = tasks;
  {
    std::lock_guard<std::mutex> lock(plan_mutex_);
    plan_ = &job;
  }
  for (int e = 0; e < tasks; ++e) task_scratch_[static_cast<std::size_t>(e)] = Task{e, TaskKind::kPlan};
  queue_->push_bulk(task_scratch_.data(), static_cast<std::size_t>(tasks));
}

template <class Env>
inline bool BasicVectorEnv<Env>::wait_plan(std::chrono::milliseconds timeout) {
  if (caller_runs_tasks_) {
    // The caller helps, in slices of `timeout`, so that it gets back to its own checks
    // (Ctrl-C) in time; a task it leaves unfinished goes back to the queue.
    const auto until = std::chrono::steady_clock::now() + timeout;
    Task task;
    while (queue_->try_pop(task)) {
      run_plan(task.env_id, until);  // only plan tasks are queued during a plan
      // Out of time, and the task may be back in the queue: return to the caller's checks
      // now. Waiting here would leave this CPU idle while that task waits for a worker
      // (a long call lost about a third of a core to it).
      if (std::chrono::steady_clock::now() >= until) return plan_->wait(std::chrono::milliseconds(0));
    }
  }
  return plan_->wait(timeout);
}

template <class Env>
inline void BasicVectorEnv<Env>::finish_plan() {
  PlanJob* job;
  {
    std::lock_guard<std::mutex> lock(plan_mutex_);
    job = plan_;
    plan_ = nullptr;
  }
  job->rethrow();
}

template <class Env>
inline void BasicVectorEnv<Env>::run_plan(int env_id, std::chrono::steady_clock::time_point until) {
  PlanJob& job = *plan_;
  const std::size_t e = static_cast<std::size_t>(env_id);
  Env& env = *envs_[e];
  try {
    if (!own_saved_[e]) {
      env.save(own_state_[e].data(), own_state_[e].size(), true, own_unshown_[e] != 0);
      own_saved_[e] = 1;
    }
    if (!run_walkers(env, job, until)) {
      const Task again{env_id, TaskKind::kPlan};
      queue_->push_bulk(&again, 1);  // its slot in the queue is the one it was popped from
      return;
    }
    own_saved_[e] = 0;
    env.load(own_state_[e].data(), own_state_[e].size());
    if (own_unshown_[e]) ahead_.discard(env_id);  // the restored env reports its reset itself
  } catch (...) {
    own_saved_[e] = 0;
    job.fail(-1);
  }
  job.task_done();
}

template <class Env>
inline void BasicVectorEnv<Env>::worker_loop() {
  Task task;
  while (queue_->pop(task, worker_spin_)) run_task(task);
}

template <class Env>
inline void BasicVectorEnv<Env>::run_task(const Task& task) {
  Env& env = *envs_[static_cast<std::size_t>(task.env_id)];
  const bool same_step = pool_.autoreset_mode == AutoresetMode::kSameStep;
  StepOutcome final_outcome;
  bool ended = false;     // SAME_STEP: this step ended the episode, reset follows here
  bool finished = false;  // this step ended the episode (any mode)
  bool show_final = false;  // report an env whose reset is prepared: its final state
  try {
    switch (task.kind) {
      case TaskKind::kPrepareReset:  // produces no row of its own
        run_reset_ahead(task.env_id);
        return;
      case TaskKind::kPlan:  // nor does this (queued only by start_plan, for snapshot envs)
        if constexpr (SupportsSnapshots<Env>::value) {
          run_plan(task.env_id, std::chrono::steady_clock::time_point::max());
        }
        return;
      case TaskKind::kReset:
        // After quiesce() or reset_envs()'s settle the env is none or ready; both discarded
        // ready ones with a seed.
        if (!ahead_.take_ready(task.env_id)) env.reset();
        break;
      case TaskKind::kReport:
        show_final = ahead_.ready(task.env_id);
        break;
      case TaskKind::kStep: {
        const ResetAhead::Settle settle =
            reset_ahead_ ? ahead_.settle(task.env_id) : ResetAhead::Settle::kNothing;
        if (settle == ResetAhead::Settle::kHandedOff) return;
        if (settle == ResetAhead::Settle::kResetInline) env.reset();
        if (settle != ResetAhead::Settle::kNothing) break;
        // Restored from a state whose reset had run ahead: this step reports that reset.
        if (env.take_reset_unshown()) break;
        if (pool_.autoreset_mode == AutoresetMode::kNextStep && env.episode_over()) {
          env.reset();
        } else {
          const auto start = std::chrono::steady_clock::now();
          env.step();
          const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(
              std::chrono::steady_clock::now() - start).count();
          step_cost_[static_cast<std::size_t>(task.env_id)].store(
              static_cast<uint32_t>(std::min<int64_t>(took >> 10, UINT32_MAX)),
              std::memory_order_relaxed);
          finished = env.episode_over();
          ended = same_step && finished;
        }
        break;
      }
    }
  } catch (...) {
    store_error();
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
    // The env's outcome now (after the SAME_STEP reset, if any), computed once per row.
    const StepOutcome now = show_final ? StepOutcome{} : env.outcome();
    const StepOutcome& stats = ended ? final_outcome : now;
    out.episode_return[row] = finished ? static_cast<float>(stats.episode_return) : 0.0f;
    out.episode_length[row] = finished ? stats.episode_length : 0;
    if (show_final) {
      std::memcpy(out.obs + row * stacked_bytes_, ahead_.final_obs(task.env_id), stacked_bytes_);
      write_outcome(ref, task.env_id, ahead_.final_outcome(task.env_id));
    } else {
      env.write_observation(out.obs + row * stacked_bytes_);
      write_outcome(ref, task.env_id, now);
    }
    if (finished && reset_ahead_) {
      // Keep the final state for a report, then let an idle worker run the next reset.
      // (reset_ahead_ is NEXT_STEP only, so no reset ran here: `now` is the final outcome.)
      ahead_.keep_final(task.env_id, out.obs + row * stacked_bytes_, now);
    }
    if (ended) {
      out.reward[row] = final_outcome.reward;
      out.terminated[row] = final_outcome.terminated;
      out.truncated[row] = final_outcome.truncated;
      if (out.raw_reward) {
        out.raw_reward[row] = final_outcome.raw_reward;
        out.game_ended[row] = final_outcome.game_ended;
        out.elapsed_step[row] = final_outcome.episode_length;
      }
    }
  } catch (...) {
    store_error();
  }
  ring_->commit(ref);
  if (finished && reset_ahead_) queue_->push_background(task.env_id, TaskKind::kPrepareReset);
}

template <class Env>
inline void BasicVectorEnv<Env>::store_error() {
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (!error_) error_ = std::current_exception();
}

template <class Env>
inline void BasicVectorEnv<Env>::run_reset_ahead(int env_id) {
  if (!ahead_.begin(env_id)) return;  // the env's next task took the reset first
  // A reset that throws here is not reported: the env goes back to none, so the task that
  // needs the reset (its next step, or reset()) runs it again inline, in the ordinary way,
  // and a failure there is reported with that task's batch.
  bool ok = true;
  try {
    envs_[static_cast<std::size_t>(env_id)]->reset();
  } catch (...) {
    ok = false;
  }
  // Handed off: the env's step was popped while the reset ran and left its row to us.
  if (ahead_.finish(env_id, ok)) run_task(Task{env_id, TaskKind::kStep});
}

template <class Env>
inline void BasicVectorEnv<Env>::write_outcome(const RowRef& ref, int env_id,
                                               const StepOutcome& o) const {
  const BatchBuffers& out = *ref.buffers;
  const std::size_t row = static_cast<std::size_t>(ref.row);
  out.reward[row] = o.reward;
  out.terminated[row] = o.terminated;
  out.truncated[row] = o.truncated;
  out.env_id[row] = env_id;
  out.lives[row] = o.lives;
  out.frame_number[row] = o.frame_number;
  out.episode_frame_number[row] = o.episode_frame_number;
  if (out.raw_reward) {
    out.raw_reward[row] = o.raw_reward;
    out.game_ended[row] = o.game_ended;
    out.elapsed_step[row] = o.episode_length;
  }
}


// The pool of Atari environments, built from one EnvConfig per env (games may differ).
using VectorEnv = BasicVectorEnv<AtariEnv>;
std::unique_ptr<VectorEnv> make_vector_env(const std::vector<EnvConfig>& envs, const PoolConfig& pool);

}  // namespace atari_vec
