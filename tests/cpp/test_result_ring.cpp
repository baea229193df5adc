// test_result_ring.cpp: ResultRing with many threads claiming and committing in shuffled
// order. Every block completes with exactly batch_size rows, each row written once (the rows
// of a block are a permutation of 0..B-1, or exactly the env ids in sync mode), blocks are
// re-prepared while other blocks fill, and wait_complete() both times out and wakes up.
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
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "result_ring.hpp"

using atari_vec::BatchBuffers;
using atari_vec::ResultRing;
using atari_vec::RowRef;
namespace t = atari_vec::testing;

namespace {

constexpr int32_t kPoison = -7;

using atari_vec::testing::asleep;
using atari_vec::testing::this_thread_tid;

// The arrays behind one block's BatchBuffers; the ring itself only needs env_id and obs here.
struct BlockStorage {
  explicit BlockStorage(int rows) : env_id(static_cast<std::size_t>(rows)), obs(static_cast<std::size_t>(rows)) {}
  std::vector<int32_t> env_id;
  std::vector<int64_t> obs;  // one 8-byte "observation" per row: the result's serial number
  BatchBuffers buffers() {
    BatchBuffers b;
    b.env_id = env_id.data();
    b.obs = reinterpret_cast<uint8_t*>(obs.data());
    return b;
  }
  void poison() {
    std::fill(env_id.begin(), env_id.end(), kPoison);
    std::fill(obs.begin(), obs.end(), int64_t{-1});
  }
};

// Spins a little: a random pause between claim and commit is what shuffles completion order.
void jitter(std::minstd_rand& rng) {
  const unsigned r = rng() % 16;
  if (r == 0) {
    std::this_thread::yield();
  } else if (r == 1) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 50));
  } else {
    for (volatile unsigned i = 0; i < r * 20; ++i) {
    }
  }
}

// Async numbering (rows by completion order). `threads` workers produce `total` results,
// never more than the caller allows: a result may only be claimed once the block it lands
// in has been prepared again since its last use, as the pool's send/recv protocol ensures.
// The caller takes blocks in order, checks them, re-prepares them with fresh storage and
// lets the workers go further.
//
// A worker's ticket only tells it that *some* block was prepared; the block its claim lands
// in may have been prepared later, by a prepare() this worker has no happens-before with.
// claim() itself must carry that prepare() to it (its fetch_add chain does, since it is
// acq_rel); with a relaxed claim, ThreadSanitizer reports prepare() racing the row writes
// here. The pool relies on the same guarantee.
void async_rows(int batch, int blocks, int threads, long total_batches, unsigned seed) {
  ResultRing ring(batch, blocks, /*rows_by_env=*/false);
  CHECK(ring.num_blocks() == blocks && ring.batch_size() == batch);
  // Two storages per block, alternated on each prepare, so a row written through a stale
  // BatchBuffers would land in storage the caller no longer reads and show up as missing.
  std::vector<std::unique_ptr<BlockStorage>> storage;
  for (int i = 0; i < 2 * blocks; ++i) storage.push_back(std::make_unique<BlockStorage>(batch));
  std::vector<int> use(static_cast<std::size_t>(blocks), 0);
  auto prepare = [&](int b) {
    BlockStorage& s = *storage[static_cast<std::size_t>(2 * b + use[static_cast<std::size_t>(b)])];
    use[static_cast<std::size_t>(b)] ^= 1;
    s.poison();
    ring.prepare(b, s.buffers());
  };
  for (int b = 0; b < blocks; ++b) prepare(b);

  const long total = total_batches * batch;
  std::atomic<long> allowed{static_cast<long>(blocks) * batch};
  std::atomic<long> taken{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      std::minstd_rand rng(seed * 131u + static_cast<unsigned>(w));
      while (!stop.load(std::memory_order_relaxed)) {
        long ticket = taken.load();
        if (ticket >= total) return;
        if (ticket >= allowed.load()) {
          std::this_thread::yield();
          continue;
        }
        if (!taken.compare_exchange_weak(ticket, ticket + 1)) continue;
        jitter(rng);
        const RowRef ref = ring.claim(/*env_id=*/w);
        CHECK(ref.row >= 0 && ref.row < batch);
        CHECK(ref.block >= 0 && ref.block < blocks);
        CHECK(ref.buffers == &ring.buffers(ref.block));
        jitter(rng);
        ref.buffers->env_id[ref.row] = w;
        reinterpret_cast<int64_t*>(ref.buffers->obs)[ref.row] = ticket;
        jitter(rng);
        ring.commit(ref);
      }
    });
  }

  std::vector<char> row_seen(static_cast<std::size_t>(batch));
  std::vector<char> result_seen(static_cast<std::size_t>(total), 0);
  for (long n = 0; n < total_batches; ++n) {
    const int block = static_cast<int>(n % blocks);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!ring.wait_complete(block, std::chrono::milliseconds(100))) {
      CHECK_MSG(std::chrono::steady_clock::now() < deadline,
                "batch " + std::to_string(n) + " never completed");
    }
    CHECK(ring.is_complete(block));
    const BatchBuffers& out = ring.buffers(block);
    std::fill(row_seen.begin(), row_seen.end(), 0);
    for (int r = 0; r < batch; ++r) {
      CHECK_MSG(out.env_id[r] != kPoison,
                "batch " + std::to_string(n) + " row " + std::to_string(r) + " never written");
      CHECK(out.env_id[r] >= 0 && out.env_id[r] < threads);
      const int64_t serial = reinterpret_cast<const int64_t*>(out.obs)[r];
      CHECK(serial >= 0 && serial < total);
      CHECK_MSG(!result_seen[static_cast<std::size_t>(serial)],
                "result " + std::to_string(serial) + " appears twice");
      result_seen[static_cast<std::size_t>(serial)] = 1;
      row_seen[static_cast<std::size_t>(r)] = 1;
    }
    // Every row of the block exactly once: B distinct results filled B distinct rows.
    CHECK(std::count(row_seen.begin(), row_seen.end(), 1) == batch);
    prepare(block);
    allowed.fetch_add(batch);
  }
  stop = true;
  for (auto& th : workers) th.join();
  CHECK(ring.committed() == total);
  CHECK(std::count(result_seen.begin(), result_seen.end(), 1) == total);
}

// Sync numbering: a batch is every env once and each result's row is its env id. Rounds
// are sequential (the pool sends the next batch only after receiving this one); within a
// round the envs are handed to threads in a random order.
void sync_rows(int batch, int blocks, int threads, long rounds, unsigned seed) {
  ResultRing ring(batch, blocks, /*rows_by_env=*/true);
  std::vector<std::unique_ptr<BlockStorage>> storage;
  for (int i = 0; i < blocks; ++i) storage.push_back(std::make_unique<BlockStorage>(batch));
  for (int b = 0; b < blocks; ++b) {
    storage[static_cast<std::size_t>(b)]->poison();
    ring.prepare(b, storage[static_cast<std::size_t>(b)]->buffers());
  }
  std::minstd_rand rng(seed);
  std::vector<int32_t> order(static_cast<std::size_t>(batch));
  for (long n = 0; n < rounds; ++n) {
    for (int i = 0; i < batch; ++i) order[static_cast<std::size_t>(i)] = i;
    std::shuffle(order.begin(), order.end(), rng);
    std::atomic<int> next{0};
    std::vector<std::thread> workers;
    for (int w = 0; w < threads; ++w) {
      workers.emplace_back([&, w] {
        std::minstd_rand local(seed + static_cast<unsigned>(n * 17 + w));
        for (int i = next.fetch_add(1); i < batch; i = next.fetch_add(1)) {
          const int32_t env = order[static_cast<std::size_t>(i)];
          jitter(local);
          const RowRef ref = ring.claim(env);
          CHECK(ref.row == env);
          ref.buffers->env_id[ref.row] = env;
          reinterpret_cast<int64_t*>(ref.buffers->obs)[ref.row] = n;
          ring.commit(ref);
        }
      });
    }
    const int block = static_cast<int>(n % blocks);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!ring.wait_complete(block, std::chrono::milliseconds(100))) {
      CHECK_MSG(std::chrono::steady_clock::now() < deadline, "round never completed");
    }
    for (auto& th : workers) th.join();
    const BatchBuffers& out = ring.buffers(block);
    for (int r = 0; r < batch; ++r) {
      CHECK_MSG(out.env_id[r] == r, "round " + std::to_string(n) + " row " + std::to_string(r) +
                                        " holds env " + std::to_string(out.env_id[r]));
      CHECK(reinterpret_cast<const int64_t*>(out.obs)[r] == n);
    }
    storage[static_cast<std::size_t>(block)]->poison();
    ring.prepare(block, storage[static_cast<std::size_t>(block)]->buffers());
  }
  CHECK(ring.committed() == rounds * batch);
}

// wait_complete() returns false after its timeout on an incomplete block, and a waiter with
// a long timeout is woken by the commit that completes the block, not by the timeout.
void wait_complete_wakes_and_times_out() {
  ResultRing ring(3, 3, false);
  BlockStorage s(3);
  for (int b = 0; b < 3; ++b) ring.prepare(b, s.buffers());
  auto start = std::chrono::steady_clock::now();
  CHECK(!ring.wait_complete(0, std::chrono::milliseconds(30)));
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(25));
  ring.commit(ring.claim(0));
  ring.commit(ring.claim(0));
  CHECK(!ring.is_complete(0));
  CHECK(!ring.wait_complete(0, std::chrono::milliseconds(1)));

  // The waiter says who it is, then waits. Only it and this thread use the ring, and this
  // thread holds nothing, so once the kernel reports the waiter asleep it is blocked in
  // wait_complete(), waiting for the block: only the completing commit can wake it early.
  std::promise<pid_t> waiter_tid;
  std::promise<bool> waited;
  std::thread waiter([&] {
    waiter_tid.set_value(this_thread_tid());
    waited.set_value(ring.wait_complete(0, std::chrono::seconds(60)));
  });
  const pid_t tid = waiter_tid.get_future().get();
  while (!asleep(tid)) std::this_thread::yield();
  std::future<bool> woke = waited.get_future();
  CHECK(woke.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  ring.commit(ring.claim(0));
  // Generous, yet far below the waiter's own 60 s timeout.
  CHECK_MSG(woke.wait_for(std::chrono::seconds(5)) == std::future_status::ready,
            "the completing commit did not wake the waiter within 5 s");
  CHECK_MSG(woke.get(), "the waiter saw an incomplete block");
  waiter.join();
  CHECK(ring.committed() == 3);

  // restart() numbers from block 0 again, row 0 again.
  ring.prepare(0, s.buffers());
  ring.restart();
  CHECK(ring.committed() == 0);
  const RowRef ref = ring.claim(0);
  CHECK(ref.block == 0 && ref.row == 0);
  ring.commit(ref);
  CHECK(ring.committed() == 1);
}

}  // namespace

int main() {
  t::start_watchdog(300);
  const long scale = t::env_long("ATARI_VEC_TEST_SCALE", 1);
  t::stage() = "wait_complete";
  wait_complete_wakes_and_times_out();
  struct Case {
    int batch, blocks, threads;
  };
  t::stage() = "async rows";
  for (const Case& c : {Case{1, 3, 2}, Case{3, 4, 4}, Case{4, 3, 2}, Case{7, 3, 8},
                        Case{16, 4, 3}, Case{5, 6, 5}}) {
    async_rows(c.batch, c.blocks, c.threads, 3000 * scale / c.batch + 50,
               static_cast<unsigned>(c.batch * 7 + c.threads));
  }
  t::stage() = "sync rows";
  for (const Case& c : {Case{1, 3, 1}, Case{4, 3, 2}, Case{9, 3, 4}}) {
    sync_rows(c.batch, c.blocks, c.threads, 200 * scale, static_cast<unsigned>(c.batch));
  }
  std::printf("test_result_ring: OK\n");
  return 0;
}
