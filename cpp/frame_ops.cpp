// frame_ops.cpp: palette lookup, max-pool and the INTER_AREA resize.
#include "frame_ops.hpp"

#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <cmath>
#include <cstdlib>

namespace atari_vec {

void init_frame_ops() { cv::setNumThreads(0); }

void apply_palette(const PaletteLut& lut, bool grayscale, const uint8_t* src, std::size_t pixels,
                   uint8_t* dst) {
  if (grayscale) {
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

void max_inplace(uint8_t* dst, const uint8_t* src, std::size_t n) {
  // Written so the compiler vectorises it (pmaxub); no intrinsics needed.
  for (std::size_t i = 0; i < n; ++i) dst[i] = std::max(dst[i], src[i]);
}

void resize_area(const uint8_t* src, int src_h, int src_w, uint8_t* dst, int dst_h, int dst_w,
                 int channels) {
  const int type = channels == 1 ? CV_8UC1 : CV_8UC3;
  const cv::Mat in(src_h, src_w, type, const_cast<uint8_t*>(src));
  cv::Mat out(dst_h, dst_w, type, dst);
  cv::resize(in, out, out.size(), 0, 0, cv::INTER_AREA);
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
  src_row_.assign(static_cast<std::size_t>(src_w) * channels, 0.0f);
  row_a_.assign(width, 0.0f);
  row_b_.assign(width, 0.0f);
  sum_.assign(width, 0.0f);
  (void)src_w_;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ATARI_VEC_HAVE_AVX2_PATH 1
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

// ATARI_VEC_DISABLE_AVX2=1 forces the portable loop (lets the tests check both paths).
static bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && !std::getenv("ATARI_VEC_DISABLE_AVX2");
  return has;
}
#endif

// Both loops below also get an AVX2 build picked at load time (target_clones); AVX2 does not
// include FMA, so the compiler cannot fuse a multiply and an add and change a rounding.
#ifdef ATARI_VEC_HAVE_AVX2_PATH
#define ATARI_VEC_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define ATARI_VEC_CLONES
#endif

ATARI_VEC_CLONES void AreaResizer::resample_row(const uint8_t* row, float* out) {
  const std::size_t n_src = src_row_.size();
  float* src = src_row_.data();
  for (std::size_t s = 0; s < n_src; ++s) src[s] = static_cast<float>(row[s]);
  const std::size_t width = static_cast<std::size_t>(dst_w_) * channels_;
#ifdef ATARI_VEC_HAVE_AVX2_PATH
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

ATARI_VEC_CLONES void AreaResizer::run(const uint8_t* src, uint8_t* dst) {
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
      std::swap(cur, spare);
      resample_row(src + static_cast<std::size_t>(tap.src_row) * src_stride, cur);
      cur_src = tap.src_row;
    }
    const float beta = tap.weight;
    if (tap.dst_row != dst_row) {
      uint8_t* out = dst + static_cast<std::size_t>(dst_row) * width;
      for (std::size_t i = 0; i < width; ++i) {
        out[i] = saturate_round(sum_[i]);
        sum_[i] = beta * cur[i];
      }
      dst_row = tap.dst_row;
    } else {
      for (std::size_t i = 0; i < width; ++i) sum_[i] += beta * cur[i];
    }
  }
  uint8_t* out = dst + static_cast<std::size_t>(dst_row) * width;
  for (std::size_t i = 0; i < width; ++i) out[i] = saturate_round(sum_[i]);
}

}  // namespace atari_vec
