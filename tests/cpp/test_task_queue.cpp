// test_task_queue.cpp: TaskQueue under real concurrency. Every task pushed is popped exactly
// once, each consumer sees every producer's tasks in the order pushed, a single consumer
// sees the exact push order, overflow is refused without damage, and close() wakes
// consumers that are blocked in pop() or spinning in it.
//
// Threads are ordered by promises and by the kernel's own word that a thread sleeps, never
// by sleeping and hoping; time is only bounded generously (seconds), where a missed wake-up
// would otherwise wait out a much longer timeout.
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "task_queue.hpp"

using atari_vec::Task;
using atari_vec::TaskKind;
using atari_vec::TaskQueue;
namespace t = atari_vec::testing;

namespace {

using atari_vec::testing::asleep;
using atari_vec::testing::this_thread_tid;

// Returns once thread `tid` is asleep. A thread that announced (through a promise) that it
// is about to call pop() on a queue whose mutex no one else can hold sleeps only in pop()'s
// wait for a task; the watchdog ends the test if that never happens.
void wait_until_asleep(pid_t tid) {
  while (!asleep(tid)) std::this_thread::yield();
}

// A task's env_id carries (producer, sequence number) so a consumer can tell who pushed it
// and in which order; the kind varies too so the whole Task is known to be copied.
constexpr int kSeqBits = 22;
int32_t encode(int producer, int seq) { return (producer << kSeqBits) | seq; }
int producer_of(int32_t id) { return id >> kSeqBits; }
int seq_of(int32_t id) { return id & ((1 << kSeqBits) - 1); }
TaskKind kind_for(int seq) { return static_cast<TaskKind>(seq % 3); }

// Producers push bursts of random size; consumers pop until the queue is closed. The
// bounded queue throws on overflow, so producers first reserve room (as the pool does by
// never having more than num_envs tasks out): reserved counts tasks pushed or about to be,
// and a consumer releases a slot only after its pop returned.
void concurrent_run(int producers, int consumers, int per_producer, std::size_t capacity,
                    unsigned seed) {
  TaskQueue queue(capacity);
  std::atomic<long> reserved{0};
  std::vector<std::atomic<int>> delivered(static_cast<std::size_t>(producers) * per_producer);
  for (auto& d : delivered) d.store(0);
  std::atomic<long> popped{0};
  const long total = static_cast<long>(producers) * per_producer;
  std::promise<void> all_popped;  // set by the consumer that pops the last task

  std::vector<std::thread> consumer_threads;
  for (int c = 0; c < consumers; ++c) {
    consumer_threads.emplace_back([&, c] {
      std::vector<int> last_seq(static_cast<std::size_t>(producers), -1);
      std::minstd_rand rng(seed + 1000u + static_cast<unsigned>(c));
      // Consumers vary how they take tasks: blocking pop, pop that spins first, and
      // try_pop (as the caller thread helping in wait_batch) falling back to pop.
      const auto spin = std::chrono::microseconds(c % 3 == 0 ? 0 : 50);
      auto take = [&](Task& out) {
        if (c % 3 == 2 && queue.try_pop(out)) return true;
        return queue.pop(out, spin);
      };
      Task task;
      while (take(task)) {
        const int p = producer_of(task.env_id);
        const int s = seq_of(task.env_id);
        CHECK_MSG(p >= 0 && p < producers && s < per_producer,
                  "bad task id " + std::to_string(task.env_id));
        CHECK_MSG(task.kind == kind_for(s), "task kind not copied with its id");
        // The queue is FIFO, so whatever this consumer takes from one producer must come
        // in that producer's order, even with other consumers taking tasks in between.
        CHECK_MSG(s > last_seq[static_cast<std::size_t>(p)],
                  "consumer " + std::to_string(c) + " got seq " + std::to_string(s) +
                      " of producer " + std::to_string(p) + " after seq " +
                      std::to_string(last_seq[static_cast<std::size_t>(p)]));
        last_seq[static_cast<std::size_t>(p)] = s;
        delivered[static_cast<std::size_t>(p) * per_producer + s].fetch_add(1);
        reserved.fetch_sub(1);
        if (popped.fetch_add(1) + 1 == total) all_popped.set_value();
        if (rng() % 64 == 0) std::this_thread::yield();  // vary the interleaving
      }
    });
  }

  std::vector<std::thread> producer_threads;
  for (int p = 0; p < producers; ++p) {
    producer_threads.emplace_back([&, p] {
      std::minstd_rand rng(seed + static_cast<unsigned>(p));
      std::vector<Task> burst;
      int next = 0;
      while (next < per_producer) {
        const int n = std::min<int>(per_producer - next,
                                    1 + static_cast<int>(rng() % std::max<std::size_t>(1, capacity / 2)));
        // Reserve n slots, waiting for consumers when the queue could overflow.
        long have = reserved.load();
        while (true) {
          if (have + n > static_cast<long>(capacity)) {
            std::this_thread::yield();
            have = reserved.load();
            continue;
          }
          if (reserved.compare_exchange_weak(have, have + n)) break;
        }
        burst.clear();
        for (int i = 0; i < n; ++i) burst.push_back(Task{encode(p, next + i), kind_for(next + i)});
        queue.push_bulk(burst.data(), burst.size());
        next += n;
      }
    });
  }
  for (auto& th : producer_threads) th.join();
  CHECK_MSG(all_popped.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready,
            "only " + std::to_string(popped.load()) + " of " + std::to_string(total) +
                " tasks were popped in 60 s: a consumer was not woken");
  queue.close();
  for (auto& th : consumer_threads) th.join();
  for (std::size_t i = 0; i < delivered.size(); ++i) {
    CHECK_MSG(delivered[i].load() == 1, "task " + std::to_string(i) + " delivered " +
                                            std::to_string(delivered[i].load()) + " times");
  }
}

// One producer, one consumer: the exact order in is the order out.
void single_consumer_order(int count, std::size_t capacity) {
  TaskQueue queue(capacity);
  std::atomic<long> reserved{0};
  std::vector<int32_t> got;
  got.reserve(static_cast<std::size_t>(count));
  std::thread consumer([&] {
    Task task;
    while (queue.pop(task)) {
      got.push_back(task.env_id);
      reserved.fetch_sub(1);
      if (static_cast<int>(got.size()) == count) return;
    }
  });
  std::minstd_rand rng(7);
  std::vector<Task> burst;
  for (int next = 0; next < count;) {
    const int n = std::min<int>(count - next, 1 + static_cast<int>(rng() % capacity));
    while (reserved.load() + n > static_cast<long>(capacity)) std::this_thread::yield();
    reserved.fetch_add(n);
    burst.clear();
    for (int i = 0; i < n; ++i) burst.push_back(Task{next + i, TaskKind::kStep});
    queue.push_bulk(burst.data(), burst.size());
    next += n;
  }
  consumer.join();
  for (int i = 0; i < count; ++i) {
    CHECK_MSG(got[static_cast<std::size_t>(i)] == i,
              "position " + std::to_string(i) + " holds " + std::to_string(got[static_cast<std::size_t>(i)]));
  }
}

void overflow_is_refused() {
  TaskQueue queue(4);
  Task tasks[5] = {{0, TaskKind::kStep}, {1, TaskKind::kReset}, {2, TaskKind::kReport},
                   {3, TaskKind::kStep}, {4, TaskKind::kStep}};
  CHECK_THROWS(std::logic_error, queue.push_bulk(tasks, 5));
  queue.push_bulk(tasks, 3);
  CHECK_THROWS(std::logic_error, queue.push_bulk(tasks + 3, 2));
  // The refused pushes left nothing behind: exactly the three accepted tasks come out, and
  // the ring wraps around correctly afterwards.
  Task out;
  for (int i = 0; i < 3; ++i) {
    CHECK(queue.pop(out));
    CHECK(out.env_id == i);
    CHECK(out.kind == tasks[i].kind);
  }
  queue.push_bulk(tasks, 4);
  for (int i = 0; i < 4; ++i) {
    CHECK(queue.pop(out));
    CHECK(out.env_id == i);
  }
}

// Consumers blocked in pop() on an empty queue all return false promptly after close(),
// and pop() after close() returns false at once even with tasks left (shutdown drops them).
// Each consumer is started only once the previous one sleeps in pop(), so the queue's mutex
// is free when it arrives and it too can only fall asleep waiting for a task: close() then
// finds every consumer blocked, and only its wake-up can release them.
void close_wakes_blocked_consumers(int consumers) {
  TaskQueue queue(8);
  // Promises outlive the threads that set them (set_value may still be returning).
  std::vector<std::promise<pid_t>> started(static_cast<std::size_t>(consumers));
  std::vector<std::promise<bool>> returned(static_cast<std::size_t>(consumers));
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    const auto i = static_cast<std::size_t>(c);
    threads.emplace_back([&, i] {
      started[i].set_value(this_thread_tid());
      Task task;
      returned[i].set_value(queue.pop(task));
    });
    wait_until_asleep(started[i].get_future().get());
  }
  std::vector<std::future<bool>> results;
  for (auto& r : returned) results.push_back(r.get_future());
  for (auto& r : results) {
    CHECK(r.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);  // nothing to pop
  }
  queue.close();
  for (std::size_t c = 0; c < results.size(); ++c) {
    // Generous: a consumer close() failed to wake would sleep until the watchdog.
    CHECK_MSG(results[c].wait_for(std::chrono::seconds(10)) == std::future_status::ready,
              "consumer " + std::to_string(c) + " still blocked 10 s after close()");
    CHECK_MSG(!results[c].get(), "pop() returned a task from an empty, closed queue");
  }
  for (auto& th : threads) th.join();

  TaskQueue with_tasks(4);
  Task tasks[2] = {{0, TaskKind::kStep}, {1, TaskKind::kStep}};
  with_tasks.push_bulk(tasks, 2);
  with_tasks.close();
  Task out;
  CHECK(!with_tasks.pop(out));
}

// try_pop takes caller tasks only, in order, never blocks, and finds nothing once closed;
// pop takes background tasks before caller tasks, and at most one per env is queued;
// a consumer spinning in pop() takes a task pushed while it spins, and returns false when
// the queue is closed while it spins, both long before its spin (30 s) would end.
void try_pop_and_background() {
  TaskQueue queue(4);
  Task out;
  CHECK(!queue.try_pop(out));
  queue.push_background(2, TaskKind::kPrepareReset);
  queue.push_background(2, TaskKind::kPrepareReset);  // dropped: one is queued for env 2
  CHECK(!queue.try_pop(out));                         // background tasks are not the caller's
  Task tasks[2] = {{0, TaskKind::kStep}, {1, TaskKind::kReset}};
  queue.push_bulk(tasks, 2);
  CHECK(queue.try_pop(out) && out.env_id == 0 && out.kind == TaskKind::kStep);
  CHECK(queue.pop(out) && out.env_id == 2 && out.kind == TaskKind::kPrepareReset);
  CHECK(queue.pop(out) && out.env_id == 1 && out.kind == TaskKind::kReset);
  CHECK(!queue.try_pop(out));

  const auto long_spin = std::chrono::microseconds(30000000);
  std::promise<void> spinning;
  std::promise<int32_t> got;
  std::thread spinner([&] {
    spinning.set_value();
    Task t;
    got.set_value(queue.pop(t, long_spin) ? t.env_id : -1);
  });
  spinning.get_future().wait();  // the spinner is in pop(), or about to be
  Task three{3, TaskKind::kStep};
  queue.push_bulk(&three, 1);
  std::future<int32_t> popped = got.get_future();
  CHECK_MSG(popped.wait_for(std::chrono::seconds(5)) == std::future_status::ready,
            "a task pushed while a consumer spins was not taken within 5 s");
  CHECK(popped.get() == 3);
  spinner.join();

  std::promise<void> spinning_on_empty;
  std::promise<bool> on_close;
  std::thread closing_spinner([&] {
    spinning_on_empty.set_value();
    Task t;
    on_close.set_value(queue.pop(t, long_spin));
  });
  spinning_on_empty.get_future().wait();
  queue.close();
  std::future<bool> closed_result = on_close.get_future();
  CHECK_MSG(closed_result.wait_for(std::chrono::seconds(5)) == std::future_status::ready,
            "close() did not end a consumer's spin within 5 s");
  CHECK(!closed_result.get());
  closing_spinner.join();

  queue.push_bulk(&three, 1);  // once closed, a queued task is never handed out
  CHECK(!queue.try_pop(out));
  CHECK(!queue.pop(out, std::chrono::microseconds(100)));
}

}  // namespace

int main() {
  t::start_watchdog(300);
  const long scale = t::env_long("ATARI_VEC_TEST_SCALE", 1);
  t::stage() = "overflow";
  overflow_is_refused();
  t::stage() = "close wakes consumers";
  for (int c : {1, 2, 5}) close_wakes_blocked_consumers(c);
  t::stage() = "try_pop and background tasks";
  try_pop_and_background();
  t::stage() = "single consumer order";
  single_consumer_order(static_cast<int>(20000 * scale), 5);
  t::stage() = "concurrent producers and consumers";
  struct Case {
    int producers, consumers;
    std::size_t capacity;
  };
  for (const Case& c : {Case{1, 1, 1}, Case{1, 3, 4}, Case{2, 2, 16}, Case{3, 4, 7},
                        Case{1, 8, 64}, Case{2, 3, 3}}) {
    concurrent_run(c.producers, c.consumers, static_cast<int>(10000 * scale), c.capacity,
                   static_cast<unsigned>(c.producers * 31 + c.consumers));
  }
  std::printf("test_task_queue: OK\n");
  return 0;
}
