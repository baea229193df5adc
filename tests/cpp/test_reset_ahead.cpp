// test_reset_ahead.cpp: the reset-ahead state machine (cpp/reset_ahead.hpp) on its own.
// First every transition in order, one thread; then the race it exists for, many rounds:
// a background thread runs the prepared reset while a step thread settles the env's next
// step, with no ordering between them but the machine's atomics. Whoever wins, every round
// must run exactly one reset (in the background or inline) and produce exactly one step
// result, and a step that uses a prepared reset must see the round's own final state.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "check.hpp"
#include "reset_ahead.hpp"

using atari_vec::ResetAhead;
using atari_vec::StepOutcome;
namespace t = atari_vec::testing;
using Settle = ResetAhead::Settle;

namespace {

constexpr std::size_t kObsBytes = 8;

std::vector<uint8_t> obs_of(int64_t round) {
  std::vector<uint8_t> obs(kObsBytes);
  std::memcpy(obs.data(), &round, sizeof(round));
  return obs;
}

int64_t round_of(const uint8_t* obs) {
  int64_t r;
  std::memcpy(&r, obs, sizeof(r));
  return r;
}

StepOutcome outcome_of(int64_t round) {
  StepOutcome o;
  o.reward = static_cast<int32_t>(round);
  o.episode_return = round;
  return o;
}

void transitions_in_order() {
  ResetAhead a;
  a.init(3, kObsBytes, true);
  for (int e = 0; e < 3; ++e) CHECK(a.idle(e) && !a.ready(e));

  // pending -> running -> ready -> consumed by the step
  a.keep_final(1, obs_of(7).data(), outcome_of(7));
  CHECK(!a.idle(1) && !a.ready(1) && a.idle(0) && a.idle(2));
  CHECK(a.begin(1));
  CHECK(!a.begin(1));  // one background task per env
  CHECK(!a.finish(1, true));
  CHECK(a.ready(1) && round_of(a.final_obs(1)) == 7 && a.final_outcome(1).reward == 7);
  CHECK(a.settle(1) == Settle::kReady);
  CHECK(a.idle(1) && a.settle(1) == Settle::kNothing);
  CHECK(a.resets_ahead() == 1 && a.handoffs() == 0);

  // pending, the step comes first: it resets inline and the background task does nothing
  a.keep_final(0, obs_of(8).data(), outcome_of(8));
  CHECK(a.settle(0) == Settle::kResetInline);
  CHECK(!a.begin(0) && a.idle(0));

  // running, the step arrives: handed off; finish() tells the background task to run it,
  // and that step finds the reset ready
  a.keep_final(2, obs_of(9).data(), outcome_of(9));
  CHECK(a.begin(2));
  CHECK(a.settle(2) == Settle::kHandedOff);
  CHECK_THROWS(std::logic_error, a.settle(2));  // a second step of one env is a bug
  CHECK(!a.cancel_pending());                   // quiesce must wait for it
  CHECK(a.finish(2, true));
  CHECK(a.handoffs() == 1 && a.resets_ahead() == 2);
  CHECK(a.settle(2) == Settle::kReady && a.idle(2));

  // a reset that throws goes back to none, so the next task resets inline itself
  a.keep_final(0, obs_of(10).data(), outcome_of(10));
  CHECK(a.begin(0));
  CHECK(!a.finish(0, false));
  CHECK(a.idle(0) && a.settle(0) == Settle::kNothing && a.resets_ahead() == 2);

  // quiesce drops resets not started; a reset task takes a ready one; a seeded reset
  // discards it
  a.keep_final(0, obs_of(11).data(), outcome_of(11));
  a.keep_final(1, obs_of(12).data(), outcome_of(12));
  CHECK(a.begin(1) && !a.finish(1, true));
  CHECK(a.cancel_pending());
  CHECK(a.idle(0) && a.ready(1));
  CHECK(a.take_ready(1) && !a.take_ready(1) && a.idle(1));
  a.keep_final(1, obs_of(13).data(), outcome_of(13));
  CHECK(a.begin(1) && !a.finish(1, true));
  a.discard(1);
  CHECK(a.idle(1) && !a.take_ready(1));
}

// One env, `rounds` episodes ending. The main thread plays the worker that ended the episode
// (keep_final), then releases a background thread (begin, reset, finish, and the handed-off
// step) and a step thread (settle) at once, and waits for both.
void race(int rounds, unsigned seed) {
  ResetAhead a;
  a.init(1, kObsBytes, true);
  std::atomic<int> go{0};
  std::atomic<int> done{0};
  std::atomic<int64_t> resets{0};
  std::atomic<int64_t> steps{0};
  std::atomic<int64_t> inline_resets{0};
  std::atomic<int64_t> failed_resets{0};
  std::vector<char> fail_round(static_cast<std::size_t>(rounds) + 1, 0);
  std::mt19937 rng(seed);
  for (auto& f : fail_round) f = (rng() % 8 == 0);
  // Random spins (the reset's length, the step's arrival) so that each order occurs.
  std::vector<unsigned> reset_spin(fail_round.size()), step_spin(fail_round.size());
  for (auto& v : reset_spin) v = rng() % 4000;
  for (auto& v : step_spin) v = rng() % 4000;
  auto spin = [](unsigned n) {
    for (volatile unsigned i = 0; i < n; i = i + 1) {
    }
  };

  // The step, wherever it runs: what it sees must fit the round.
  auto step = [&](int r, Settle s) {
    switch (s) {
      case Settle::kReady:  // the reset ran: the final state is still this round's
        CHECK_MSG(round_of(a.final_obs(0)) == r && a.final_outcome(0).episode_return == r,
                  "round " + std::to_string(r));
        steps.fetch_add(1);
        break;
      case Settle::kResetInline:
        inline_resets.fetch_add(1);
        resets.fetch_add(1);
        steps.fetch_add(1);
        break;
      case Settle::kNothing:  // only after a failed background reset: reset inline now
        CHECK_MSG(fail_round[static_cast<std::size_t>(r)], "round " + std::to_string(r));
        resets.fetch_add(1);
        steps.fetch_add(1);
        break;
      case Settle::kHandedOff:
        break;  // the background thread runs it
    }
  };

  // Rounds cycle through four orders: three forced by handshakes (so each surely occurs,
  // however the threads are scheduled) and one free race.
  //   0 ahead:   the background reset finishes before the step settles;
  //   1 handoff: the step settles while the reset runs;
  //   2 inline:  the step settles before the reset begins;
  //   3 free:    no handshake (random spins shuffle the order).
  std::atomic<int> began{0}, settled{0}, finished{0};
  auto wait_for = [](std::atomic<int>& flag, int r) {
    while (flag.load(std::memory_order_acquire) < r) std::this_thread::yield();
  };
  std::thread background([&] {
    for (int r = 1; r <= rounds; ++r) {
      wait_for(go, r);
      const int order = r % 4;
      if (order == 2) wait_for(settled, r);
      if (a.begin(0)) {
        began.store(r, std::memory_order_release);
        if (order == 1) wait_for(settled, r);
        spin(reset_spin[static_cast<std::size_t>(r)]);
        const bool ok = !fail_round[static_cast<std::size_t>(r)];
        if (ok) resets.fetch_add(1); else failed_resets.fetch_add(1);
        if (a.finish(0, ok)) step(r, a.settle(0));
      } else {
        began.store(r, std::memory_order_release);
      }
      finished.store(r, std::memory_order_release);
      done.fetch_add(1, std::memory_order_acq_rel);
    }
  });
  std::thread stepper([&] {
    for (int r = 1; r <= rounds; ++r) {
      wait_for(go, r);
      const int order = r % 4;
      if (order == 0) wait_for(finished, r);
      if (order == 1) wait_for(began, r);
      if (order == 3) spin(step_spin[static_cast<std::size_t>(r)]);
      const Settle s = a.settle(0);
      if (order == 0) CHECK(s == Settle::kReady || (s == Settle::kNothing && fail_round[static_cast<std::size_t>(r)]));
      if (order == 1) CHECK(s == Settle::kHandedOff);
      if (order == 2) CHECK(s == Settle::kResetInline);
      settled.store(r, std::memory_order_release);
      step(r, s);
      done.fetch_add(1, std::memory_order_acq_rel);
    }
  });
  for (int r = 1; r <= rounds; ++r) {
    a.keep_final(0, obs_of(r).data(), outcome_of(r));
    go.store(r, std::memory_order_release);
    while (done.load(std::memory_order_acquire) < 2 * r) std::this_thread::yield();
    CHECK_MSG(a.idle(0), "round " + std::to_string(r) + " left the env not idle");
    CHECK_MSG(steps.load() == r && resets.load() == r,
              "round " + std::to_string(r) + ": " + std::to_string(steps.load()) + " steps, " +
                  std::to_string(resets.load()) + " resets");
  }
  background.join();
  stepper.join();
  // Every order happened (so the checks above covered each of them).
  CHECK(a.resets_ahead() > a.handoffs() && a.handoffs() > 0 && inline_resets.load() > 0 &&
        failed_resets.load() > 0);
  std::printf("race(%d): %lld ahead (%lld handed off), %lld inline, %lld failed\n", rounds,
              static_cast<long long>(a.resets_ahead()), static_cast<long long>(a.handoffs()),
              static_cast<long long>(inline_resets.load()),
              static_cast<long long>(failed_resets.load()));
}

}  // namespace

int main() {
  t::start_watchdog(300);
  const long scale = t::env_long("ATARI_VEC_TEST_SCALE", 1);
  t::stage() = "transitions in order";
  transitions_in_order();
  t::stage() = "race between the background reset and the step";
  race(static_cast<int>(20000 * scale), 1);
  std::printf("test_reset_ahead: OK\n");
  return 0;
}
