// test_task_queue.cpp: TaskQueue under real concurrency. Every task pushed is popped exactly
// once, each consumer sees every producer's tasks in the order pushed, a single consumer
// sees the exact push order, overflow is refused without damage, and close() wakes
// consumers that are blocked in pop().
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
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
        popped.fetch_add(1);
        reserved.fetch_sub(1);
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
  const long total = static_cast<long>(producers) * per_producer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (popped.load() < total) {
    CHECK_MSG(std::chrono::steady_clock::now() < deadline,
              "only " + std::to_string(popped.load()) + " of " + std::to_string(total) +
                  " tasks were popped: a consumer was not woken");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
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
void close_wakes_blocked_consumers(int consumers) {
  TaskQueue queue(8);
  std::atomic<int> entered{0};
  std::atomic<int> returned_false{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&] {
      Task task;
      entered.fetch_add(1);
      if (!queue.pop(task)) returned_false.fetch_add(1);
    });
  }
  while (entered.load() < consumers) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let them block in wait()
  CHECK(returned_false.load() == 0);                           // nothing to pop yet
  const auto closed_at = std::chrono::steady_clock::now();
  queue.close();
  const auto deadline = closed_at + std::chrono::seconds(10);
  while (returned_false.load() < consumers) {
    CHECK_MSG(std::chrono::steady_clock::now() < deadline,
              std::to_string(consumers - returned_false.load()) +
                  " consumers still blocked 10 s after close()");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
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
// a consumer spinning in pop() takes a task pushed while it spins.
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

  std::atomic<bool> got{false};
  std::thread spinner([&] {
    Task t;
    if (queue.pop(t, std::chrono::microseconds(1000000))) got.store(t.env_id == 3);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  Task three{3, TaskKind::kStep};
  queue.push_bulk(&three, 1);
  spinner.join();
  CHECK(got.load());

  queue.push_bulk(&three, 1);
  queue.close();
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
