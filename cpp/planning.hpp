// planning.hpp: stepping N saved states on the pool's workers (batched planning).
//
// A planner holds N walkers, each a snapshot row (snapshot.hpp), and asks: from each state,
// take this action for this many steps; give me the new states, observations, rewards, flags.
// N may be far larger than the pool. The pool queues one plan task per env; every task first
// saves its own env's state, then takes walkers one at a time from a shared counter
// (restore, step, write the outputs, save), and finally puts its env back as it was, so the
// pool's own episodes are untouched. Walkers are independent, so any env of the game may
// run any of them: the restore makes the result the same as on the env the state came from.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>

namespace atari_vec {

// One batched planning call. The caller fills the inputs and the output pointers (each
// output may be null: not wanted), keeps every array alive until the job is done, and reads
// the outputs only after that. Workers touch only walker k's slice of each array for the k
// they took, so no two threads write the same bytes.
struct PlanJob {
  // Inputs: walker k restores states[k * width, (k + 1) * width), then steps with action
  // index actions[k] (already range-checked) and paddle strength strengths[k] (null: 1.0),
  // up to steps[k] steps (>= 1), stopping early at the end of an episode (no autoreset).
  const uint8_t* states = nullptr;
  std::size_t width = 0;
  int64_t count = 0;
  const int32_t* actions = nullptr;
  const float* strengths = nullptr;
  const int32_t* steps = nullptr;
  bool include_rng = false;  // of the states written to states_out

  // Outputs, one entry (or row) per walker.
  uint8_t* states_out = nullptr;  // count rows of `width` bytes
  uint8_t* obs = nullptr;         // count observations of obs_bytes
  std::size_t obs_bytes = 0;
  int32_t* reward = nullptr;      // summed over the steps taken (clipped if the env clips)
  uint8_t* terminated = nullptr;
  uint8_t* truncated = nullptr;
  int32_t* lives = nullptr;
  int32_t* frame_number = nullptr;
  int32_t* episode_frame_number = nullptr;
  int32_t* steps_taken = nullptr;  // steps run: fewer than steps[k] if the episode ended

  // Progress: the next walker to take, the tasks still running, the first error.
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};  // an error or an interrupt: take no more walkers
  std::mutex mutex;
  std::condition_variable finished;
  int tasks_left = 0;             // guarded by mutex
  std::exception_ptr error;       // guarded by mutex
  int64_t error_walker = -1;      // guarded by mutex

  // Any worker: records the first error (walker -1: not a walker's) and stops the job.
  void fail(int64_t walker) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!error) {
      error = std::current_exception();
      error_walker = walker;
    }
    stop.store(true, std::memory_order_relaxed);
  }
  // Any worker, once per task at its end; the last one wakes the caller. close() may have
  // set tasks_left to 0 already (the queued tasks will never run) while the caller thread
  // was running one of them: that task still ends here, below zero.
  void task_done() {
    std::lock_guard<std::mutex> lock(mutex);
    if (--tasks_left <= 0) finished.notify_all();
  }
  // Caller thread: true once every task has ended (waits up to `timeout`).
  template <class Duration>
  bool wait(Duration timeout) {
    std::unique_lock<std::mutex> lock(mutex);
    return finished.wait_for(lock, timeout, [this] { return tasks_left <= 0; });
  }
  // Caller thread, after wait() returned true: rethrows the first error, saying which walker.
  void rethrow() {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::invalid_argument& e) {
      if (error_walker < 0) throw;
      throw std::invalid_argument("walker " + std::to_string(error_walker) + ": " + e.what());
    }
  }
};

// Runs walkers of `job` on `env` until none is left (true) or, after a walker, `until` has
// passed (false): what one plan task does between saving and restoring its env's own state.
// Env is AtariEnv (load, save, set_action, step, ...).
template <class Env, class TimePoint>
bool run_walkers(Env& env, PlanJob& job, TimePoint until) {
  int64_t k;
  for (;;) {
    if (job.stop.load(std::memory_order_relaxed)) return true;
    if (TimePoint::clock::now() >= until) return false;
    k = job.next.fetch_add(1, std::memory_order_relaxed);
    if (k >= job.count) return true;
    try {
      const std::size_t row = static_cast<std::size_t>(k);
      env.load(job.states + row * job.width, job.width);
      env.set_action(job.actions[k], job.strengths ? job.strengths[k] : 1.0f);
      int32_t reward = 0;
      int32_t taken = 0;
      // A state whose reset ran ahead: its first step only reports that reset, as in the pool.
      if (env.take_reset_unshown()) ++taken;
      while (taken < job.steps[k] && !env.episode_over()) {
        env.step();
        reward += env.last_reward();
        ++taken;
      }
      const auto o = env.outcome();
      if (job.obs) env.write_observation(job.obs + row * job.obs_bytes);
      if (job.reward) job.reward[k] = reward;
      if (job.terminated) job.terminated[k] = o.terminated;
      if (job.truncated) job.truncated[k] = o.truncated;
      if (job.lives) job.lives[k] = o.lives;
      if (job.frame_number) job.frame_number[k] = o.frame_number;
      if (job.episode_frame_number) job.episode_frame_number[k] = o.episode_frame_number;
      if (job.steps_taken) job.steps_taken[k] = taken;
      if (job.states_out) env.save(job.states_out + row * job.width, job.width, job.include_rng, false);
    } catch (...) {
      job.fail(k);
    }
  }
}

}  // namespace atari_vec
