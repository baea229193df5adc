// cpu_features.hpp: which x86 instruction sets the frame kernels may use, decided once per
// process. ATARI_VEC_DISABLE_SIMD=1 forces the portable loops (lets the tests check both).
#pragma once

#include <cstdlib>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ATARI_VEC_X86_DISPATCH 1

namespace atari_vec {

inline bool simd_allowed() {
  static const bool allowed = !std::getenv("ATARI_VEC_DISABLE_SIMD");
  return allowed;
}

inline bool cpu_has_vbmi() {
  static const bool has = simd_allowed() && __builtin_cpu_supports("avx512vbmi") &&
                          __builtin_cpu_supports("avx512bw");
  return has;
}

inline bool cpu_has_avx2() {
  static const bool has = simd_allowed() && __builtin_cpu_supports("avx2");
  return has;
}

inline bool cpu_has_avx512() {
  static const bool has = simd_allowed() && __builtin_cpu_supports("avx512f");
  return has;
}

inline bool cpu_has_avx512bw() {
  static const bool has = cpu_has_avx512() && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  return has;
}

}  // namespace atari_vec

#endif
