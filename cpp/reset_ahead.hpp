// reset_ahead.hpp: the per-env state machine of resets run ahead of their step (NEXT_STEP
// with PoolConfig::reset_ahead), kept apart from the pool so it can be tested on its own
// (tests/cpp/test_reset_ahead.cpp).
//
// Why: in NEXT_STEP mode the step after an episode ends is a reset, whatever its action, so
// the worker that ends an episode queues a background task that runs that reset before the
// env's next step is even sent. A reset costs as much as some twenty steps (ALE's reset_game
// emulates ~70 frames, then the no-ops); run inline in the next batch, it would leave the
// other threads waiting at the batch's end. Workers take it before any step, so it overlaps
// the rest of this batch and the next, which the caller thread and other workers carry on with.
//
// Per env the state goes
//   none -> pending               keep_final(): the ending step, before its row is committed
//   pending -> running -> ready   begin(), finish(ok): the background task (-> none if it threw)
//   pending -> none               settle(): the env's next step came first and resets inline
//   running -> handoff            settle(): the next step arrived mid-reset; finish() then
//                                 tells the background task to run that step itself
//   ready -> none                 settle() or take_ready(): the next step or reset consumes it
//   pending -> none               cancel_pending(): quiesce() drops resets not started
// Until consumed, the env shows its final state: the ending step's observation and outcome
// are kept here, and a partial reset's report of the env uses them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "atari_env.hpp"  // StepOutcome

namespace atari_vec {

// Thread-safety: each method names its callers. States are atomics; an env's final
// observation and outcome are written by the worker that ended its episode before the state
// becomes pending (release) and read only after a load that sees a later state (acquire).
class ResetAhead {
 public:
  // What an env's next step must do about a prepared reset.
  enum class Settle {
    kNothing,      // none was prepared: step as usual
    kResetInline,  // it was pending, not started: reset the env now, as the step's result
    kReady,        // it ran: the env is reset, and the step's result is that reset
    kHandedOff,    // it is running: the background task runs this step when it is done
  };

  // Caller thread, before any worker starts. Every env starts at none. Without `keep_finals`
  // (reset ahead off) no final states are stored and keep_final() must not be called.
  void init(std::size_t num_envs, std::size_t obs_bytes, bool keep_finals) {
    num_envs_ = num_envs;
    obs_bytes_ = obs_bytes;
    state_.reset(new std::atomic<uint8_t>[num_envs]);
    for (std::size_t e = 0; e < num_envs; ++e) state_[e].store(kNone, std::memory_order_relaxed);
    if (keep_finals) {
      final_obs_.assign(num_envs * obs_bytes, 0);
      final_outcome_.assign(num_envs, StepOutcome{});
    }
  }

  // The worker whose step ended env's episode, before it commits the row: none -> pending.
  void keep_final(int env, const uint8_t* obs, const StepOutcome& outcome) {
    std::memcpy(final_obs_.data() + index(env) * obs_bytes_, obs, obs_bytes_);
    final_outcome_[index(env)] = outcome;
    state_[env].store(kPending, std::memory_order_release);
  }

  // The background task, before its reset: pending -> running. False if the env's next task
  // (or quiesce) took the reset first; then there is nothing to do.
  bool begin(int env) {
    uint8_t s = kPending;
    return state_[env].compare_exchange_strong(s, kRunning, std::memory_order_acq_rel);
  }

  // The background task, after its reset ran (ok) or threw: running -> ready, or none so that
  // the env's next task resets inline and reports a failure with its batch. True if the
  // env's step arrived meanwhile (handoff): the caller must run that step now.
  bool finish(int env, bool ok) {
    if (ok) resets_ahead_.fetch_add(1, std::memory_order_relaxed);
    const uint8_t done = ok ? kReady : kNone;
    uint8_t s = kRunning;
    if (state_[env].compare_exchange_strong(s, done, std::memory_order_acq_rel)) return false;
    // handoff: set only by the env's step in settle(), which now waits for us.
    handoffs_.fetch_add(1, std::memory_order_relaxed);
    state_[env].store(done, std::memory_order_release);
    return true;
  }

  // The env's next step, on a worker (after the caller sent it).
  Settle settle(int env) {
    uint8_t s = state_[env].load(std::memory_order_acquire);
    for (;;) {
      switch (s) {
        case kNone:
          return Settle::kNothing;
        case kPending:
          if (state_[env].compare_exchange_weak(s, kNone, std::memory_order_acq_rel)) {
            return Settle::kResetInline;
          }
          break;
        case kRunning:
          if (state_[env].compare_exchange_weak(s, kHandoff, std::memory_order_acq_rel)) {
            return Settle::kHandedOff;
          }
          break;
        case kReady:
          state_[env].store(kNone, std::memory_order_relaxed);
          return Settle::kReady;
        default:  // handoff is set only by this env's step, which is this one
          throw std::logic_error("reset ahead: a second step of one env");
      }
    }
  }

  // A reset task, after quiesce() (so the env is none or ready): ready -> none. True if the
  // env had run its reset already.
  bool take_ready(int env) {
    return state_[env].exchange(kNone, std::memory_order_acq_rel) == kReady;
  }

  // Caller thread after quiesce(), or a report task: the env ran the reset its next step
  // needs and still shows its final state.
  bool ready(int env) const { return state_[env].load(std::memory_order_acquire) == kReady; }

  // Caller thread (send, render): no reset is pending, running or ready for env. Only env's
  // own next task moves a state back to none, and the caller has not sent it yet, so the
  // answer cannot go stale before the caller acts on it.
  bool idle(int env) const { return state_[env].load(std::memory_order_acquire) == kNone; }

  // Caller thread, for an env that is idle (its last result received, nothing sent to it
  // since): a pending reset is dropped (the env keeps its final state and resets inline when
  // next stepped) and a running one is waited for. True if the env's reset ran ahead: the
  // env is reset and its next step reports that reset. (A handoff needs a sent step, which
  // an idle env does not have.)
  bool settle_idle(int env) {
    for (;;) {
      uint8_t s = kPending;
      if (state_[env].compare_exchange_strong(s, kNone, std::memory_order_acq_rel)) return false;
      if (s == kNone) return false;
      if (s == kReady) return true;
      std::this_thread::yield();  // running: a reset takes about a millisecond
    }
  }

  // Caller thread, for a seeded reset after quiesce(): the prepared reset is of no use.
  void discard(int env) { state_[env].store(kNone, std::memory_order_relaxed); }

  // Caller thread (quiesce): drops resets not started; true if none is running or handed off.
  bool cancel_pending() {
    bool settled = true;
    for (std::size_t e = 0; e < num_envs_; ++e) {
      uint8_t s = kPending;
      if (state_[e].compare_exchange_strong(s, kNone, std::memory_order_acq_rel)) continue;
      if (s == kRunning || s == kHandoff) settled = false;
    }
    return settled;
  }

  // The final state of an env whose reset is ready (valid while ready(env)).
  const uint8_t* final_obs(int env) const { return final_obs_.data() + index(env) * obs_bytes_; }
  const StepOutcome& final_outcome(int env) const { return final_outcome_[index(env)]; }

  // Resets run ahead so far, and of those the ones whose step arrived while they ran.
  int64_t resets_ahead() const { return resets_ahead_.load(std::memory_order_relaxed); }
  int64_t handoffs() const { return handoffs_.load(std::memory_order_relaxed); }

 private:
  enum State : uint8_t { kNone, kPending, kRunning, kHandoff, kReady };
  static std::size_t index(int env) { return static_cast<std::size_t>(env); }

  std::size_t num_envs_ = 0;
  std::size_t obs_bytes_ = 0;
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::vector<uint8_t> final_obs_;
  std::vector<StepOutcome> final_outcome_;
  std::atomic<int64_t> resets_ahead_{0};
  std::atomic<int64_t> handoffs_{0};
};

}  // namespace atari_vec
