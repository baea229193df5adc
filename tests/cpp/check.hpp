// check.hpp: the few helpers the C++ tests share, instead of a test framework: CHECK that
// reports file:line and ends the process, knobs read from the environment, and a watchdog
// that turns a deadlock into a failure with a message saying where the test was.
#pragma once

#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace atari_vec {
namespace testing {

// Failures may happen on worker threads, where throwing would end in std::terminate
// without a useful message; so a failed check prints and ends the process itself. _Exit
// skips static destructors, which could otherwise run while other threads still work.
[[noreturn]] inline void fail(const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what.c_str());
  std::fflush(stderr);
  std::fflush(stdout);
  std::_Exit(1);
}

// The stage a test is in, printed by the watchdog when it fires.
inline std::atomic<const char*>& stage() {
  static std::atomic<const char*> s{"start"};
  return s;
}

// An integer knob from the environment, or `fallback` when unset or unparsable.
inline long env_long(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long parsed = std::strtol(v, &end, 10);
  return (end != nullptr && *end == '\0' && parsed > 0) ? parsed : fallback;
}

// Ends the process with a message if the test runs longer than ATARI_VEC_TEST_TIMEOUT
// seconds (default `seconds`): a hung condition variable must fail, not stall CI. The
// thread is detached: a test that finishes simply returns from main and it dies with it.
inline void start_watchdog(long seconds) {
  const long limit = env_long("ATARI_VEC_TEST_TIMEOUT", seconds);
  std::thread([limit] {
    std::this_thread::sleep_for(std::chrono::seconds(limit));
    std::fprintf(stderr, "watchdog: no finish after %ld s, stuck in stage: %s\n", limit,
                 stage().load());
    std::fflush(stderr);
    std::_Exit(3);
  }).detach();
}

}  // namespace testing
}  // namespace atari_vec

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) ::atari_vec::testing::fail(__FILE__, __LINE__, #cond); \
  } while (0)

// CHECK with a message built only on failure (so hot loops stay cheap).
#define CHECK_MSG(cond, msg)                                                       \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      ::atari_vec::testing::fail(__FILE__, __LINE__, std::string(#cond) + ": " + (msg)); \
    }                                                                              \
  } while (0)

// Runs `expr` and checks that it throws exactly `type`.
#define CHECK_THROWS(type, expr)                                                      \
  do {                                                                                \
    bool thrown_ = false;                                                             \
    try {                                                                             \
      expr;                                                                           \
    } catch (const type&) {                                                           \
      thrown_ = true;                                                                 \
    } catch (...) {                                                                   \
      ::atari_vec::testing::fail(__FILE__, __LINE__, #expr " threw something other than " #type); \
    }                                                                                 \
    if (!thrown_) ::atari_vec::testing::fail(__FILE__, __LINE__, #expr " did not throw " #type); \
  } while (0)

namespace atari_vec {
namespace testing {

// Synchronising on a thread being blocked, instead of sleeping and hoping it is: the kernel
// id of the calling thread, and whether thread `tid` of this process sleeps in the kernel
// (state S in /proc/self/task/<tid>/stat), as a thread blocked on a futex does.
inline pid_t this_thread_tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

inline bool asleep(pid_t tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
  FILE* f = std::fopen(path, "r");
  CHECK_MSG(f != nullptr, std::string("cannot read ") + path);
  char buf[512];
  const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* end_of_name = std::strrchr(buf, ')');  // the name may hold spaces and ')'
  return end_of_name != nullptr && end_of_name[1] == ' ' && end_of_name[2] == 'S';
}

}  // namespace testing
}  // namespace atari_vec
