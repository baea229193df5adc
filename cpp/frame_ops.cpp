// frame_ops.cpp: palette lookup and max-pool.
#include "frame_ops.hpp"

#include <algorithm>
#include <cstring>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cpu_features.hpp"

namespace atari_vec {

#ifdef ATARI_VEC_X86_DISPATCH
// A 256-entry byte table (t[0..3], 64 entries each) applied to 64 indices: two 128-entry
// permutes (vpermi2b) and a blend on the index's top bit.
__attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline)) static inline __m512i
lookup64(const __m512i* t, __m512i idx) {
  return _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), _mm512_permutex2var_epi8(t[0], idx, t[1]),
                                _mm512_permutex2var_epi8(t[2], idx, t[3]));
}

// The table applied 64 pixels at a time; then, if `other` is given, a max with it.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void lookup_vbmi(
    const uint8_t* table, const uint8_t* src, const uint8_t* other, std::size_t n, uint8_t* dst) {
  const __m512i t[4] = {_mm512_loadu_si512(table), _mm512_loadu_si512(table + 64),
                        _mm512_loadu_si512(table + 128), _mm512_loadu_si512(table + 192)};
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m512i v = lookup64(t, _mm512_loadu_si512(src + i));
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

#ifdef ATARI_VEC_X86_DISPATCH
// Whether n bytes at p and q are equal, 64 at a time.
__attribute__((target("avx512f,avx512bw"), always_inline)) static inline bool equal_avx512(
    const uint8_t* p, const uint8_t* q, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 64) {
    const __mmask64 m = n - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (n - i)) - 1;
    if (_mm512_mask_cmpneq_epu8_mask(m, _mm512_maskz_loadu_epi8(m, p + i),
                                     _mm512_maskz_loadu_epi8(m, q + i)) != 0) {
      return false;
    }
  }
  return true;
}

__attribute__((target("avx512f,avx512bw,avx512vbmi"))) static void pool_gray_rows_vbmi(
    const uint8_t* table, const uint8_t* a, const uint8_t* b, int rows, int width,
    uint8_t* pooled, int16_t* source_rows) {
  const std::size_t w = static_cast<std::size_t>(width);
  const __m512i t[4] = {_mm512_loadu_si512(table), _mm512_loadu_si512(table + 64),
                        _mm512_loadu_si512(table + 128), _mm512_loadu_si512(table + 192)};
  for (int r = 0; r < rows; ++r) {
    const std::size_t o = static_cast<std::size_t>(r) * w;
    if (r > 0 && equal_avx512(a + o, a + o - w, w) && equal_avx512(b + o, b + o - w, w)) {
      source_rows[r] = source_rows[r - 1];
      continue;
    }
    source_rows[r] = static_cast<int16_t>(r);
    for (std::size_t i = 0; i < w; i += 64) {
      const __mmask64 m = w - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (w - i)) - 1;
      const __m512i v = _mm512_max_epu8(lookup64(t, _mm512_maskz_loadu_epi8(m, a + o + i)),
                                        lookup64(t, _mm512_maskz_loadu_epi8(m, b + o + i)));
      _mm512_mask_storeu_epi8(pooled + o + i, m, v);
    }
  }
}
#endif

#ifdef ATARI_VEC_X86_DISPATCH
// Whether the 32 bytes at x and y differ.
__attribute__((target("avx2"), always_inline)) static inline bool differ32(const uint8_t* x,
                                                                         const uint8_t* y) {
  const __m256i vx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  const __m256i vy = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y));
  return _mm256_movemask_epi8(_mm256_cmpeq_epi8(vx, vy)) != -1;
}

// Whether n >= 32 bytes at p and q are equal, 32 at a time (the last 32 overlapping).
__attribute__((target("avx2"), always_inline)) static inline bool equal_avx2(const uint8_t* p,
                                                                           const uint8_t* q,
                                                                           std::size_t n) {
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    if (differ32(p + i, q + i)) return false;
  }
  return i == n || !differ32(p + n - 32, q + n - 32);
}

// The rows compared with AVX2 (widths of at least 32), the lookups in scalar code: most rows
// repeat, and AVX2 has no 256-entry byte table lookup.
__attribute__((target("avx2"))) static void pool_gray_rows_avx2(
    const uint8_t* table, const uint8_t* a, const uint8_t* b, int rows, int width,
    uint8_t* pooled, int16_t* source_rows) {
  const std::size_t w = static_cast<std::size_t>(width);
  for (int r = 0; r < rows; ++r) {
    const std::size_t o = static_cast<std::size_t>(r) * w;
    if (r > 0 && equal_avx2(a + o, a + o - w, w) && equal_avx2(b + o, b + o - w, w)) {
      source_rows[r] = source_rows[r - 1];
      continue;
    }
    source_rows[r] = static_cast<int16_t>(r);
    for (std::size_t i = o; i < o + w; ++i) pooled[i] = std::max(table[a[i]], table[b[i]]);
  }
}
#endif

void pool_gray_rows(const PaletteLut& lut, const uint8_t* a, const uint8_t* b, int rows, int width,
                    uint8_t* pooled, int16_t* source_rows) {
#ifdef ATARI_VEC_X86_DISPATCH
  if (cpu_has_vbmi()) {
    pool_gray_rows_vbmi(lut.gray.data(), a, b, rows, width, pooled, source_rows);
    return;
  }
  if (cpu_has_avx2() && width >= 32) {
    pool_gray_rows_avx2(lut.gray.data(), a, b, rows, width, pooled, source_rows);
    return;
  }
#endif
  const std::size_t w = static_cast<std::size_t>(width);
  for (int r = 0; r < rows; ++r) {
    const std::size_t o = static_cast<std::size_t>(r) * w;
    if (r > 0 && std::memcmp(a + o, a + o - w, w) == 0 && std::memcmp(b + o, b + o - w, w) == 0) {
      source_rows[r] = source_rows[r - 1];
      continue;
    }
    source_rows[r] = static_cast<int16_t>(r);
    for (std::size_t i = o; i < o + w; ++i) pooled[i] = std::max(lut.gray[a[i]], lut.gray[b[i]]);
  }
}

void fill_repeated_rows(uint8_t* pooled, int rows, int width, const int16_t* source_rows) {
  const std::size_t w = static_cast<std::size_t>(width);
  for (int r = 0; r < rows; ++r) {
    if (source_rows[r] != r) std::memcpy(pooled + r * w, pooled + source_rows[r] * w, w);
  }
}

#ifdef ATARI_VEC_X86_DISPATCH
__attribute__((target("avx2"))) static void copy_avx2(uint8_t* dst, const uint8_t* src,
                                                      std::size_t n) {
  std::size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 32));
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 64));
    const __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 96));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), a);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i + 32), b);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i + 64), c);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i + 96), d);
  }
  for (; i + 32 <= n; i += 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
  }
  for (; i < n; ++i) dst[i] = src[i];
}
#endif

void copy_bytes(uint8_t* dst, const uint8_t* src, std::size_t n) {
#ifdef ATARI_VEC_X86_DISPATCH
  if (n >= 256 && cpu_has_avx2()) {
    copy_avx2(dst, src, n);
    return;
  }
#endif
  std::memcpy(dst, src, n);
}

void max_inplace(uint8_t* dst, const uint8_t* src, std::size_t n) {
  // Written so the compiler vectorises it (pmaxub); no intrinsics needed.
  for (std::size_t i = 0; i < n; ++i) dst[i] = std::max(dst[i], src[i]);
}

}  // namespace atari_vec
