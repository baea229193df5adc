// cpu_features.hpp: which x86 instruction sets the frame kernels may use, decided once per
// process. ATARI_VEC_DISABLE_SIMD=1 forces the portable loops (lets the tests check both).
#pragma once

#include <cstdlib>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ATARI_VEC_X86_DISPATCH 1

namespace atari_vec {

inline bool simd_allowed() {
  static const bool allowed = !std::getenv("ATARI_VEC_DISABLE_SIMD");
  return allowed;
}

// The AVX-512 kernels run only when ATARI_VEC_AVX512 is set (to anything but "0"). On the
// Xeon this project is measured on, any 512-bit work in a step slows the emulation that
// follows it (the core's clock): perf of 16 Breakout envs stepped synchronously put ~8% more
// samples in the emulator with the AVX-512 palette and resize kernels than without, for the
// same frames, while the AVX2 kernels cost about what the AVX-512 ones do themselves
// (docs/startup-and-emulator.md). Other CPUs may differ; the opt-in is for measuring them.
inline bool avx512_allowed() {
  static const bool allowed = [] {
    const char* v = std::getenv("ATARI_VEC_AVX512");
    return simd_allowed() && v != nullptr && std::string(v) != "0";
  }();
  return allowed;
}

inline bool cpu_has_vbmi() {
  static const bool has = avx512_allowed() && __builtin_cpu_supports("avx512vbmi") &&
                          __builtin_cpu_supports("avx512bw");
  return has;
}

inline bool cpu_has_avx2() {
  static const bool has = simd_allowed() && __builtin_cpu_supports("avx2");
  return has;
}

inline bool cpu_has_avx512() {
  static const bool has = avx512_allowed() && __builtin_cpu_supports("avx512f");
  return has;
}

inline bool cpu_has_avx512bw() {
  static const bool has = cpu_has_avx512() && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  return has;
}

}  // namespace atari_vec

#endif
