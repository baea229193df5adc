// resize.cpp: the INTER_AREA resize (AreaResizer, and cv::resize for the other geometries).
#include "resize.hpp"

#ifdef ATARI_VEC_HAVE_OPENCV
#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include <algorithm>
#include <array>
#include <utility>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu_features.hpp"

namespace atari_vec {

void init_resize() {
#ifdef ATARI_VEC_HAVE_OPENCV
  cv::setNumThreads(0);
#endif
}

bool have_opencv() {
#ifdef ATARI_VEC_HAVE_OPENCV
  return true;
#else
  return false;
#endif
}

bool resize_supported(int src_h, int src_w, int dst_h, int dst_w) {
  return (src_h == dst_h && src_w == dst_w) || AreaResizer::supports(src_h, src_w, dst_h, dst_w) ||
         have_opencv();
}

void resize_area(const uint8_t* src, int src_h, int src_w, uint8_t* dst, int dst_h, int dst_w,
                 int channels) {
#ifdef ATARI_VEC_HAVE_OPENCV
  const int type = channels == 1 ? CV_8UC1 : CV_8UC3;
  const cv::Mat in(src_h, src_w, type, const_cast<uint8_t*>(src));
  cv::Mat out(dst_h, dst_w, type, dst);
  cv::resize(in, out, out.size(), 0, 0, cv::INTER_AREA);
#else
  (void)src;
  (void)dst;
  (void)channels;
  throw std::invalid_argument(unsupported_resize_message(src_h, src_w, dst_h, dst_w));
#endif
}

std::string unsupported_resize_message(int src_h, int src_w, int dst_h, int dst_w) {
  return "resizing " + std::to_string(src_h) + "x" + std::to_string(src_w) + " frames to " +
         std::to_string(dst_h) + "x" + std::to_string(dst_w) +
         " needs OpenCV (an integer shrink factor or an enlargement), and this build of "
         "atari_vec has none: install OpenCV (apt-get install libopencv-imgproc-dev) and "
         "reinstall atari_vec, or pick a size that shrinks by a non-integer factor, such as 84x84";
}

namespace {

struct Tap {
  int dst;
  int src;
  float weight;
};

// The taps of one axis, in the order and with the float weights OpenCV computes.
std::vector<Tap> area_taps(int src_size, int dst_size, double scale) {
  std::vector<Tap> taps;
  for (int d = 0; d < dst_size; ++d) {
    const double start = d * scale;
    const double end = start + scale;
    const double cell = std::min(scale, src_size - start);
    int first = static_cast<int>(std::ceil(start));
    int last = std::min(static_cast<int>(std::floor(end)), src_size - 1);
    first = std::min(first, last);
    if (first - start > 1e-3) taps.push_back({d, first - 1, static_cast<float>((first - start) / cell)});
    for (int s = first; s < last; ++s) taps.push_back({d, s, static_cast<float>(1.0 / cell)});
    if (end - last > 1e-3) {
      taps.push_back({d, last, static_cast<float>(std::min(std::min(end - last, 1.0), cell) / cell)});
    }
  }
  return taps;
}

// Whether source rows a (-1: none yet) and b hold the same bytes: their resampled values are
// then the same floats, computed once. Atari screens repeat most rows: with random play,
// 94% of Pong's rows and 90% of Breakout's equal the row above (Ms. Pac-Man, Seaquest and
// Space Invaders about 60%).
// With `source_rows` (source_rows[r]: the row whose bytes row r has, from how the frame was
// made; rows that repeat another may be left unwritten), rows are compared and read there.
bool same_row(const uint8_t* src, std::size_t stride, int a, int b, const int16_t* source_rows) {
  if (source_rows != nullptr) return a >= 0 && source_rows[a] == source_rows[b];
  return a >= 0 && std::memcmp(src + static_cast<std::size_t>(a) * stride,
                               src + static_cast<std::size_t>(b) * stride, stride) == 0;
}

inline const uint8_t* src_row(const uint8_t* src, std::size_t stride, int r,
                              const int16_t* source_rows) {
  return src + static_cast<std::size_t>(source_rows != nullptr ? source_rows[r] : r) * stride;
}

// OpenCV derives the scale from the inverse ratio; the last bit matters for the weights.
double area_scale(int src, int dst) { return 1.0 / (static_cast<double>(dst) / src); }

uint8_t saturate_round(float v) {
#if defined(__x86_64__)
  const int r = _mm_cvtss_si32(_mm_set_ss(v));  // round half to even: cvRound's own instruction
#else
  const long r = std::lrint(v);  // round half to even, as cvRound
#endif
  return static_cast<uint8_t>(r < 0 ? 0 : r > 255 ? 255 : r);
}

}  // namespace

bool AreaResizer::supports(int src_h, int src_w, int dst_h, int dst_w) {
  const double sx = area_scale(src_w, dst_w), sy = area_scale(src_h, dst_h);
  if (sx < 1.0 || sy < 1.0) return false;  // OpenCV enlarges with another method
  const bool integral = std::abs(sx - std::lrint(sx)) < 2.220446049250313e-16 &&
                        std::abs(sy - std::lrint(sy)) < 2.220446049250313e-16;
  return !integral;  // integer factors take OpenCV's fast integer path
}

AreaResizer::AreaResizer(int src_h, int src_w, int dst_h, int dst_w, int channels)
    : src_w_(src_w), dst_w_(dst_w), channels_(channels) {
  const std::vector<Tap> cols = area_taps(src_w, dst_w, area_scale(src_w, dst_w));
  std::vector<int> count(static_cast<std::size_t>(dst_w), 0);
  for (const Tap& t : cols) taps_per_col_ = std::max(taps_per_col_, ++count[static_cast<std::size_t>(t.dst)]);
  const std::size_t width = static_cast<std::size_t>(dst_w) * channels;
  // Padding taps read source value 0 with weight 0: adding +0.0f changes no sum.
  tap_src_.assign(width * taps_per_col_, 0);
  tap_weight_.assign(width * taps_per_col_, 0.0f);
  std::fill(count.begin(), count.end(), 0);
  for (const Tap& t : cols) {
    const int k = count[static_cast<std::size_t>(t.dst)]++;
    for (int ch = 0; ch < channels; ++ch) {
      const std::size_t i = k * width + static_cast<std::size_t>(t.dst) * channels + ch;
      tap_src_[i] = t.src * channels + ch;
      tap_weight_[i] = t.weight;
    }
  }
  for (const Tap& t : area_taps(src_h, dst_h, area_scale(src_h, dst_h))) {
    row_taps_.push_back({t.dst, t.src, t.weight});
  }
  // 32 floats of slack: a 16-value group reads a 32-float window that may pass the row's end.
  src_row_.assign(static_cast<std::size_t>(src_w) * channels + 32, 0.0f);
  // Permute tables for groups of 16 output values, used only if every group's source values
  // fit in a 32-float window (they do for 160 -> 84 gray columns; not for every geometry).
  bool fits = true;
  for (std::size_t i = 0; i < width && fits; i += 16) {
    const std::size_t end = std::min(width, i + 16);
    int lo = tap_src_[i], hi = tap_src_[i];
    for (int t = 0; t < taps_per_col_; ++t) {
      for (std::size_t j = i; j < end; ++j) {
        const int s = tap_src_[static_cast<std::size_t>(t) * width + j];
        if (tap_weight_[static_cast<std::size_t>(t) * width + j] != 0.0f || t == 0) {
          lo = std::min(lo, s);
          hi = std::max(hi, s);
        }
      }
    }
    fits = hi - lo < 32;
    group_base_.push_back(lo);
  }
  if (fits) {
    group_lane_.assign(tap_src_.size(), 0);
    for (int t = 0; t < taps_per_col_; ++t) {
      for (std::size_t j = 0; j < width; ++j) {
        const std::size_t k = static_cast<std::size_t>(t) * width + j;
        // Padding taps (weight 0) may point anywhere; keep them inside the window.
        const int lane = tap_weight_[k] != 0.0f || t == 0 ? tap_src_[k] - group_base_[j / 16] : 0;
        group_lane_[k] = lane;
      }
    }
  } else {
    group_base_.clear();
  }
  row_a_.assign(width, 0.0f);
  row_b_.assign(width, 0.0f);
  sum_.assign(width, 0.0f);
}

#ifdef ATARI_VEC_X86_DISPATCH
// The tap loop with AVX2 gathers, 8 output values at a time. Multiply and add stay separate
// instructions (no FMA: this function is not compiled for it), so every float rounds exactly
// as in the scalar loop. Chosen at run time when the CPU has AVX2.
__attribute__((target("avx2"))) static void accumulate_taps_avx2(
    const float* src, const int* idx, const float* w, std::size_t width, int taps, float* out) {
  std::size_t i = 0;
  for (; i + 8 <= width; i += 8) {
    __m256 acc = _mm256_mul_ps(
        _mm256_i32gather_ps(src, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + i)), 4),
        _mm256_loadu_ps(w + i));
    for (int t = 1; t < taps; ++t) {
      const std::size_t o = static_cast<std::size_t>(t) * width + i;
      const __m256 v =
          _mm256_i32gather_ps(src, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + o)), 4);
      acc = _mm256_add_ps(acc, _mm256_mul_ps(v, _mm256_loadu_ps(w + o)));
    }
    _mm256_storeu_ps(out + i, acc);
  }
  for (; i < width; ++i) {
    float acc = src[idx[i]] * w[i];
    for (int t = 1; t < taps; ++t) {
      const std::size_t o = static_cast<std::size_t>(t) * width + i;
      acc += src[idx[o]] * w[o];
    }
    out[i] = acc;
  }
}

// The mask of the first n of 16 lanes (n clamped to 0..16).
static inline __mmask16 first_lanes(std::ptrdiff_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF)
                 : n > 0 ? static_cast<__mmask16>((1u << n) - 1) : static_cast<__mmask16>(0);
}

// One group of 16 output values (lanes outside `mask` are zero): its source values are the
// 32-float window lo:hi, and each of the `taps` taps picks its 16 with one two-register
// permute. Multiply and add stay separate, as above. `i` is the group's first output value.
__attribute__((target("avx512f"), always_inline)) static inline __m512 group_taps_avx512(
    __m512 lo, __m512 hi, const int* lane, const float* w, std::size_t width, std::size_t i,
    int taps, __mmask16 mask) {
  __m512 acc = _mm512_mul_ps(
      _mm512_permutex2var_ps(lo, _mm512_maskz_loadu_epi32(mask, lane + i), hi),
      _mm512_maskz_loadu_ps(mask, w + i));
  for (int t = 1; t < taps; ++t) {
    const std::size_t o = static_cast<std::size_t>(t) * width + i;
    const __m512 v = _mm512_permutex2var_ps(lo, _mm512_maskz_loadu_epi32(mask, lane + o), hi);
    acc = _mm512_add_ps(acc, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(mask, w + o)));
  }
  return acc;
}

// The tap loop for 16 output values at a time with no gathers: the source values of a group
// lie in a 32-float window starting at group_base.
__attribute__((target("avx512f"))) static void accumulate_taps_avx512(
    const float* src, const int* group_base, const int* lane, const float* w, std::size_t width,
    int taps, float* out) {
  for (std::size_t i = 0, g = 0; i < width; i += 16, ++g) {
    const __mmask16 mask = first_lanes(static_cast<std::ptrdiff_t>(width - i));
    const float* window = src + group_base[g];
    const __m512 acc = group_taps_avx512(_mm512_loadu_ps(window), _mm512_loadu_ps(window + 16),
                                         lane, w, width, i, taps, mask);
    _mm512_mask_storeu_ps(out + i, mask, acc);
  }
}
#endif

#ifdef ATARI_VEC_X86_DISPATCH
// saturate_round over a row, 8 values at a time: cvtps2dq rounds half to even under the
// default MXCSR mode exactly like the scalar cvtss2si, then clamp to [0, 255] and pack.
__attribute__((target("avx2"))) static void round_row_avx2(const float* sum, std::size_t n,
                                                           uint8_t* out) {
  const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(255);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i v = _mm256_cvtps_epi32(_mm256_loadu_ps(sum + i));
    v = _mm256_min_epi32(_mm256_max_epi32(v, zero), top);
    const __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packus_epi16(words, words));
  }
  for (; i < n; ++i) out[i] = saturate_round(sum[i]);
}
#endif

static void round_row(const float* sum, std::size_t n, uint8_t* out) {
#ifdef ATARI_VEC_X86_DISPATCH
  if (cpu_has_avx2()) {
    round_row_avx2(sum, n, out);
    return;
  }
#endif
  for (std::size_t i = 0; i < n; ++i) out[i] = saturate_round(sum[i]);
}

// Both loops below also get an AVX2 build picked at load time (target_clones); AVX2 does not
// include FMA, so the compiler cannot fuse a multiply and an add and change a rounding.
#ifdef ATARI_VEC_X86_DISPATCH
#define ATARI_VEC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ATARI_VEC_CLONES
#endif

ATARI_VEC_CLONES void AreaResizer::resample_row(const uint8_t* row, float* out) {
  const std::size_t n_src = static_cast<std::size_t>(src_w_) * channels_;  // not the slack
  float* src = src_row_.data();
  for (std::size_t s = 0; s < n_src; ++s) src[s] = static_cast<float>(row[s]);
  const std::size_t width = static_cast<std::size_t>(dst_w_) * channels_;
#ifdef ATARI_VEC_X86_DISPATCH
  if (!group_base_.empty() && cpu_has_avx512()) {
    accumulate_taps_avx512(src, group_base_.data(), group_lane_.data(), tap_weight_.data(), width,
                           taps_per_col_, out);
    return;
  }
  if (cpu_has_avx2()) {
    accumulate_taps_avx2(src, tap_src_.data(), tap_weight_.data(), width, taps_per_col_, out);
    return;
  }
#endif
  // OpenCV starts each sum at 0 and adds the taps in order; 0 + x == x, so the first tap
  // can be stored directly.
  const int* idx = tap_src_.data();
  const float* w = tap_weight_.data();
  for (std::size_t i = 0; i < width; ++i) out[i] = src[idx[i]] * w[i];
  for (int t = 1; t < taps_per_col_; ++t) {
    idx += width;
    w += width;
    for (std::size_t i = 0; i < width; ++i) out[i] += src[idx[i]] * w[i];
  }
}

#ifdef ATARI_VEC_X86_DISPATCH
// The whole frame with AVX-512, for one channel and at most kMaxGroups groups of 16 output
// values. Same float operations in the same order as run()'s portable loops; what changes is
// where the values live: each source row is converted 16 bytes at a time, its resampled
// values stay in registers, and so do the running sums of the output row, so nothing goes
// through row_a_, row_b_ or sum_.
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void store_rounded_avx512(
    const __m512* sum, const __mmask16* mask, int groups, uint8_t* out) {
  for (int g = 0; g < groups; ++g) {
    // cvtps2dq rounds half to even (default MXCSR), as cvRound; clamp, then narrow.
    const __m512i v = _mm512_max_epi32(_mm512_cvtps_epi32(sum[g]), _mm512_setzero_si512());
    _mm_mask_storeu_epi8(out + 16 * g, mask[g], _mm512_cvtusepi32_epi8(v));
  }
}

// The frame loop, with the group count G and the taps per output value T fixed at compile
// time so that the compiler keeps every group's resampled row and running sum in registers.
template <int G, int T>
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void area_frame_avx512(
    const uint8_t* src, uint8_t* dst, int src_w, int width, const int* group_base,
    const int* lane, const float* w, const AreaResizer::RowTap* taps, std::size_t num_taps,
    const int16_t* source_rows) {
  __mmask16 mask[G], lo_mask[G], hi_mask[G];
  for (int g = 0; g < G; ++g) {
    mask[g] = first_lanes(width - 16 * g);
    // Each group's 32-value window is read straight from the source bytes; the masks keep
    // the reads inside the row where a window would run past it.
    const int valid = src_w - group_base[g];
    lo_mask[g] = first_lanes(valid);
    hi_mask[g] = first_lanes(valid - 16);
  }
  __m512 cur[G], sum[G];
  for (int g = 0; g < G; ++g) sum[g] = _mm512_setzero_ps();
  int cur_src = -1;
  int dst_row = taps[0].dst_row;
  for (std::size_t k = 0; k < num_taps; ++k) {
    const AreaResizer::RowTap& tap = taps[k];
    if (tap.src_row != cur_src) {
      if (!same_row(src, static_cast<std::size_t>(src_w), cur_src, tap.src_row, source_rows)) {
        const uint8_t* row = src_row(src, static_cast<std::size_t>(src_w), tap.src_row, source_rows);
        for (int g = 0; g < G; ++g) {
          const uint8_t* base = row + group_base[g];
          const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lo_mask[g], base)));
          const __m512 hi =
              _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(hi_mask[g], base + 16)));
          cur[g] = group_taps_avx512(lo, hi, lane, w, static_cast<std::size_t>(width),
                                     16 * static_cast<std::size_t>(g), T, mask[g]);
        }
      }
      cur_src = tap.src_row;
    }
    const __m512 beta = _mm512_set1_ps(tap.weight);
    if (tap.dst_row != dst_row) {
      store_rounded_avx512(sum, mask, G, dst + static_cast<std::size_t>(dst_row) * width);
      for (int g = 0; g < G; ++g) sum[g] = _mm512_mul_ps(beta, cur[g]);
      dst_row = tap.dst_row;
    } else {
      for (int g = 0; g < G; ++g) sum[g] = _mm512_add_ps(sum[g], _mm512_mul_ps(beta, cur[g]));
    }
  }
  store_rounded_avx512(sum, mask, G, dst + static_cast<std::size_t>(dst_row) * width);
}

using AreaFrameFn = void (*)(const uint8_t*, uint8_t*, int, int, const int*, const int*,
                             const float*, const AreaResizer::RowTap*, std::size_t, const int16_t*);

template <int G, int... Ts>
static constexpr std::array<AreaFrameFn, sizeof...(Ts)> area_frame_row(std::integer_sequence<int, Ts...>) {
  return {&area_frame_avx512<G, Ts + 1>...};
}

template <int... Gs>
static constexpr std::array<std::array<AreaFrameFn, AreaResizer::kMaxTaps>, sizeof...(Gs)> area_frame_table(
    std::integer_sequence<int, Gs...>) {
  return {area_frame_row<Gs + 1>(std::make_integer_sequence<int, AreaResizer::kMaxTaps>{})...};
}

// [groups - 1][taps - 1]
static constexpr auto kAreaFrame =
    area_frame_table(std::make_integer_sequence<int, AreaResizer::kMaxGroups>{});

bool AreaResizer::run_avx512(const uint8_t* src, uint8_t* dst, const int16_t* source_rows) {
  const int groups = (dst_w_ + 15) / 16;
  if (channels_ != 1 || group_base_.empty() || groups > kMaxGroups || taps_per_col_ > kMaxTaps ||
      !cpu_has_avx512bw()) {
    return false;
  }
  kAreaFrame[static_cast<std::size_t>(groups - 1)][static_cast<std::size_t>(taps_per_col_ - 1)](
      src, dst, src_w_, dst_w_, group_base_.data(), group_lane_.data(), tap_weight_.data(),
      row_taps_.data(), row_taps_.size(), source_rows);
  return true;
}
#endif

ATARI_VEC_CLONES void AreaResizer::run(const uint8_t* src, uint8_t* dst, const int16_t* source_rows) {
#ifdef ATARI_VEC_X86_DISPATCH
  if (run_avx512(src, dst, source_rows)) return;
#endif
  const std::size_t width = static_cast<std::size_t>(dst_w_) * channels_;
  const std::size_t src_stride = static_cast<std::size_t>(src_w_) * channels_;
  float* cur = row_a_.data();
  float* spare = row_b_.data();
  int cur_src = -1;
  int dst_row = row_taps_.front().dst_row;
  std::fill(sum_.begin(), sum_.end(), 0.0f);
  for (const RowTap& tap : row_taps_) {
    // A source row on the border of two output rows is used twice in a row: resample once.
    if (tap.src_row != cur_src) {
      if (!same_row(src, src_stride, cur_src, tap.src_row, source_rows)) {
        std::swap(cur, spare);
        resample_row(src_row(src, src_stride, tap.src_row, source_rows), cur);
      }
      cur_src = tap.src_row;
    }
    const float beta = tap.weight;
    if (tap.dst_row != dst_row) {
      round_row(sum_.data(), width, dst + static_cast<std::size_t>(dst_row) * width);
      for (std::size_t i = 0; i < width; ++i) sum_[i] = beta * cur[i];
      dst_row = tap.dst_row;
    } else {
      for (std::size_t i = 0; i < width; ++i) sum_[i] += beta * cur[i];
    }
  }
  round_row(sum_.data(), width, dst + static_cast<std::size_t>(dst_row) * width);
}

}  // namespace atari_vec
