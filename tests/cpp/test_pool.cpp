// test_pool.cpp: BasicVectorEnv<CountingEnv> driven through the documented protocol for many
// (num_envs, batch_size, num_threads) combinations in all three autoreset modes. The caller
// keeps an exact model of every env (the task it has in flight, its counters), checks every
// row of every batch against it, and at the end checks every env's step count. Random full
// resets with steps in flight, partial resets, paddle strengths, seeds, worker faults, slow
// steps and destruction mid-flight are mixed in.
//
// Iterations per run: ATARI_VEC_POOL_ITERATIONS (default 5000 x ATARI_VEC_TEST_SCALE, a few
// seconds; 100000 takes about 80 s without a sanitizer, about 4 minutes under TSan).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch_storage.hpp"
#include "check.hpp"
#include "counting_env.hpp"
#include "vector_env.hpp"

using namespace atari_vec;
using atari_vec::testing::BlockStorage;
using atari_vec::testing::CountingEnv;
using atari_vec::testing::CountingObs;
namespace t = atari_vec::testing;

namespace {

using Pool = BasicVectorEnv<CountingEnv>;
using Clock = std::chrono::steady_clock;

const char* mode_name(AutoresetMode m) {
  switch (m) {
    case AutoresetMode::kNextStep: return "NEXT_STEP";
    case AutoresetMode::kSameStep: return "SAME_STEP";
    case AutoresetMode::kDisabled: return "DISABLED";
  }
  return "?";
}

// What the test knows about one env: a mirror of CountingEnv's state, and the one task the
// caller has queued for it and not yet received (the pool allows at most one).
struct ModelEnv {
  int episode_length = 1;
  int episode_steps = 0;
  int64_t total_steps = 0;
  int64_t resets = 0;
  int64_t seed_used = -1;
  int32_t reward = 0;
  int64_t episode_return = 0;
  float strength = 1.0f;
  bool pending = false;
  TaskKind kind = TaskKind::kStep;
  int action = 0;
  float strength_sent = 1.0f;
  int64_t seed_sent = -1;
  bool over() const { return episode_steps >= episode_length; }
};

// The row a task must produce.
struct ExpectedRow {
  CountingObs obs{};
  int32_t reward = 0;
  bool terminated = false;
  bool episode_mask = false;
  float episode_return = 0;
  int32_t episode_length = 0;
  bool final_mask = false;
  CountingObs final_obs{};
};

CountingObs observe(const ModelEnv& m, int id) {
  CountingObs o{};
  o.env_id = id;
  o.episode_steps = m.episode_steps;
  o.total_steps = m.total_steps;
  o.resets = m.resets;
  o.seed = m.seed_used;
  o.strength = m.strength;
  return o;
}

void model_reset(ModelEnv& m) {
  m.episode_steps = 0;
  m.resets = m.seed_sent >= 0 ? 1 : m.resets + 1;
  m.reward = 0;
  m.episode_return = 0;
  if (m.seed_sent >= 0) m.seed_used = m.seed_sent;
  m.seed_sent = -1;
}

void model_step(ModelEnv& m) {
  ++m.episode_steps;
  ++m.total_steps;
  m.reward = m.action;
  m.episode_return += m.action;
  m.strength = m.strength_sent;
}

// Applies the env's pending task to the model, as run_task does, and returns the row.
ExpectedRow apply(ModelEnv& m, int id, AutoresetMode mode) {
  CHECK_MSG(m.pending, "a result for env " + std::to_string(id) + " that has no task queued");
  m.pending = false;
  ExpectedRow row;
  bool finished = false;
  switch (m.kind) {
    case TaskKind::kReset:
      model_reset(m);
      break;
    case TaskKind::kReport:
      break;
    case TaskKind::kPrepareReset:
      CHECK_MSG(false, "the caller never queues a background task");
      break;
    case TaskKind::kStep:
      if (mode == AutoresetMode::kNextStep && m.over()) {
        model_reset(m);
      } else {
        CHECK_MSG(mode != AutoresetMode::kDisabled || !m.over(), "DISABLED stepped an ended episode");
        model_step(m);
        finished = m.over();
      }
      break;
  }
  row.episode_mask = finished;
  if (finished) {
    row.episode_return = static_cast<float>(m.episode_return);
    row.episode_length = m.episode_steps;
  }
  if (finished && mode == AutoresetMode::kSameStep) {
    row.final_mask = true;
    row.final_obs = observe(m, id);
    row.reward = m.reward;
    row.terminated = true;
    model_reset(m);
  } else {
    row.reward = m.reward;
    row.terminated = m.over();
  }
  row.obs = observe(m, id);
  return row;
}

std::string describe(const CountingObs& o) {
  return "{env " + std::to_string(o.env_id) + ", ep " + std::to_string(o.episode_steps) +
         ", total " + std::to_string(o.total_steps) + ", resets " + std::to_string(o.resets) +
         ", seed " + std::to_string(o.seed) + ", strength " + std::to_string(o.strength) + "}";
}

bool same(const CountingObs& a, const CountingObs& b) {
  return a.env_id == b.env_id && a.episode_steps == b.episode_steps &&
         a.total_steps == b.total_steps && a.resets == b.resets && a.seed == b.seed &&
         a.strength == b.strength;
}

struct RunConfig {
  int num_envs;
  int batch_size;
  int num_threads;
  AutoresetMode mode;
  int affinity = -1;
  int64_t fault_env = -1;  // this env's step() throws at fault_step
  int64_t fault_step = -1;
  int64_t fault_reset = -1;  // this env's reset() call with this number throws
  int slow_step_us = 0;
  bool jitter = true;
  bool caller_runs_tasks = true;  // wait_batch() runs queued tasks too
};

// Owns the pool and the arrays it writes into (the arrays are declared first, so the pool,
// whose destructor joins the workers, goes first), and drives the protocol.
class Harness {
 public:
  Harness(const RunConfig& cfg, unsigned seed) : cfg_(cfg), rng_(seed) {
    std::vector<std::unique_ptr<CountingEnv>> envs;
    models_.resize(static_cast<std::size_t>(cfg.num_envs));
    for (int e = 0; e < cfg.num_envs; ++e) {
      CountingEnv::Options o;
      o.episode_length = 1 + static_cast<int>((e * 3 + seed) % 5);
      o.fault_at_step = e == cfg.fault_env ? cfg.fault_step : -1;
      o.fault_at_reset = e == cfg.fault_env ? cfg.fault_reset : -1;
      o.slow_step_us = cfg.slow_step_us;
      o.jitter = cfg.jitter;
      models_[static_cast<std::size_t>(e)].episode_length = o.episode_length;
      envs.push_back(std::make_unique<CountingEnv>(e, o));
    }
    PoolConfig pc;
    pc.num_envs = cfg.num_envs;
    pc.batch_size = cfg.batch_size == cfg.num_envs ? 0 : cfg.batch_size;
    pc.num_threads = cfg.num_threads;
    pc.thread_affinity_offset = cfg.affinity;
    pc.autoreset_mode = cfg.mode;
    pc.caller_runs_tasks = cfg.caller_runs_tasks;
    const std::size_t obs_bytes = envs.front()->observation_bytes();
    // Storage first: the pool's block count is known only once it exists, so make plenty.
    const int max_blocks = (cfg.num_envs + cfg.batch_size - 1) / cfg.batch_size + 2;
    for (int i = 0; i < 2 * max_blocks; ++i) {
      storage_.push_back(std::make_unique<BlockStorage>(cfg.batch_size, obs_bytes));
    }
    use_.assign(static_cast<std::size_t>(max_blocks), 0);
    pool_ = std::make_unique<Pool>(std::move(envs), pc);
    CHECK(pool_->num_envs() == cfg.num_envs);
    CHECK(pool_->batch_size() == cfg.batch_size);
    CHECK(pool_->num_threads() == cfg.num_threads);
    CHECK(pool_->num_blocks() <= max_blocks);
    CHECK(pool_->autoreset_mode() == cfg.mode);
    if (cfg.affinity >= 0) {
      CHECK(static_cast<int>(pool_->worker_cpus().size()) == cfg.num_threads);
    } else {
      CHECK(pool_->worker_cpus().empty());
    }
  }

  Pool& pool() { return *pool_; }
  std::vector<ModelEnv>& models() { return models_; }
  const std::vector<int32_t>& last_ids() const { return last_ids_; }
  long batches() const { return batches_; }

  // Resets `ids` (all envs when empty) with random seeds, dropping any results in flight.
  void reset(std::vector<int32_t> ids) {
    if (ids.empty()) {
      for (int e = 0; e < cfg_.num_envs; ++e) ids.push_back(e);
    }
    quiesce();
    std::vector<int64_t> seeds;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      seeds.push_back(rng_() % 3 == 0 ? -1 : static_cast<int64_t>(rng_() % 100000));
    }
    for (int b = 0; b < pool_->num_blocks(); ++b) prepare(b);
    pool_->reset(ids.data(), seeds.data(), static_cast<int>(ids.size()));
    std::vector<char> is_reset(static_cast<std::size_t>(cfg_.num_envs), 0);
    for (std::size_t i = 0; i < ids.size(); ++i) {
      ModelEnv& m = models_[static_cast<std::size_t>(ids[i])];
      is_reset[static_cast<std::size_t>(ids[i])] = 1;
      m.pending = true;
      m.kind = TaskKind::kReset;
      m.seed_sent = seeds[i];
    }
    for (int e = 0; e < cfg_.num_envs; ++e) {
      if (is_reset[static_cast<std::size_t>(e)]) continue;
      ModelEnv& m = models_[static_cast<std::size_t>(e)];
      m.pending = true;
      m.kind = TaskKind::kReport;
    }
    receive();
  }

  // DISABLED mode: resets the envs whose episode is over (a partial reset); false if none.
  bool reset_ended() {
    std::vector<int32_t> ended;
    for (int e = 0; e < cfg_.num_envs; ++e) {
      if (models_[static_cast<std::size_t>(e)].over()) ended.push_back(e);
    }
    if (ended.empty()) return false;
    reset(ended);
    return true;
  }

  // Waits until no task is in flight; the results still out are dropped, but their tasks
  // ran, so the model takes them in without a row to compare.
  void quiesce() {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (!pool_->quiesce(std::chrono::milliseconds(50))) {
      CHECK_MSG(Clock::now() < deadline, "quiesce() never finished");
    }
    CHECK(pool_->outstanding() == 0);
    for (int e = 0; e < cfg_.num_envs; ++e) {
      ModelEnv& m = models_[static_cast<std::size_t>(e)];
      if (m.pending) apply(m, e, cfg_.mode);
    }
  }

  // One action per env of the last batch; strengths on every other call.
  void send() {
    CHECK(pool_->awaiting_send());
    std::vector<int32_t> actions(static_cast<std::size_t>(cfg_.batch_size));
    std::vector<float> strengths(static_cast<std::size_t>(cfg_.batch_size));
    const bool with_strength = rng_() % 2 == 0;
    for (int i = 0; i < cfg_.batch_size; ++i) {
      const int32_t e = last_ids_[static_cast<std::size_t>(i)];
      ModelEnv& m = models_[static_cast<std::size_t>(e)];
      CHECK_MSG(!m.pending, "send() for env " + std::to_string(e) + " that has a task in flight");
      actions[static_cast<std::size_t>(i)] = static_cast<int32_t>(rng_() % 17);
      strengths[static_cast<std::size_t>(i)] = with_strength ? 0.25f * static_cast<float>(rng_() % 5) : 1.0f;
      m.pending = true;
      m.kind = TaskKind::kStep;
      m.action = actions[static_cast<std::size_t>(i)];
      m.strength_sent = strengths[static_cast<std::size_t>(i)];
    }
    pool_->send(actions.data(), with_strength ? strengths.data() : nullptr);
    CHECK(!pool_->awaiting_send());
  }

  // Per-env calls (send(ids, ...), reset_envs): a random subset of the envs with no task out
  // is stepped or reset (ended episodes in DISABLED mode are always reset), then batches are
  // received while enough results are out. False if no env was free.
  bool send_some() {
    const int32_t busy = first_busy();  // before this call marks its own envs
    std::vector<int32_t> step_ids, reset_ids;
    std::vector<int32_t> actions;
    std::vector<float> strengths;
    std::vector<int64_t> seeds;
    for (int e = 0; e < cfg_.num_envs; ++e) {
      ModelEnv& m = models_[static_cast<std::size_t>(e)];
      if (m.pending || rng_() % 2 == 0) continue;
      const bool must_reset = cfg_.mode == AutoresetMode::kDisabled && m.over();
      if (must_reset || rng_() % 8 == 0) {
        reset_ids.push_back(e);
        seeds.push_back(rng_() % 2 == 0 ? -1 : static_cast<int64_t>(rng_() % 100000));
        m.kind = TaskKind::kReset;
        m.seed_sent = seeds.back();
      } else {
        step_ids.push_back(e);
        actions.push_back(static_cast<int32_t>(rng_() % 17));
        strengths.push_back(0.25f * static_cast<float>(rng_() % 5));
        m.kind = TaskKind::kStep;
        m.action = actions.back();
        m.strength_sent = strengths.back();
      }
      m.pending = true;
    }
    if (step_ids.empty() && reset_ids.empty()) return false;
    // Refused calls queue nothing: a busy env, a duplicate, an id out of range.
    const int64_t before = pool_->outstanding();
    if (busy >= 0) {
      const int32_t a = 0;
      CHECK_THROWS(std::invalid_argument, pool_->send(&busy, &a, nullptr, 1));
    }
    const int32_t twice[2] = {step_ids.empty() ? reset_ids[0] : step_ids[0],
                              step_ids.empty() ? reset_ids[0] : step_ids[0]};
    const int32_t two_actions[2] = {0, 0};
    const int64_t two_seeds[2] = {-1, -1};
    CHECK_THROWS(std::invalid_argument, pool_->send(twice, two_actions, nullptr, 2));
    CHECK_THROWS(std::invalid_argument, pool_->reset_envs(twice, two_seeds, 2));
    const int32_t outside = cfg_.num_envs;
    CHECK_THROWS(std::invalid_argument, pool_->reset_envs(&outside, two_seeds, 1));
    CHECK(pool_->outstanding() == before);
    if (!step_ids.empty()) {
      pool_->send(step_ids.data(), actions.data(), strengths.data(), static_cast<int>(step_ids.size()));
    }
    if (!reset_ids.empty()) {
      pool_->reset_envs(reset_ids.data(), seeds.data(), static_cast<int>(reset_ids.size()));
    }
    while (pool_->outstanding() >= cfg_.batch_size) receive();
    return true;
  }

  // No env of the last batch received has a task out (a full send() is allowed).
  bool last_batch_free() const {
    for (int32_t e : last_ids_) {
      if (models_[static_cast<std::size_t>(e)].pending) return false;
    }
    return true;
  }

  // An env with a task out, or -1.
  int32_t first_busy() const {
    for (int e = 0; e < cfg_.num_envs; ++e) {
      if (models_[static_cast<std::size_t>(e)].pending) return e;
    }
    return -1;
  }

  // Receives the next batch and checks every row. Rethrows a worker's error like the
  // binding does, after refilling the block (so the pool stays usable).
  void receive() {
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (!pool_->wait_batch(std::chrono::milliseconds(50))) {
      CHECK_MSG(Clock::now() < deadline,
                "batch " + std::to_string(batches_) + " never completed (outstanding " +
                    std::to_string(pool_->outstanding()) + ")");
    }
    const int block = pool_->finish_batch();
    CHECK(block >= 0 && block < pool_->num_blocks());
    const BlockStorage& got = *current_[static_cast<std::size_t>(block)];
    prepare(pool_->block_to_refill(block));
    ++batches_;
    try {
      pool_->rethrow_worker_error();
    } catch (...) {
      // The batch is still complete and received: take it in, unchecked, then report.
      verify(got, /*compare=*/false);
      throw;
    }
    verify(got, compare_);
  }

  // After a worker fault the model of the faulty env is off by design; rows are then only
  // checked for ids until resync().
  void set_compare(bool on) { compare_ = on; }

  // After the last batch: every env counted exactly the steps the model says, and the
  // pool's bookkeeping agrees with the model about which envs are busy.
  void check_counts() {
    quiesce();
    for (int e = 0; e < cfg_.num_envs; ++e) {
      const ModelEnv& m = models_[static_cast<std::size_t>(e)];
      CHECK_MSG(pool_->env(e).total_steps() == m.total_steps,
                "env " + std::to_string(e) + " stepped " + std::to_string(pool_->env(e).total_steps()) +
                    " times, expected " + std::to_string(m.total_steps));
      // A reset run ahead is in the env's counter but not yet in any row.
      CHECK(pool_->env(e).resets() == m.resets + (pool_->reset_prepared(e) ? 1 : 0));
    }
  }

  // Takes the model's step counts from the envs (after a fault, where the model lost track
  // of the faulty row on purpose).
  void resync() {
    quiesce();
    for (int e = 0; e < cfg_.num_envs; ++e) {
      ModelEnv& m = models_[static_cast<std::size_t>(e)];
      m.total_steps = pool_->env(e).total_steps();
      m.resets = pool_->env(e).resets() - (pool_->reset_prepared(e) ? 1 : 0);
      m.strength = pool_->env(e).last_strength();
    }
  }

 private:
  void prepare(int block) {
    int& u = use_[static_cast<std::size_t>(block)];
    BlockStorage& s = *storage_[static_cast<std::size_t>(2 * block + u)];
    u ^= 1;  // the other storage next time: a stale pointer would write where nobody reads
    s.poison();
    if (current_.size() <= static_cast<std::size_t>(block)) current_.resize(static_cast<std::size_t>(block) + 1);
    current_[static_cast<std::size_t>(block)] = &s;
    pool_->prepare_block(block, s.buffers(cfg_.mode == AutoresetMode::kSameStep));
  }

  void verify(const BlockStorage& got, bool compare) {
    const int n = cfg_.num_envs;
    const int b = cfg_.batch_size;
    const bool sync = b == n;
    std::vector<char> seen(static_cast<std::size_t>(n), 0);
    last_ids_.assign(got.env_id.get(), got.env_id.get() + b);
    const std::string where = "batch " + std::to_string(batches_) + " (" + mode_name(cfg_.mode) +
                              ", envs " + std::to_string(n) + ", batch " + std::to_string(b) +
                              ", threads " + std::to_string(cfg_.num_threads) + ")";
    for (int r = 0; r < b; ++r) {
      const std::size_t row = static_cast<std::size_t>(r);
      const int32_t e = got.env_id[row];
      CHECK_MSG(e >= 0 && e < n, where + ": row " + std::to_string(r) + " has env id " + std::to_string(e));
      CHECK_MSG(!seen[static_cast<std::size_t>(e)], where + ": env " + std::to_string(e) + " twice");
      seen[static_cast<std::size_t>(e)] = 1;
      if (sync) CHECK_MSG(e == r, where + ": sync row " + std::to_string(r) + " holds env " + std::to_string(e));
      const ExpectedRow want = apply(models_[static_cast<std::size_t>(e)], e, cfg_.mode);
      if (!compare) continue;
      CountingObs obs;
      std::memcpy(&obs, got.obs.get() + row * got.obs_bytes, sizeof(obs));
      const std::string at = where + " env " + std::to_string(e) + ": ";
      CHECK_MSG(same(obs, want.obs), at + "obs " + describe(obs) + ", expected " + describe(want.obs));
      CHECK_MSG(got.reward[row] == want.reward, at + "reward " + std::to_string(got.reward[row]) +
                                                    ", expected " + std::to_string(want.reward));
      CHECK_MSG(t::flag(got.terminated, row) == want.terminated, at + "terminated");
      CHECK_MSG(t::flag(got.truncated, row) == 0, at + "truncated");
      CHECK_MSG(got.lives[row] == e, at + "lives (the env id) " + std::to_string(got.lives[row]));
      CHECK_MSG(got.frame_number[row] == static_cast<int32_t>(want.obs.total_steps), at + "frame_number");
      CHECK_MSG(got.episode_frame_number[row] == want.obs.episode_steps, at + "episode_frame_number");
      CHECK_MSG(t::flag(got.episode_mask, row) == want.episode_mask, at + "episode_mask");
      CHECK_MSG(got.episode_return[row] == want.episode_return, at + "episode_return");
      CHECK_MSG(got.episode_length[row] == want.episode_length, at + "episode_length");
      if (cfg_.mode == AutoresetMode::kSameStep) {
        CHECK_MSG(t::flag(got.final_mask, row) == want.final_mask, at + "final_mask");
        if (want.final_mask) {
          CountingObs fin;
          std::memcpy(&fin, got.final_obs.get() + row * got.obs_bytes, sizeof(fin));
          CHECK_MSG(same(fin, want.final_obs),
                    at + "final_obs " + describe(fin) + ", expected " + describe(want.final_obs));
          CHECK(got.final_lives[row] == e);
          CHECK(got.final_frame_number[row] == static_cast<int32_t>(want.final_obs.total_steps));
          CHECK(got.final_episode_frame_number[row] == want.final_obs.episode_steps);
        }
      }
    }
    // The pool's view of who is busy matches the model: exactly the envs with a task out.
    int64_t pending = 0;
    for (int e = 0; e < n; ++e) {
      const bool busy = models_[static_cast<std::size_t>(e)].pending;
      pending += busy;
      CHECK_MSG(pool_->is_idle(e) == !busy, where + ": is_idle(" + std::to_string(e) + ") wrong");
    }
    CHECK_MSG(pool_->outstanding() == pending,
              where + ": outstanding " + std::to_string(pool_->outstanding()) + ", model " + std::to_string(pending));
    CHECK(pool_->awaiting_send());
  }

  RunConfig cfg_;
  std::minstd_rand rng_;
  std::vector<ModelEnv> models_;
  std::vector<std::unique_ptr<BlockStorage>> storage_;
  std::vector<int> use_;
  std::vector<BlockStorage*> current_;
  std::vector<int32_t> last_ids_;
  long batches_ = 0;
  bool compare_ = true;
  std::unique_ptr<Pool> pool_;  // last: destroyed (workers joined) before the storage
};

int64_t& total_resets_ahead() {
  static int64_t n = 0;
  return n;
}
int64_t& total_handoffs() {
  static int64_t n = 0;
  return n;
}

// The main loop: send/receive `iterations` times, with random resets mixed in.
void run(const RunConfig& cfg, long iterations, unsigned seed) {
  Harness h(cfg, seed);
  std::minstd_rand rng(seed ^ 0x9e3779b9u);
  const bool sync = cfg.batch_size == cfg.num_envs;
  h.reset({});
  for (long i = 0; i < iterations; ++i) {
    const unsigned r = rng() % 1000;
    if (r >= 900 && h.send_some()) continue;  // per-env steps and resets
    if (h.pool().awaiting_send() && !h.last_batch_free()) {
      // Part of the last batch went out per env: a full send() is refused, queuing nothing.
      const int64_t before = h.pool().outstanding();
      std::vector<int32_t> actions(static_cast<std::size_t>(cfg.batch_size), 0);
      CHECK_THROWS(std::invalid_argument, h.pool().send(actions.data(), nullptr));
      CHECK(h.pool().outstanding() == before);
    }
    if (!h.pool().awaiting_send() || !h.last_batch_free()) {
      if (h.pool().outstanding() >= cfg.batch_size) {
        h.receive();
      } else {
        h.reset({});
      }
      continue;
    }
    if (cfg.mode == AutoresetMode::kDisabled) {
      std::vector<int32_t> ended;
      for (int32_t e : h.last_ids()) {
        if (h.models()[static_cast<std::size_t>(e)].over()) ended.push_back(e);
      }
      if (!ended.empty()) {
        // Stepping an ended episode is refused, and nothing is queued.
        const int64_t before = h.pool().outstanding();
        std::vector<int32_t> actions(static_cast<std::size_t>(cfg.batch_size), 0);
        CHECK_THROWS(std::invalid_argument, h.pool().send(actions.data(), nullptr));
        CHECK(h.pool().outstanding() == before);
        CHECK(h.pool().awaiting_send());
        if (sync) {
          h.reset(ended);
        } else {
          // Per env: the ended ones are reset (when picked), the others may step.
          if (!h.send_some() && h.pool().outstanding() >= cfg.batch_size) h.receive();
        }
        continue;
      }
    }
    if (r < 4) {
      h.send();  // a full reset with a batch in flight: its results are dropped
      h.reset({});
    } else if (r < 12 && sync) {
      std::vector<int32_t> ids;
      for (int e = 0; e < cfg.num_envs; ++e) {
        if (rng() % 3 == 0) ids.push_back(e);
      }
      if (ids.empty()) ids.push_back(static_cast<int32_t>(rng() % static_cast<unsigned>(cfg.num_envs)));
      h.reset(ids);
    } else {
      h.send();
      h.receive();
    }
  }
  h.check_counts();
  if (cfg.mode == AutoresetMode::kNextStep) {
    // Resets ahead happen (the counting env's episodes are 1 to 5 steps long, and sync
    // batches leave workers idle at every turnaround), and the rows above never showed them.
    CHECK_MSG(!sync || h.pool().resets_ahead() > 0, "no reset ran ahead");
    total_resets_ahead() += h.pool().resets_ahead();
    total_handoffs() += h.pool().handoffs();
  } else {
    CHECK(h.pool().resets_ahead() == 0);
  }
}

// A worker's exception reaches the caller after its batch completes, and the pool is usable
// afterwards (the next reset and steps behave).
void fault_recovery(int num_envs, int batch_size, int threads, AutoresetMode mode) {
  RunConfig cfg{num_envs, batch_size, threads, mode};
  cfg.fault_env = num_envs / 2;
  cfg.fault_step = 7;
  Harness h(cfg, 11);
  h.reset({});
  bool caught = false;
  for (int i = 0; i < 200 && !caught; ++i) {
    if (mode == AutoresetMode::kDisabled && h.reset_ended()) continue;
    h.send();
    try {
      h.receive();
    } catch (const std::runtime_error& err) {
      CHECK(std::string(err.what()).find("injected fault") != std::string::npos);
      caught = true;
    }
  }
  CHECK_MSG(caught, "the injected fault never reached the caller");
  // The error was reported once: stepping on (without a reset) raises nothing more.
  h.set_compare(false);
  for (int i = 0; i < 10; ++i) {
    if (mode == AutoresetMode::kDisabled && h.reset_ended()) continue;
    h.send();
    h.receive();
  }
  h.resync();
  h.set_compare(true);
  h.reset({});
  for (int i = 0; i < 50; ++i) {
    if (mode == AutoresetMode::kDisabled && h.reset_ended()) continue;
    h.send();
    h.receive();
  }
  h.check_counts();
}

// A reset that throws. Run inline, it reaches the caller once; run ahead in the background,
// it is retried inline by the step that needs it, so it may not show at all. Either way no
// row is lost, nothing hangs, and the env goes on.
void reset_fault_recovery() {
  for (int threads : {1, 2, 3}) {
    for (int64_t nth : {2, 3, 4, 6}) {
      RunConfig cfg{4, 4, threads, AutoresetMode::kNextStep};
      cfg.fault_env = 1;
      cfg.fault_reset = nth;
      Harness h(cfg, static_cast<unsigned>(13 + nth));
      h.set_compare(false);
      h.reset({});
      int errors = 0;
      for (int i = 0; i < 60; ++i) {
        h.send();
        try {
          h.receive();
        } catch (const std::runtime_error& err) {
          CHECK(std::string(err.what()).find("injected reset fault") != std::string::npos);
          ++errors;
        }
      }
      CHECK_MSG(errors <= 1, std::to_string(errors) + " errors from one failed reset");
      h.resync();
      h.set_compare(true);
      h.reset({});
      for (int i = 0; i < 30; ++i) {
        h.send();
        h.receive();
      }
      h.check_counts();
    }
  }
}

// Slow steps: wait_batch() and quiesce() time out and return false, then succeed.
void timeouts() {
  // One env, so the only batch out is the slow step's (with more envs another env's reset
  // result could complete the next batch at once).
  RunConfig cfg{1, 1, 2, AutoresetMode::kNextStep};
  cfg.slow_step_us = 200000;
  cfg.caller_runs_tasks = false;  // else the caller may run the slow step itself
  Harness h(cfg, 3);
  h.reset({});
  h.send();
  CHECK(!h.pool().wait_batch(std::chrono::milliseconds(5)));
  CHECK(!h.pool().quiesce(std::chrono::milliseconds(5)));
  h.receive();
  h.check_counts();
}

// The thread in wait_batch() runs steps too, in sync and in async mode. One worker and
// eight slow steps: while the worker is inside its first step, the caller takes others from
// the queue. Switched off, the caller never runs one.
void caller_runs_tasks() {
  for (int batch : {8, 4}) {
    for (bool runs : {true, false}) {
      RunConfig cfg{8, batch, 1, AutoresetMode::kNextStep};
      cfg.slow_step_us = 5000;
      cfg.caller_runs_tasks = runs;
      Harness h(cfg, 5);
      CHECK(h.pool().caller_runs_tasks() == runs);
      h.reset({});
      int by_caller = 0;
      for (int b = 0; b < 4; ++b) {
        h.send();
        h.receive();
        // Only the envs just received: in async mode the others may be stepping now.
        for (int32_t e : h.last_ids()) {
          by_caller += h.pool().env(e).step_thread() == std::this_thread::get_id() ? 1 : 0;
        }
      }
      CHECK_MSG(runs ? by_caller > 0 : by_caller == 0,
                "batch " + std::to_string(batch) + ": the caller ran " + std::to_string(by_caller) +
                    " steps");
      h.check_counts();
    }
  }
}

// Destroying the pool with tasks queued and running must neither hang nor touch freed
// memory (the sanitizer builds check the latter).
void destroy_in_flight() {
  for (int k = 0; k < 20; ++k) {
    RunConfig cfg{8, 3, 4, AutoresetMode::kSameStep};
    cfg.slow_step_us = k % 2 ? 300 : 0;
    Harness h(cfg, static_cast<unsigned>(k));
    h.reset({});
    h.send();
    if (k % 3 == 0) {
      h.receive();
      h.send();
    }
    if (k % 4 == 0) h.pool().close();  // explicit close, then the destructor's no-op close
  }
}

}  // namespace

int main() {
  t::start_watchdog(900);
  const long scale = t::env_long("ATARI_VEC_TEST_SCALE", 1);
  const long iterations = t::env_long("ATARI_VEC_POOL_ITERATIONS", 5000 * scale);
  const auto start = Clock::now();

  t::stage() = "timeouts";
  timeouts();
  t::stage() = "reset fault recovery";
  reset_fault_recovery();
  t::stage() = "caller runs tasks";
  caller_runs_tasks();
  t::stage() = "destroy in flight";
  destroy_in_flight();
  t::stage() = "fault recovery";
  for (AutoresetMode m : {AutoresetMode::kNextStep, AutoresetMode::kSameStep}) {
    fault_recovery(5, 2, 3, m);
    fault_recovery(4, 4, 2, m);
  }
  fault_recovery(3, 3, 2, AutoresetMode::kDisabled);

  struct Shape {
    int envs, batch, threads, affinity;
  };
  const Shape shapes[] = {
      {1, 1, 1, -1}, {1, 1, 3, -1}, {2, 1, 1, -1}, {2, 2, 2, 0},  {3, 1, 2, -1},
      {3, 2, 4, -1}, {4, 4, 1, -1}, {5, 2, 2, 0},  {5, 4, 3, -1}, {8, 1, 8, -1},
      {8, 3, 2, -1}, {8, 8, 4, -1}, {16, 5, 3, -1}, {16, 15, 2, -1}, {33, 7, 4, -1},
      {33, 33, 2, -1}};
  long runs = 0;
  t::stage() = "main runs";
  for (AutoresetMode mode : {AutoresetMode::kNextStep, AutoresetMode::kSameStep, AutoresetMode::kDisabled}) {
    for (const Shape& s : shapes) {
      RunConfig cfg{s.envs, s.batch, s.threads, mode, s.affinity};
      run(cfg, iterations, static_cast<unsigned>(s.envs * 1000 + s.batch * 10 + s.threads + runs));
      ++runs;
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  CHECK(total_resets_ahead() > 0);
  std::printf("test_pool: OK (%ld runs x %ld iterations, %lld resets ran ahead, %lld handed off, %.1f s)\n",
              runs, iterations, static_cast<long long>(total_resets_ahead()),
              static_cast<long long>(total_handoffs()), seconds);
  return 0;
}
