// frame_ops.cpp: palette lookup and max-pool.
#include "frame_ops.hpp"

#include <algorithm>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu_features.hpp"

namespace atari_vec {

#ifdef ATARI_VEC_X86_DISPATCH
// A 256-entry byte table applied 64 pixels at a time: two 128-entry permutes (vpermi2b) and
// a blend on the index's top bit; then, if `other` is given, a max with it.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void lookup_vbmi(
    const uint8_t* table, const uint8_t* src, const uint8_t* other, std::size_t n, uint8_t* dst) {
  const __m512i t0 = _mm512_loadu_si512(table);
  const __m512i t1 = _mm512_loadu_si512(table + 64);
  const __m512i t2 = _mm512_loadu_si512(table + 128);
  const __m512i t3 = _mm512_loadu_si512(table + 192);
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i idx = _mm512_loadu_si512(src + i);
    const __m512i low = _mm512_permutex2var_epi8(t0, idx, t1);
    const __m512i high = _mm512_permutex2var_epi8(t2, idx, t3);
    __m512i v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), low, high);
    if (other) v = _mm512_max_epu8(v, _mm512_loadu_si512(other + i));
    _mm512_storeu_si512(dst + i, v);
  }
  for (; i < n; ++i) dst[i] = other ? std::max(table[src[i]], other[i]) : table[src[i]];
}
#endif

void apply_palette(const PaletteLut& lut, bool grayscale, const uint8_t* src, std::size_t pixels,
                   uint8_t* dst) {
  if (grayscale) {
#ifdef ATARI_VEC_X86_DISPATCH
    if (cpu_has_vbmi()) {
      lookup_vbmi(lut.gray.data(), src, nullptr, pixels, dst);
      return;
    }
#endif
    for (std::size_t i = 0; i < pixels; ++i) dst[i] = lut.gray[src[i]];
    return;
  }
  for (std::size_t i = 0; i < pixels; ++i) {
    const uint8_t* c = &lut.rgb[3 * static_cast<std::size_t>(src[i])];
    dst[3 * i] = c[0];
    dst[3 * i + 1] = c[1];
    dst[3 * i + 2] = c[2];
  }
}

void apply_gray_max(const PaletteLut& lut, const uint8_t* src, const uint8_t* other,
                    std::size_t pixels, uint8_t* dst) {
#ifdef ATARI_VEC_X86_DISPATCH
  if (cpu_has_vbmi()) {
    lookup_vbmi(lut.gray.data(), src, other, pixels, dst);
    return;
  }
#endif
  for (std::size_t i = 0; i < pixels; ++i) dst[i] = std::max(lut.gray[src[i]], other[i]);
}

void max_inplace(uint8_t* dst, const uint8_t* src, std::size_t n) {
  // Written so the compiler vectorises it (pmaxub); no intrinsics needed.
  for (std::size_t i = 0; i < n; ++i) dst[i] = std::max(dst[i], src[i]);
}

}  // namespace atari_vec
