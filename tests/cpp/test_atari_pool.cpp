// test_atari_pool.cpp: the production pool (make_vector_env: real ALE emulators built in
// parallel) driven through the protocol, for the sanitizer builds. The counting-env test
// cannot see races or memory errors inside ALE or the preprocessing; this one runs them in
// worker threads. It also checks that an async pool gives every env the same trajectory as a
// sync pool, and that every batch has batch_size distinct env ids.
//
// Needs a ROM: ATARI_VEC_TEST_ROM=/path/to/breakout.bin; without it the test is skipped
// (exit code 77). Steps per run: ATARI_VEC_ATARI_STEPS (default 200). Small pools on purpose:
// under TSan an ALE reset costs ~2 s.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "batch_storage.hpp"
#include "check.hpp"
#include "vector_env.hpp"

using namespace atari_vec;
using atari_vec::testing::BlockStorage;
namespace t = atari_vec::testing;

namespace {

using Clock = std::chrono::steady_clock;

uint64_t fnv1a(const void* data, std::size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// One result of one env: its observation and step outputs, hashed.
using Trajectory = std::vector<uint64_t>;

class Driver {
 public:
  Driver(const EnvConfig& env, int num_envs, int batch_size, int threads, AutoresetMode mode)
      : n_(num_envs), b_(batch_size), mode_(mode) {
    PoolConfig pool;
    pool.num_envs = num_envs;
    pool.batch_size = batch_size == num_envs ? 0 : batch_size;
    pool.num_threads = threads;
    pool.autoreset_mode = mode;
    const int max_blocks = (num_envs + batch_size - 1) / batch_size + 2;
    for (int i = 0; i < max_blocks; ++i) {
      storage_.push_back(std::make_unique<BlockStorage>(batch_size, static_cast<std::size_t>(env.stacked_bytes())));
    }
    pool_ = make_vector_env(std::vector<EnvConfig>(static_cast<std::size_t>(num_envs), env), pool);
    CHECK(pool_->num_blocks() <= max_blocks);
    num_actions_ = static_cast<int>(pool_->env(0).action_set().size());
    CHECK(num_actions_ > 1);
  }

  VectorEnv& pool() { return *pool_; }
  int num_actions() const { return num_actions_; }
  const std::vector<int32_t>& ids() const { return ids_; }

  // Full reset with seeds base + env id, or a partial one (sync pools) of `ids`.
  void reset(const std::vector<int32_t>& ids, int64_t seed_base) {
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (!pool_->quiesce(std::chrono::milliseconds(50))) CHECK(Clock::now() < deadline);
    for (int b = 0; b < pool_->num_blocks(); ++b) prepare(b);
    std::vector<int64_t> seeds;
    for (int32_t e : ids) seeds.push_back(seed_base < 0 ? -1 : seed_base + e);
    pool_->reset(ids.data(), seeds.data(), static_cast<int>(ids.size()));
    receive();
  }

  void send(const std::vector<int32_t>& actions) { pool_->send(actions.data(), nullptr); }

  // Receives a batch, checks its ids, and appends each row to its env's trajectory.
  void receive() {
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (!pool_->wait_batch(std::chrono::milliseconds(50))) {
      CHECK_MSG(Clock::now() < deadline, "a batch of real envs never completed");
    }
    const int block = pool_->finish_batch();
    const BlockStorage& got = *storage_[static_cast<std::size_t>(block)];
    prepare(pool_->block_to_refill(block));
    pool_->rethrow_worker_error();
    ids_.assign(got.env_id.get(), got.env_id.get() + b_);
    std::vector<char> seen(static_cast<std::size_t>(n_), 0);
    for (int r = 0; r < b_; ++r) {
      const std::size_t row = static_cast<std::size_t>(r);
      const int32_t e = got.env_id[row];
      CHECK(e >= 0 && e < n_);
      CHECK_MSG(!seen[static_cast<std::size_t>(e)], "env " + std::to_string(e) + " twice in a batch");
      seen[static_cast<std::size_t>(e)] = 1;
      if (b_ == n_) CHECK(e == r);
      CHECK(t::flag(got.terminated, row) <= 1 && t::flag(got.truncated, row) <= 1);
      uint64_t h = fnv1a(got.obs.get() + row * got.obs_bytes, got.obs_bytes);
      h = fnv1a(&got.reward[row], sizeof(int32_t), h);
      const uint8_t flags[2] = {static_cast<uint8_t>(t::flag(got.terminated, row)),
                                static_cast<uint8_t>(t::flag(got.truncated, row))};
      h = fnv1a(flags, 2, h);
      h = fnv1a(&got.episode_frame_number[row], sizeof(int32_t), h);
      traj_[e].push_back(h);
      ended_[e] = flags[0] || flags[1];
    }
  }

  std::map<int, Trajectory>& trajectories() { return traj_; }
  bool ended(int e) { return ended_[e]; }

 private:
  void prepare(int block) {
    BlockStorage& s = *storage_[static_cast<std::size_t>(block)];
    s.poison();
    pool_->prepare_block(block, s.buffers(mode_ == AutoresetMode::kSameStep));
  }

  int n_, b_;
  AutoresetMode mode_;
  int num_actions_ = 0;
  std::vector<std::unique_ptr<BlockStorage>> storage_;
  std::vector<int32_t> ids_;
  std::map<int, Trajectory> traj_;
  std::map<int, bool> ended_;
  std::unique_ptr<VectorEnv> pool_;  // last: workers joined before the storage goes
};

// The settings of most runs: sticky actions and random no-op starts (so seeds matter), and
// short episodes, so truncations and resets happen.
EnvConfig base_config(const std::string& rom, int max_frames = 400) {
  EnvConfig env;
  env.rom_path = rom;
  env.noop_max = 10;
  env.repeat_action_probability = 0.25f;
  env.max_num_frames_per_episode = max_frames;
  return env;
}

// Each env's k-th action, the same whoever steps it and whenever.
int32_t action_for(int env, std::size_t k, int num_actions) {
  return static_cast<int32_t>((env * 7919 + k * 104729 + (k >> 3)) % static_cast<std::size_t>(num_actions));
}

// Steps until every env has `per_env` results (some get more in async mode).
std::map<int, Trajectory> per_env_run(const std::string& rom, int n, int b, int threads, std::size_t per_env) {
  Driver d(base_config(rom), n, b, threads, AutoresetMode::kNextStep);
  std::vector<int32_t> all;
  for (int e = 0; e < n; ++e) all.push_back(e);
  d.reset(all, 100);
  auto done = [&] {
    for (int e = 0; e < n; ++e) {
      if (d.trajectories()[e].size() < per_env) return false;
    }
    return true;
  };
  while (!done()) {
    std::vector<int32_t> actions;
    for (int32_t e : d.ids()) {
      // A trajectory of length L has taken L - 1 actions so far (the first entry is the reset).
      actions.push_back(action_for(e, d.trajectories()[e].size() - 1, d.num_actions()));
    }
    d.send(actions);
    d.receive();
  }
  return d.trajectories();
}

// The other modes, for the sanitizers' sake: SAME_STEP async with final observations, and
// DISABLED with partial resets of the envs whose episode ended.
void other_modes(const std::string& rom, long steps) {
  {
    Driver d(base_config(rom, 100), 3, 2, 2, AutoresetMode::kSameStep);
    d.reset({0, 1, 2}, 7);
    std::minstd_rand rng(1);
    for (long i = 0; i < steps; ++i) {
      std::vector<int32_t> actions;
      for (std::size_t k = 0; k < d.ids().size(); ++k) actions.push_back(static_cast<int32_t>(rng() % d.num_actions()));
      d.send(actions);
      d.receive();
    }
  }
  {
    Driver d(base_config(rom, 100), 2, 2, 2, AutoresetMode::kDisabled);
    d.reset({0, 1}, 9);
    std::minstd_rand rng(2);
    long partial = 0;
    for (long i = 0; i < steps; ++i) {
      std::vector<int32_t> ended;
      for (int e = 0; e < 2; ++e) {
        if (d.ended(e)) ended.push_back(e);
      }
      if (!ended.empty()) {
        d.reset(ended, -1);
        ++partial;
        continue;
      }
      d.send(std::vector<int32_t>(2, static_cast<int32_t>(rng() % d.num_actions())));
      d.receive();
    }
    std::printf("test_atari_pool: DISABLED mode, %ld partial resets\n", partial);
  }
}

// Other observation geometries: colour through the native resizer, an upscale that goes to
// cv::resize, no resize at all, one-frame stacks; for the sanitizers' sake.
void geometries(const std::string& rom, long steps) {
  struct Geometry {
    bool grayscale;
    int height, width, stack;
  };
  // 250x170 (an enlargement) and 105x80 (integer factors) take OpenCV's paths: a build
  // without OpenCV (the sanitizer builds) must refuse them at construction, with a reason.
  CHECK(resize_supported(210, 160, 84, 84) && resize_supported(210, 160, 210, 160));
  for (const Geometry& g : {Geometry{false, 84, 84, 4}, Geometry{true, 250, 170, 2},
                            Geometry{false, 210, 160, 1}, Geometry{true, 42, 42, 1},
                            Geometry{true, 105, 80, 2}}) {
    EnvConfig env = base_config(rom, 100);
    env.obs_type = g.grayscale ? ObsType::kGrayscale : ObsType::kRGB;
    env.img_height = g.height;
    env.img_width = g.width;
    env.stack_num = g.stack;
    if (!resize_supported(210, 160, g.height, g.width)) {
      CHECK(!have_opencv());
      std::string error;
      try {
        AtariEnv refused(env);
      } catch (const std::invalid_argument& e) {
        error = e.what();
      }
      CHECK_MSG(error.find("needs OpenCV") != std::string::npos,
                "geometry " + std::to_string(g.height) + "x" + std::to_string(g.width) +
                    " without OpenCV: got '" + error + "'");
      continue;
    }
    Driver d(env, 2, 1, 2, AutoresetMode::kNextStep);
    d.reset({0, 1}, -1);
    for (long i = 0; i < steps / 2; ++i) {
      d.send({static_cast<int32_t>(i % d.num_actions())});
      d.receive();
    }
  }
}

}  // namespace

// Snapshots and batched planning on real emulators, for the sanitizers: plan tasks on two
// workers plus the caller (which helps in slices and requeues its task), walkers many times
// the envs. The same job run twice gives the same bytes, every env's own state is put back,
// and a walker equals its restore + steps done by hand on one env.
void planning(const std::string& rom) {
  Driver d(base_config(rom, 0), 2, 2, 2, AutoresetMode::kNextStep);
  d.reset({0, 1}, 3);
  std::minstd_rand rng(5);
  for (int i = 0; i < 20; ++i) {
    d.send({static_cast<int32_t>(rng() % d.num_actions()), static_cast<int32_t>(rng() % d.num_actions())});
    d.receive();
  }
  VectorEnv& pool = d.pool();
  const std::size_t width = pool.snapshot_bytes();
  const int32_t both[2] = {0, 1};
  std::vector<uint8_t> own(2 * width), own_after(2 * width), states(2 * width);
  pool.clone_states(both, 2, true, own.data());
  pool.clone_states(both, 2, true, states.data());  // with the sticky RNG: any env may run a walker

  const int n = 12;
  std::vector<uint8_t> in(n * width);
  std::vector<int32_t> actions(n), steps(n);
  for (int k = 0; k < n; ++k) {
    std::copy_n(states.data() + (k % 2) * width, width, in.data() + k * width);
    actions[static_cast<std::size_t>(k)] = static_cast<int32_t>(rng() % d.num_actions());
    steps[static_cast<std::size_t>(k)] = 1 + static_cast<int32_t>(rng() % 3);
  }
  const std::size_t obs_bytes = pool.env(0).observation_bytes();
  auto run = [&](std::vector<uint8_t>& out_states, std::vector<uint8_t>& out_obs, std::vector<int32_t>& reward) {
    PlanJob job;
    job.states = in.data();
    job.width = width;
    job.count = n;
    job.actions = actions.data();
    job.steps = steps.data();
    job.states_out = out_states.data();
    job.obs = out_obs.data();
    job.obs_bytes = obs_bytes;
    job.reward = reward.data();
    pool.start_plan(job);
    const auto deadline = Clock::now() + std::chrono::seconds(300);
    while (!pool.wait_plan(std::chrono::milliseconds(5))) CHECK(Clock::now() < deadline);
    pool.finish_plan();
  };
  std::vector<uint8_t> s1(n * width), s2(n * width), o1(n * obs_bytes), o2(n * obs_bytes);
  std::vector<int32_t> r1(n), r2(n);
  run(s1, o1, r1);
  run(s2, o2, r2);
  CHECK(s1 == s2 && o1 == o2 && r1 == r2);
  pool.clone_states(both, 2, true, own_after.data());
  CHECK_MSG(own == own_after, "planning changed the pool's own envs");

  // Walker 0 by hand on env 0: restore, step, clone; then put env 0 back.
  pool.restore_states(in.data(), both, 1);
  AtariEnv& env = const_cast<AtariEnv&>(pool.env(0));
  env.set_action(actions[0], 1.0f);
  for (int s = 0; s < steps[0] && !env.episode_over(); ++s) env.step();
  std::vector<uint8_t> by_hand(width), obs(obs_bytes);
  env.save(by_hand.data(), width, false, false);
  env.write_observation(obs.data());
  CHECK(std::equal(by_hand.begin(), by_hand.end(), s1.begin()));
  CHECK(std::equal(obs.begin(), obs.end(), o1.begin()));
  pool.restore_states(own.data(), both, 2);
  d.send({0, 0});
  d.receive();
}

int main() {
  const char* rom = std::getenv("ATARI_VEC_TEST_ROM");
  if (rom == nullptr || *rom == '\0') {
    std::printf("test_atari_pool: skipped (set ATARI_VEC_TEST_ROM to a ROM file)\n");
    return 77;
  }
  t::start_watchdog(1500);
  const long steps = t::env_long("ATARI_VEC_ATARI_STEPS", 200);
  const auto start = Clock::now();
  t::stage() = "sync reference";
  const auto sync = per_env_run(rom, 3, 3, 1, static_cast<std::size_t>(steps));
  t::stage() = "async";
  const auto async = per_env_run(rom, 3, 1, 3, static_cast<std::size_t>(steps));
  for (int e = 0; e < 3; ++e) {
    const Trajectory& s = sync.at(e);
    const Trajectory& a = async.at(e);
    const std::size_t n = std::min(s.size(), a.size());
    for (std::size_t k = 0; k < n; ++k) {
      CHECK_MSG(s[k] == a[k], "env " + std::to_string(e) + " diverged at result " + std::to_string(k));
    }
  }
  t::stage() = "other modes";
  other_modes(rom, steps);
  t::stage() = "geometries";
  geometries(rom, steps);
  t::stage() = "snapshots and planning";
  planning(rom);
  std::printf("test_atari_pool: OK (%.1f s)\n",
              std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}
