// vector_env.cpp: worker threads, task dispatch and autoreset.
#include "vector_env.hpp"

#include <pthread.h>
#include <sched.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>

#include "frame_ops.hpp"

namespace atari_vec {

std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  if (cpus.empty()) {
    const unsigned n = std::thread::hardware_concurrency();
    for (unsigned c = 0; c < (n ? n : 1); ++c) cpus.push_back(static_cast<int>(c));
  }
  return cpus;
}

VectorEnv::VectorEnv(const std::vector<EnvConfig>& envs, const PoolConfig& pool)
    : pool_(pool) {
  pool_.num_envs = static_cast<int>(envs.size());  // the env list is the truth
  pool_.validate();
  batch_size_ = pool_.effective_batch_size();
  init_frame_ops();
  envs_.reserve(envs.size());
  for (const EnvConfig& c : envs) {
    envs_.push_back(std::make_unique<AtariEnv>(c));
    const EnvConfig& first = envs_.front()->config();
    if (c.stacked_bytes() != first.stacked_bytes() || c.grayscale != first.grayscale) {
      throw std::invalid_argument("all environments must produce observations of one shape");
    }
  }
  stacked_bytes_ = static_cast<std::size_t>(envs_.front()->config().stacked_bytes());

  queue_ = std::make_unique<TaskQueue>(envs.size());
  const int ahead = (num_envs() + batch_size_ - 1) / batch_size_;
  ring_ = std::make_unique<ResultRing>(batch_size_, ahead + 2, batch_size_ == num_envs());
  task_scratch_.resize(envs.size());
  reset_scratch_.resize(envs.size());
  last_ids_.assign(static_cast<std::size_t>(batch_size_), 0);

  const std::vector<int> cpus = allowed_cpus();
  const int threads = pool_.num_threads > 0
                          ? pool_.num_threads
                          : std::min(num_envs(), static_cast<int>(cpus.size()));
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

VectorEnv::~VectorEnv() { close(); }

void VectorEnv::close() {
  if (closed_) return;
  closed_ = true;
  if (queue_) queue_->close();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
}

bool VectorEnv::quiesce(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (ring_->committed() < enqueued_) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ring_->restart();
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

void VectorEnv::reset(const int32_t* env_ids, const int64_t* seeds, int count) {
  if (enqueued_ != 0) throw std::logic_error("reset() needs quiesce() first");
  if (count != num_envs() && batch_size_ != num_envs()) {
    throw std::invalid_argument("a partial reset needs batch_size == num_envs");
  }
  std::vector<char>& is_reset = reset_scratch_;
  std::fill(is_reset.begin(), is_reset.end(), 0);
  int n = 0;
  for (int i = 0; i < count; ++i) {
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

void VectorEnv::send(const int32_t* actions, const float* strengths) {
  if (pool_.autoreset_mode == AutoresetMode::kDisabled) {
    // Sync mode (validated), so after recv no task runs and env state is safe to read here.
    std::string ended;
    for (int e = 0; e < num_envs(); ++e) {
      if (envs_[static_cast<std::size_t>(e)]->episode_over()) {
        ended += (ended.empty() ? "" : ", ") + std::to_string(e);
      }
    }
    if (!ended.empty()) {
      throw std::invalid_argument(
          "autoreset_mode is DISABLED and the episodes of environments [" + ended +
          "] are over; reset them with reset(options={'reset_mask': mask}) before stepping");
    }
  }
  for (int i = 0; i < batch_size_; ++i) {
    const int32_t e = last_ids_[static_cast<std::size_t>(i)];
    envs_[static_cast<std::size_t>(e)]->set_action(actions[i], strengths ? strengths[i] : 1.0f);
    task_scratch_[static_cast<std::size_t>(i)] = Task{e, TaskKind::kStep};
  }
  queue_->push_bulk(task_scratch_.data(), static_cast<std::size_t>(batch_size_));
  enqueued_ += batch_size_;
  awaiting_send_ = false;
}

bool VectorEnv::wait_batch(std::chrono::milliseconds timeout) {
  const int block = static_cast<int>(next_block_ % num_blocks());
  return ring_->wait_complete(block, timeout);
}

int VectorEnv::finish_batch() {
  const int block = static_cast<int>(next_block_ % num_blocks());
  ++next_block_;
  received_ += batch_size_;
  awaiting_send_ = true;
  // Rows are complete, so the env ids are final; read them from the caller's array.
  std::memcpy(last_ids_.data(), ring_->buffers(block).env_id, sizeof(int32_t) * batch_size_);
  return block;
}

void VectorEnv::rethrow_worker_error() {
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    std::swap(error, error_);
  }
  if (error) std::rethrow_exception(error);
}

bool VectorEnv::is_idle(int env_id) const {
  if (enqueued_ == received_) return true;  // nothing queued, running or unreceived
  if (!awaiting_send_) return false;
  for (int32_t e : last_ids_) {
    if (e == env_id) return true;  // received, and no action sent to it since
  }
  return false;
}

void VectorEnv::render_rgb(int env_id, uint8_t* dst) const {
  if (!is_idle(env_id)) {
    throw std::invalid_argument("environment " + std::to_string(env_id) +
                                " is being stepped; render it once its result is received");
  }
  envs_[static_cast<std::size_t>(env_id)]->render_rgb(dst);
}

void VectorEnv::worker_loop() {
  Task task;
  while (queue_->pop(task)) run_task(task);
}

void VectorEnv::run_task(const Task& task) {
  AtariEnv& env = *envs_[static_cast<std::size_t>(task.env_id)];
  const bool same_step = pool_.autoreset_mode == AutoresetMode::kSameStep;
  StepOutcome final_outcome;
  bool ended = false;     // SAME_STEP: this step ended the episode, reset follows here
  bool finished = false;  // this step ended the episode (any mode)
  try {
    switch (task.kind) {
      case TaskKind::kReset:
        env.reset();
        break;
      case TaskKind::kReport:
        break;
      case TaskKind::kStep:
        if (pool_.autoreset_mode == AutoresetMode::kNextStep && env.episode_over()) {
          env.reset();
        } else {
          env.step();
          finished = env.episode_over();
          ended = same_step && finished;
        }
        break;
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
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
    const StepOutcome stats = ended ? final_outcome : finished ? env.outcome() : StepOutcome{};
    out.episode_return[row] = static_cast<float>(stats.episode_return);
    out.episode_length[row] = stats.episode_length;
    write_row(env, ref, task.env_id);
    if (ended) {
      out.reward[row] = final_outcome.reward;
      out.terminated[row] = final_outcome.terminated;
      out.truncated[row] = final_outcome.truncated;
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = std::current_exception();
  }
  ring_->commit(ref);
}

void VectorEnv::write_row(const AtariEnv& env, const RowRef& ref, int env_id) const {
  const BatchBuffers& out = *ref.buffers;
  const std::size_t row = static_cast<std::size_t>(ref.row);
  const StepOutcome o = env.outcome();
  env.write_observation(out.obs + row * stacked_bytes_);
  out.reward[row] = o.reward;
  out.terminated[row] = o.terminated;
  out.truncated[row] = o.truncated;
  out.env_id[row] = env_id;
  out.lives[row] = o.lives;
  out.frame_number[row] = o.frame_number;
  out.episode_frame_number[row] = o.episode_frame_number;
}

}  // namespace atari_vec
