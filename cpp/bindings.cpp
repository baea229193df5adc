// bindings.cpp: the only file that sees pybind11. Marshals NumPy arrays to the engine,
// owns the output arrays, releases the GIL around every blocking call, and turns Ctrl-C
// into KeyboardInterrupt between short waits. No environment logic lives here.
//
// Output ownership: recv()/reset() return the arrays of one result block. Before a block is
// handed back to the workers, each array is checked: if anything besides this object still
// references it, it is left to the caller and a fresh array takes its place. So returned
// arrays are never overwritten while held, and nothing is allocated when they are not.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <ale/ale_interface.hpp>

#include <algorithm>
#include <chrono>
#include <unistd.h>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "vector_env.hpp"

namespace py = pybind11;
using namespace atari_vec;

namespace {

constexpr auto kWaitSlice = std::chrono::milliseconds(50);

struct BlockArrays {
  py::array obs, reward, terminated, truncated, env_id, lives, frame_number, episode_frame_number;
  py::array raw_reward, game_ended, elapsed_step;
  py::array episode_return, episode_length, episode_mask;
  py::array final_obs, final_mask, final_lives, final_frame_number, final_episode_frame_number;
};

template <typename T>
void keep_or_renew(py::array& a, const std::vector<py::ssize_t>& shape) {
  // A default py::array is an empty placeholder; real blocks have B >= 1 rows.
  if (a.size() == 0 || a.ref_count() > 1) {
    a = py::array_t<T>(shape);
    // Touch the pages here, on the caller thread, so workers never take first-touch faults.
    std::memset(a.mutable_data(), 0, static_cast<std::size_t>(a.nbytes()));
  }
}

template <typename T>
T* ptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}

// Blocks (GIL released) until `ready()` returns true, checking for signals between slices
// and giving up with RuntimeError if `closed()` (close() from another thread). A negative
// timeout waits without limit. The GIL is released and re-taken by hand, not by a scoped
// guard: a daemon thread that re-takes it while the interpreter exits is ended with a forced
// unwind, which must not start inside a (noexcept) destructor.
template <typename Ready, typename Closed>
void wait_interruptibly(Ready ready, Closed closed, double timeout_s, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    PyThreadState* state = PyEval_SaveThread();
    const bool done = ready();
    PyEval_RestoreThread(state);
    if (done) return;
    if (closed()) {
      throw std::runtime_error(std::string(what) + "() interrupted: the environment was closed");
    }
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (timeout_s >= 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= timeout_s) {
      PyErr_SetString(PyExc_TimeoutError, (std::string(what) + "() timed out").c_str());
      throw py::error_already_set();
    }
  }
}

class PyVectorEnv {
 public:
  PyVectorEnv(const std::vector<EnvConfig>& envs, const PoolConfig& pool, bool episode_info)
      : episode_info_(episode_info) {
    if (envs.empty()) throw py::value_error("num_envs must be positive, got 0");
    {
      py::gil_scoped_release release;
      core_ = make_vector_env(envs, pool);
    }
    const py::ssize_t b = core_->batch_size();
    obs_shape_ = {b};
    for (int d : core_->env(0).config().observation_shape()) obs_shape_.push_back(d);
    row_shape_ = {b};
    same_step_ = core_->autoreset_mode() == AutoresetMode::kSameStep;
    blocks_.resize(static_cast<std::size_t>(core_->num_blocks()));
    // Per-env sends may name every env at once.
    actions_.resize(static_cast<std::size_t>(core_->num_envs()));
    strengths_.resize(static_cast<std::size_t>(core_->num_envs()));
    ids_.resize(static_cast<std::size_t>(core_->num_envs()));
    seeds_.resize(static_cast<std::size_t>(core_->num_envs()));
  }

  // Workers may still be writing into the block arrays: stop and join them before the
  // arrays (declared after core_, so destroyed first) are released.
  ~PyVectorEnv() {
    if (forked()) {
      // The workers live in the parent; their mutexes may be held forever here and there
      // is nothing to join. Leaking the pool is the only safe thing a forked child can do.
      (void)core_.release();
      return;
    }
    if (core_) {
      py::gil_scoped_release release;
      core_->close();
    }
  }
  PyVectorEnv(const PyVectorEnv&) = delete;
  PyVectorEnv& operator=(const PyVectorEnv&) = delete;

  py::tuple reset(py::array_t<int32_t, py::array::c_style | py::array::forcecast> env_ids,
                  py::array_t<int64_t, py::array::c_style | py::array::forcecast> seeds,
                  double timeout_s) {
    check_open();
    const int n = core_->num_envs();
    if (env_ids.ndim() != 1 || seeds.ndim() != 1 || env_ids.shape(0) != seeds.shape(0)) {
      throw py::value_error("env_ids and seeds must be 1-D and of equal length");
    }
    const int count = static_cast<int>(env_ids.shape(0));
    std::vector<char> seen(static_cast<std::size_t>(n), 0);
    for (int i = 0; i < count; ++i) {
      const int32_t e = env_ids.at(i);
      if (e < 0 || e >= n) throw py::value_error("env id " + std::to_string(e) + " out of range");
      if (seen[static_cast<std::size_t>(e)]++) throw py::value_error("duplicate env id " + std::to_string(e));
      const int64_t s = seeds.at(i);
      if (s < -1 || s > 0x7fffffff) {
        throw py::value_error("seeds must be in [0, 2**31 - 1], got " + std::to_string(s));
      }
    }
    if (count != n && !core_->started()) {
      throw py::value_error("the first reset() must reset every environment");
    }
    if (count != n && core_->batch_size() != n) {
      throw py::value_error("reset_mask needs batch_size == num_envs (synchronous mode)");
    }
    // Let in-flight steps finish; their results are dropped.
    wait_interruptibly([this] { return core_->quiesce(kWaitSlice); }, [this] { return closed(); },
                       timeout_s, "reset");
    for (int b = 0; b < core_->num_blocks(); ++b) prepare(b);
    core_->reset(env_ids.data(), seeds.data(), count);
    py::tuple r = receive(timeout_s);
    return py::make_tuple(r[0], r[4]);
  }

  // Snapshots of idle envs: (len(env_ids), state_size) uint8 rows.
  py::array_t<uint8_t> clone_states(py::array_t<int32_t, py::array::c_style | py::array::forcecast> env_ids,
                                    bool include_rng) {
    check_open();
    if (!core_->started()) throw std::runtime_error("clone_states() called before reset()");
    if (env_ids.ndim() != 1) throw py::value_error("env_ids must be 1-D");
    const py::ssize_t count = env_ids.shape(0);
    const std::size_t width = core_->snapshot_bytes();
    py::array_t<uint8_t> out({count, static_cast<py::ssize_t>(width)});
    uint8_t* dst = out.mutable_data();
    {
      py::gil_scoped_release release;
      core_->clone_states(env_ids.data(), static_cast<int>(count), include_rng, dst);
    }
    return out;
  }

  void restore_states(const py::array_t<uint8_t, py::array::c_style>& states,
                      py::array_t<int32_t, py::array::c_style | py::array::forcecast> env_ids) {
    check_open();
    if (!core_->started()) throw std::runtime_error("restore_states() called before reset()");
    const std::size_t width = core_->snapshot_bytes();
    if (env_ids.ndim() != 1) throw py::value_error("env_ids must be 1-D");
    const py::ssize_t count = env_ids.shape(0);
    if (states.ndim() != 2 || states.shape(0) != count ||
        states.shape(1) != static_cast<py::ssize_t>(width)) {
      throw py::value_error("expected states of shape (" + std::to_string(count) + ", " +
                            std::to_string(width) + "), got " + shape_string(states));
    }
    const uint8_t* rows = states.data();
    py::gil_scoped_release release;
    core_->restore_states(rows, env_ids.data(), static_cast<int>(count));
  }

  std::size_t state_size() const { return core_->snapshot_bytes(); }

  // Batched planning: every array is made (or checked) by the Python layer; here only what
  // the engine relies on is checked again (dtypes, C order, lengths, action range).
  void step_states(const py::array& states, const py::array& actions, const py::object& strengths,
                   const py::array& steps, bool include_rng, const py::object& states_out,
                   py::array obs, py::array reward, py::array terminated, py::array truncated,
                   py::array lives, py::array frame_number, py::array episode_frame_number,
                   py::array steps_taken) {
    check_open();
    const std::size_t width = core_->snapshot_bytes();
    const py::ssize_t n = states.ndim() == 2 ? states.shape(0) : -1;
    auto require = [n](const py::array& a, const py::dtype& dt, const char* name, py::ssize_t row) {
      const bool ok = a.dtype().is(dt) && (a.flags() & py::array::c_style) && a.ndim() >= 1 &&
                      a.shape(0) == n && a.nbytes() == n * row * static_cast<py::ssize_t>(dt.itemsize()) &&
                      a.writeable();
      if (!ok) throw py::value_error(std::string(name) + ": wrong dtype, shape or layout");
    };
    if (n < 0 || states.shape(1) != static_cast<py::ssize_t>(width) ||
        !states.dtype().is(py::dtype::of<uint8_t>()) || !(states.flags() & py::array::c_style)) {
      throw py::value_error("states must be a C-ordered uint8 array of shape (n, " +
                            std::to_string(width) + ")");
    }
    auto check_in = [n](const py::array& a, const py::dtype& dt, const char* name) {
      if (!a.dtype().is(dt) || !(a.flags() & py::array::c_style) || a.ndim() != 1 || a.shape(0) != n) {
        throw py::value_error(std::string(name) + ": expected a C-ordered 1-D array of length " +
                              std::to_string(n));
      }
    };
    check_in(actions, py::dtype::of<int32_t>(), "actions");
    check_in(steps, py::dtype::of<int32_t>(), "dt");
    const int num_actions = static_cast<int>(core_->env(0).action_set().size());
    const int32_t* a = static_cast<const int32_t*>(actions.data());
    const int32_t* s = static_cast<const int32_t*>(steps.data());
    for (py::ssize_t i = 0; i < n; ++i) {
      if (a[i] < 0 || a[i] >= num_actions) {
        throw py::value_error("action " + std::to_string(a[i]) + " of walker " + std::to_string(i) +
                              " is out of range [0, " + std::to_string(num_actions) + ")");
      }
      if (s[i] < 1) throw py::value_error("dt must be >= 1, got " + std::to_string(s[i]));
    }
    PlanJob job;
    job.states = static_cast<const uint8_t*>(states.data());
    job.width = width;
    job.count = n;
    job.actions = a;
    job.steps = s;
    if (!strengths.is_none()) {
      const py::array st = strengths.cast<py::array>();
      check_in(st, py::dtype::of<float>(), "paddle_strengths");
      job.strengths = static_cast<const float*>(st.data());
    }
    job.include_rng = include_rng;
    if (!states_out.is_none()) {
      py::array so = states_out.cast<py::array>();
      require(so, py::dtype::of<uint8_t>(), "states_out", static_cast<py::ssize_t>(width));
      job.states_out = static_cast<uint8_t*>(so.mutable_data());
    }
    const std::size_t obs_bytes = core_->env(0).observation_bytes();
    require(obs, py::dtype::of<uint8_t>(), "obs", static_cast<py::ssize_t>(obs_bytes));
    job.obs = static_cast<uint8_t*>(obs.mutable_data());
    job.obs_bytes = obs_bytes;
    require(reward, py::dtype::of<int32_t>(), "reward", 1);
    require(terminated, py::dtype::of<bool>(), "terminated", 1);
    require(truncated, py::dtype::of<bool>(), "truncated", 1);
    require(lives, py::dtype::of<int32_t>(), "lives", 1);
    require(frame_number, py::dtype::of<int32_t>(), "frame_number", 1);
    require(episode_frame_number, py::dtype::of<int32_t>(), "episode_frame_number", 1);
    require(steps_taken, py::dtype::of<int32_t>(), "steps_taken", 1);
    job.reward = static_cast<int32_t*>(reward.mutable_data());
    job.terminated = static_cast<uint8_t*>(terminated.mutable_data());
    job.truncated = static_cast<uint8_t*>(truncated.mutable_data());
    job.lives = static_cast<int32_t*>(lives.mutable_data());
    job.frame_number = static_cast<int32_t*>(frame_number.mutable_data());
    job.episode_frame_number = static_cast<int32_t*>(episode_frame_number.mutable_data());
    job.steps_taken = static_cast<int32_t*>(steps_taken.mutable_data());
    {
      py::gil_scoped_release release;
      core_->start_plan(job);
    }
    try {
      // Not stopped by close() from another thread: close() ends the job itself (vector_env.hpp).
      wait_interruptibly([this] { return core_->wait_plan(kWaitSlice); }, [] { return false; }, -1.0,
                         "step_states");
    } catch (...) {
      // Ctrl-C: no more walkers; the tasks running finish theirs and put their envs back.
      core_->stop_plan();
      {
        py::gil_scoped_release release;
        while (!core_->wait_plan(kWaitSlice)) {
        }
      }
      try {
        core_->finish_plan();
      } catch (...) {
      }
      throw;
    }
    core_->finish_plan();
  }

  // The env ids of a per-env call into ids_ (integers of any dtype; ranges are the engine's).
  int read_ids(const py::object& env_ids) {
    const py::array ids = py::array::ensure(env_ids);
    if (!ids || ids.ndim() != 1 || (ids.dtype().kind() != 'i' && ids.dtype().kind() != 'u')) {
      throw py::type_error("env_ids must be a 1-D array of integers");
    }
    const py::ssize_t n = ids.shape(0);
    if (n < 1 || n > core_->num_envs()) {
      throw py::value_error("expected 1 to " + std::to_string(core_->num_envs()) + " env ids, got " +
                            std::to_string(n));
    }
    const py::array_t<int64_t, py::array::forcecast> as64(ids);
    for (py::ssize_t i = 0; i < n; ++i) {
      const int64_t e = as64.at(i);
      if (e < 0 || e >= core_->num_envs()) {
        throw py::value_error("env id " + std::to_string(e) + " is out of range [0, " +
                              std::to_string(core_->num_envs()) + ")");
      }
      ids_[static_cast<std::size_t>(i)] = static_cast<int32_t>(e);
    }
    return static_cast<int>(n);
  }

  void send(const py::array& actions, const py::object& strengths, const py::object& env_ids,
            bool wake) {
    check_open();
    if (!core_->started()) throw std::runtime_error("send() called before reset()");
    const bool per_env = !env_ids.is_none();
    if (!per_env && !core_->awaiting_send()) {
      throw std::runtime_error("send() called twice without recv() in between");
    }
    const py::ssize_t b = per_env ? read_ids(env_ids) : core_->batch_size();
    if (actions.ndim() != 1 || actions.shape(0) != b) {
      throw py::value_error("expected actions of shape (" + std::to_string(b) + ",), got " +
                            shape_string(actions));
    }
    const int num_actions = static_cast<int>(core_->env(0).action_set().size());
    const char kind = actions.dtype().kind();
    if (kind != 'i' && kind != 'u') {
      throw py::type_error("actions must be integers, got dtype " +
                           std::string(py::str(actions.dtype())));
    }
    const auto store = [&](py::ssize_t i, int64_t a) {
      if (a < 0 || a >= num_actions) {
        throw py::value_error("action " + std::to_string(a) + " at index " + std::to_string(i) +
                              " is out of range [0, " + std::to_string(num_actions) + ")");
      }
      actions_[static_cast<std::size_t>(i)] = static_cast<int32_t>(a);
    };
    // int64 and int32 (what samplers and the continuous mapping produce) are read in place;
    // other integer dtypes are converted, which allocates.
    if (kind == 'i' && actions.itemsize() == 8) {
      const auto v = actions.unchecked<int64_t, 1>();
      for (py::ssize_t i = 0; i < b; ++i) store(i, v(i));
    } else if (kind == 'i' && actions.itemsize() == 4) {
      const auto v = actions.unchecked<int32_t, 1>();
      for (py::ssize_t i = 0; i < b; ++i) store(i, v(i));
    } else {
      // Unsigned values beyond int64 wrap negative and are rejected too.
      const py::array_t<int64_t, py::array::forcecast> as64(actions);
      for (py::ssize_t i = 0; i < b; ++i) store(i, as64.at(i));
    }
    const float* strength_ptr = nullptr;
    if (!strengths.is_none()) {
      auto s = py::array_t<float, py::array::forcecast>::ensure(strengths);
      if (!s || s.ndim() != 1 || s.shape(0) != b) {
        throw py::value_error("paddle strengths must have shape (" + std::to_string(b) + ",)");
      }
      for (py::ssize_t i = 0; i < b; ++i) {
        const float v = s.at(i);
        if (!std::isfinite(v)) throw py::value_error("paddle strength must be finite");
        strengths_[static_cast<std::size_t>(i)] = v;
      }
      strength_ptr = strengths_.data();
    }
    if (per_env) {
      core_->send(ids_.data(), actions_.data(), strength_ptr, static_cast<int>(b), wake);
    } else {
      core_->send(actions_.data(), strength_ptr, wake);
    }
  }

  void send_reset(const py::object& env_ids, py::array_t<int64_t, py::array::c_style | py::array::forcecast> seeds) {
    check_open();
    if (!core_->started()) throw std::runtime_error("send_reset() called before reset()");
    const int n = read_ids(env_ids);
    if (seeds.ndim() != 1 || seeds.shape(0) != n) {
      throw py::value_error("expected one seed (or -1) per env id");
    }
    for (int i = 0; i < n; ++i) {
      const int64_t s = seeds.at(i);
      if (s < -1 || s > 0x7fffffff) {
        throw py::value_error("seeds must be in [0, 2**31 - 1], got " + std::to_string(s));
      }
      seeds_[static_cast<std::size_t>(i)] = s;
    }
    core_->reset_envs(ids_.data(), seeds_.data(), n);
  }

  bool poll() const { return core_ && !core_->closed() && core_->batch_ready(); }

  py::tuple recv(double timeout_s) {
    check_open();
    if (!core_->started()) throw std::runtime_error("recv() called before reset()");
    if (core_->outstanding() < core_->batch_size()) {
      throw std::runtime_error(
          "recv() called without a matching send(): it returns batch_size=" +
          std::to_string(core_->batch_size()) + " results, and " + std::to_string(core_->outstanding()) +
          " are in flight");
    }
    return receive(timeout_s);
  }

  void close() {
    if (!core_ || forked()) return;
    py::gil_scoped_release release;
    core_->close();
  }

  // Full-colour screens (len(env_ids), 210, 160, 3) of idle environments.
  py::array render(py::array_t<int32_t, py::array::c_style | py::array::forcecast> env_ids) {
    check_open();
    if (!core_->started()) throw std::runtime_error("render() called before reset()");
    const AtariEnv& first = core_->env(0);
    py::array_t<uint8_t> out({env_ids.size(), static_cast<py::ssize_t>(first.screen_height()),
                              static_cast<py::ssize_t>(first.screen_width()), py::ssize_t{3}});
    const std::size_t frame = static_cast<std::size_t>(first.screen_height()) * first.screen_width() * 3;
    for (py::ssize_t i = 0; i < env_ids.size(); ++i) {
      const int32_t e = env_ids.data()[i];
      if (e < 0 || e >= core_->num_envs()) throw py::value_error("env id " + std::to_string(e) + " out of range");
      core_->render_rgb(e, out.mutable_data() + static_cast<std::size_t>(i) * frame);
    }
    return out;
  }

  // The RAM (128 bytes) of idle environments.
  py::array ram(py::array_t<int32_t, py::array::c_style | py::array::forcecast> env_ids) {
    check_open();
    if (!core_->started()) throw std::runtime_error("get_ram() called before reset()");
    py::array_t<uint8_t> out({env_ids.size(), static_cast<py::ssize_t>(kRamBytes)});
    for (py::ssize_t i = 0; i < env_ids.size(); ++i) {
      const int32_t e = env_ids.data()[i];
      if (e < 0 || e >= core_->num_envs()) throw py::value_error("env id " + std::to_string(e) + " out of range");
      core_->read_ram(e, out.mutable_data() + static_cast<std::size_t>(i) * kRamBytes);
    }
    return out;
  }

  bool closed() const { return !core_ || core_->closed(); }
  int num_envs() const { return core_->num_envs(); }
  int batch_size() const { return core_->batch_size(); }
  int num_threads() const { return core_->num_threads(); }
  std::vector<int> worker_cpus() const { return core_->worker_cpus(); }
  int64_t resets_ahead() const { return core_->resets_ahead(); }
  bool caller_runs_tasks() const { return core_->caller_runs_tasks(); }
  std::vector<int> action_set() const { return core_->env(0).action_set(); }
  std::vector<int> available_modes() const { return core_->env(0).available_modes(); }
  std::vector<int> available_difficulties() const { return core_->env(0).available_difficulties(); }

 private:
  bool forked() const { return getpid() != owner_pid_; }

  void check_open() const {
    if (forked()) {
      throw std::runtime_error(
          "this environment was created in another process (before fork()); its worker "
          "threads do not exist here. Create a new environment in this process.");
    }
    if (closed()) throw std::runtime_error("the environment is closed");
  }

  static std::string shape_string(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += std::to_string(a.shape(i)) + (a.ndim() == 1 ? "," : i + 1 < a.ndim() ? ", " : "");
    return s + ")";
  }

  void prepare(int block) {
    BlockArrays& a = blocks_[static_cast<std::size_t>(block)];
    keep_or_renew<uint8_t>(a.obs, obs_shape_);
    keep_or_renew<int32_t>(a.reward, row_shape_);
    keep_or_renew<bool>(a.terminated, row_shape_);
    keep_or_renew<bool>(a.truncated, row_shape_);
    keep_or_renew<int32_t>(a.env_id, row_shape_);
    keep_or_renew<int32_t>(a.lives, row_shape_);
    keep_or_renew<int32_t>(a.frame_number, row_shape_);
    keep_or_renew<int32_t>(a.episode_frame_number, row_shape_);
    keep_or_renew<int32_t>(a.raw_reward, row_shape_);
    keep_or_renew<bool>(a.game_ended, row_shape_);
    keep_or_renew<int32_t>(a.elapsed_step, row_shape_);
    keep_or_renew<float>(a.episode_return, row_shape_);
    keep_or_renew<int32_t>(a.episode_length, row_shape_);
    keep_or_renew<bool>(a.episode_mask, row_shape_);
    BatchBuffers buf;
    buf.obs = ptr<uint8_t>(a.obs);
    buf.reward = ptr<int32_t>(a.reward);
    buf.terminated = ptr<bool>(a.terminated);
    buf.truncated = ptr<bool>(a.truncated);
    buf.env_id = ptr<int32_t>(a.env_id);
    buf.lives = ptr<int32_t>(a.lives);
    buf.frame_number = ptr<int32_t>(a.frame_number);
    buf.episode_frame_number = ptr<int32_t>(a.episode_frame_number);
    buf.raw_reward = ptr<int32_t>(a.raw_reward);
    buf.game_ended = ptr<bool>(a.game_ended);
    buf.elapsed_step = ptr<int32_t>(a.elapsed_step);
    buf.episode_return = ptr<float>(a.episode_return);
    buf.episode_length = ptr<int32_t>(a.episode_length);
    buf.episode_mask = ptr<bool>(a.episode_mask);
    if (same_step_) {
      keep_or_renew<uint8_t>(a.final_obs, obs_shape_);
      keep_or_renew<bool>(a.final_mask, row_shape_);
      keep_or_renew<int32_t>(a.final_lives, row_shape_);
      keep_or_renew<int32_t>(a.final_frame_number, row_shape_);
      keep_or_renew<int32_t>(a.final_episode_frame_number, row_shape_);
      buf.final_obs = ptr<uint8_t>(a.final_obs);
      buf.final_mask = ptr<bool>(a.final_mask);
      buf.final_lives = ptr<int32_t>(a.final_lives);
      buf.final_frame_number = ptr<int32_t>(a.final_frame_number);
      buf.final_episode_frame_number = ptr<int32_t>(a.final_episode_frame_number);
    }
    core_->prepare_block(block, buf);
  }

  static bool any_set(const py::array& mask) {
    const bool* m = static_cast<const bool*>(mask.data());
    return std::any_of(m, m + mask.size(), [](bool b) { return b; });
  }

  py::tuple receive(double timeout_s) {
    wait_interruptibly([this] { return core_->wait_batch(kWaitSlice); }, [this] { return closed(); },
                       timeout_s, "recv");
    const int block = core_->finish_batch();
    prepare(core_->block_to_refill(block));
    core_->rethrow_worker_error();
    BlockArrays& a = blocks_[static_cast<std::size_t>(block)];
    const InfoKeys& k = keys_;
    py::dict info;
    info[k.env_id] = a.env_id;
    info[k.lives] = a.lives;
    info[k.frame_number] = a.frame_number;
    info[k.episode_frame_number] = a.episode_frame_number;
    info[k.reward] = a.raw_reward;
    info[k.terminated] = a.game_ended;
    info[k.elapsed_step] = a.elapsed_step;
    if (episode_info_ && any_set(a.episode_mask)) {
      py::dict episode;
      episode[k.r] = a.episode_return;
      episode[k.l] = a.episode_length;
      info[k.episode] = episode;
      info[k.episode_mask] = a.episode_mask;
    }
    if (same_step_) {
      if (any_set(a.final_mask)) {
        py::dict final_info;
        final_info["env_id"] = a.env_id;
        final_info["_env_id"] = a.final_mask;
        final_info["lives"] = a.final_lives;
        final_info["_lives"] = a.final_mask;
        final_info["frame_number"] = a.final_frame_number;
        final_info["_frame_number"] = a.final_mask;
        final_info["episode_frame_number"] = a.final_episode_frame_number;
        final_info["_episode_frame_number"] = a.final_mask;
        info["final_obs"] = a.final_obs;
        info["_final_obs"] = a.final_mask;
        info["final_info"] = final_info;
        info["_final_info"] = a.final_mask;
      }
    }
    return py::make_tuple(a.obs, a.reward, a.terminated, a.truncated, info);
  }

  std::unique_ptr<VectorEnv> core_;
  pid_t owner_pid_ = getpid();
  std::vector<BlockArrays> blocks_;
  std::vector<py::ssize_t> obs_shape_;
  std::vector<py::ssize_t> row_shape_;
  std::vector<int32_t> actions_;
  std::vector<float> strengths_;
  std::vector<int32_t> ids_;
  std::vector<int64_t> seeds_;
  bool same_step_ = false;
  bool episode_info_ = true;  // info["episode"] / info["_episode"] on the steps that end one
  // The keys of every batch's info dict, made once (not a new str per key per recv).
  struct InfoKeys {
    py::str env_id{"env_id"}, lives{"lives"}, frame_number{"frame_number"},
        episode_frame_number{"episode_frame_number"}, reward{"reward"}, terminated{"terminated"},
        elapsed_step{"elapsed_step"}, episode{"episode"}, episode_mask{"_episode"}, r{"r"}, l{"l"};
  } keys_;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "atari_vec native engine (private; use atari_vec.AtariVectorEnv)";
  m.attr("__version__") = ATARI_VEC_VERSION;
  m.attr("ALE_VERSION") = ALE_VERSION;
  m.attr("HAVE_OPENCV") = have_opencv();
#ifdef ATARI_VEC_ALE_PATCHED
  m.attr("ALE_PATCHED") = true;
#else
  m.attr("ALE_PATCHED") = false;
#endif

  py::enum_<AutoresetMode>(m, "AutoresetMode")
      .value("NEXT_STEP", AutoresetMode::kNextStep)
      .value("SAME_STEP", AutoresetMode::kSameStep)
      .value("DISABLED", AutoresetMode::kDisabled);

  py::enum_<ObsType>(m, "ObsType")
      .value("GRAYSCALE", ObsType::kGrayscale)
      .value("RGB", ObsType::kRGB)
      .value("RAM", ObsType::kRAM);

  py::enum_<Seeding>(m, "Seeding")
      .value("GYMNASIUM", Seeding::kGymnasium)
      .value("ALE_PY", Seeding::kAlePy);

  py::class_<EnvConfig>(m, "EnvConfig")
      .def(py::init<>())
      .def(py::init<const EnvConfig&>(), py::arg("other"), "A copy of `other`.")
      .def_readwrite("rom_path", &EnvConfig::rom_path)
      .def_readwrite("frameskip", &EnvConfig::frameskip)
      .def_readwrite("stochastic_frameskip", &EnvConfig::stochastic_frameskip)
      .def_readwrite("frameskip_max", &EnvConfig::frameskip_max)
      .def_readwrite("maxpool", &EnvConfig::maxpool)
      .def_readwrite("obs_type", &EnvConfig::obs_type)
      .def_readwrite("channels_last", &EnvConfig::channels_last)
      .def_readwrite("grayscale_newaxis", &EnvConfig::grayscale_newaxis)
      .def_readwrite("raw", &EnvConfig::raw)
      .def_readwrite("stop_at_game_over", &EnvConfig::stop_at_game_over)
      .def_readwrite("seeding", &EnvConfig::seeding)
      .def_readwrite("img_height", &EnvConfig::img_height)
      .def_readwrite("img_width", &EnvConfig::img_width)
      .def_readwrite("stack_num", &EnvConfig::stack_num)
      .def_readwrite("noop_max", &EnvConfig::noop_max)
      .def_readwrite("use_fire_reset", &EnvConfig::use_fire_reset)
      .def_readwrite("episodic_life", &EnvConfig::episodic_life)
      .def_readwrite("life_loss_info", &EnvConfig::life_loss_info)
      .def_readwrite("reward_clipping", &EnvConfig::reward_clipping)
      .def_readwrite("max_num_frames_per_episode", &EnvConfig::max_num_frames_per_episode)
      .def_readwrite("repeat_action_probability", &EnvConfig::repeat_action_probability)
      .def_readwrite("full_action_space", &EnvConfig::full_action_space)
      .def_readwrite("all_actions", &EnvConfig::all_actions)
      .def_readwrite("mode", &EnvConfig::mode)
      .def_readwrite("difficulty", &EnvConfig::difficulty)
      .def_readwrite("fault_after_steps", &EnvConfig::fault_after_steps)
      .def("validate", &EnvConfig::validate)
      .def_property_readonly("observation_shape", &EnvConfig::observation_shape);

  py::class_<PoolConfig>(m, "PoolConfig")
      .def(py::init<>())
      .def_readwrite("num_envs", &PoolConfig::num_envs)
      .def_readwrite("batch_size", &PoolConfig::batch_size)
      .def_readwrite("num_threads", &PoolConfig::num_threads)
      .def_readwrite("thread_affinity_offset", &PoolConfig::thread_affinity_offset)
      .def_readwrite("autoreset_mode", &PoolConfig::autoreset_mode)
      .def_readwrite("reset_ahead", &PoolConfig::reset_ahead)
      .def_readwrite("caller_runs_tasks", &PoolConfig::caller_runs_tasks)
      .def_readwrite("idle_spin_us", &PoolConfig::idle_spin_us)
      .def("validate", &PoolConfig::validate);

  py::class_<PyVectorEnv>(m, "VectorEnv")
      .def(py::init<const std::vector<EnvConfig>&, const PoolConfig&, bool>(), py::arg("envs"),
           py::arg("pool"), py::arg("episode_info") = true)
      .def("reset", &PyVectorEnv::reset, py::arg("env_ids"), py::arg("seeds"), py::arg("timeout") = -1.0)
      .def("send", &PyVectorEnv::send, py::arg("actions"), py::arg("paddle_strengths") = py::none(),
           py::arg("env_ids") = py::none(), py::arg("wake") = true)
      .def("send_reset", &PyVectorEnv::send_reset, py::arg("env_ids"), py::arg("seeds"))
      .def("recv", &PyVectorEnv::recv, py::arg("timeout") = -1.0)
      .def("poll", &PyVectorEnv::poll)
      .def("close", &PyVectorEnv::close)
      .def("render", &PyVectorEnv::render, py::arg("env_ids"))
      .def("ram", &PyVectorEnv::ram, py::arg("env_ids"))
      .def("clone_states", &PyVectorEnv::clone_states, py::arg("env_ids"), py::arg("include_rng"))
      .def("restore_states", &PyVectorEnv::restore_states, py::arg("states"), py::arg("env_ids"))
      .def_property_readonly("state_size", &PyVectorEnv::state_size)
      .def("step_states", &PyVectorEnv::step_states, py::arg("states"), py::arg("actions"),
           py::arg("paddle_strengths"), py::arg("steps"), py::arg("include_rng"),
           py::arg("states_out"), py::arg("obs"), py::arg("reward"), py::arg("terminated"),
           py::arg("truncated"), py::arg("lives"), py::arg("frame_number"),
           py::arg("episode_frame_number"), py::arg("steps_taken"))
      .def_property_readonly("closed", &PyVectorEnv::closed)
      .def_property_readonly("num_envs", &PyVectorEnv::num_envs)
      .def_property_readonly("batch_size", &PyVectorEnv::batch_size)
      .def_property_readonly("num_threads", &PyVectorEnv::num_threads)
      .def_property_readonly("worker_cpus", &PyVectorEnv::worker_cpus)
      .def_property_readonly("resets_ahead", &PyVectorEnv::resets_ahead)
      .def_property_readonly("caller_runs_tasks", &PyVectorEnv::caller_runs_tasks)
      .def_property_readonly("action_set", &PyVectorEnv::action_set)
      .def_property_readonly("available_modes", &PyVectorEnv::available_modes)
      .def_property_readonly("available_difficulties", &PyVectorEnv::available_difficulties);

  m.def("allowed_cpus", &allowed_cpus, "CPUs this process may run on.");
  // The native copies of NumPy's seeding, exposed so tests can hold them against NumPy.
  m.def(
      "reference_seeds",
      [](uint64_t seed) {
        const ReferenceSeeds s = reference_seeds(seed);
        return py::make_tuple(s.np_seed, s.ale_seed);
      },
      py::arg("seed"), "(np_seed, ale_seed) as ale-py's AtariEnv.seed_game derives them.");
  m.def(
      "pcg64_integers",
      [](uint64_t entropy, int64_t low, int64_t high, int count) {
        if (!(low < high) || high - low > (int64_t{1} << 32) || count < 0) {
          throw py::value_error("need low < high, high - low <= 2**32 and count >= 0");
        }
        Pcg64 rng;
        rng.seed(entropy);
        py::array_t<int64_t> out(count);
        for (int i = 0; i < count; ++i) out.mutable_data()[i] = rng.integers(low, high);
        return out;
      },
      py::arg("entropy"), py::arg("low"), py::arg("high"), py::arg("count"),
      "count draws of Generator(PCG64(SeedSequence(entropy))).integers(low, high).");
  m.def(
      "rom_supported",
      [](const std::string& path) {
        try {
          check_rom_supported(path);
          return true;
        } catch (const std::invalid_argument&) {
          return false;
        }
      },
      py::arg("path"), "Whether ALE has a game definition for the ROM file.");
  m.def("resize_supported", &resize_supported, py::arg("src_h"), py::arg("src_w"),
        py::arg("dst_h"), py::arg("dst_w"),
        "Whether this build can resize src_h x src_w frames to dst_h x dst_w (same size, the "
        "native kernel, or OpenCV when built with it).");
  m.def(
      "area_resize",
      [](py::array_t<uint8_t, py::array::c_style> src, int dst_h, int dst_w) {
        if (src.ndim() != 2 && !(src.ndim() == 3 && src.shape(2) == 3)) {
          throw py::value_error("src must be (h, w) or (h, w, 3) uint8");
        }
        const int h = static_cast<int>(src.shape(0)), w = static_cast<int>(src.shape(1));
        const int c = src.ndim() == 3 ? 3 : 1;
        if (dst_h <= 0 || dst_w <= 0) throw py::value_error("sizes must be positive");
        std::vector<py::ssize_t> shape = {dst_h, dst_w};
        if (c == 3) shape.push_back(3);
        py::array_t<uint8_t> out(shape);
        if (AreaResizer::supports(h, w, dst_h, dst_w)) {
          AreaResizer(h, w, dst_h, dst_w, c).run(src.data(), out.mutable_data());
        } else {  // without OpenCV this throws std::invalid_argument: ValueError
          resize_area(src.data(), h, w, out.mutable_data(), dst_h, dst_w, c);
        }
        return py::make_tuple(out, AreaResizer::supports(h, w, dst_h, dst_w));
      },
      py::arg("src"), py::arg("dst_h"), py::arg("dst_w"),
      "The resize the env uses: (image, True if the native kernel ran, False if cv::resize).");
}
