// resize.hpp: the resize of the pipeline, OpenCV's INTER_AREA to the byte. AreaResizer serves
// the geometries Atari training uses (both axes shrunk, not both by integers: 210x160 -> 84x84
// among them) natively, allocating nothing per frame. The others go to cv::resize; measured
// (a malloc-counting harness, OpenCV 4.6): integer shrink factors allocate nothing in it,
// enlargements (INTER_AREA falls back to bilinear there) allocate two buffers per frame. That
// is left as it is: such sizes are rare in training and the cost is small beside a step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace atari_vec {

// Once per process, before any worker runs: keeps OpenCV from starting threads of its own
// inside our workers.
void init_resize();

// Area-averaging resize with exactly OpenCV's INTER_AREA results (calls cv::resize). In a
// build without OpenCV it throws std::invalid_argument (unsupported_resize_message).
void resize_area(const uint8_t* src, int src_h, int src_w, uint8_t* dst, int dst_h, int dst_w,
                 int channels);

// Whether this build has OpenCV (ATARI_VEC_HAVE_OPENCV).
bool have_opencv();
// Whether frames of src_h x src_w can be resized to dst_h x dst_w in this build: same size,
// the native kernel (AreaResizer::supports), or OpenCV.
bool resize_supported(int src_h, int src_w, int dst_h, int dst_w);
std::string unsupported_resize_message(int src_h, int src_w, int dst_h, int dst_w);

// OpenCV's INTER_AREA for one fixed geometry, reimplemented with precomputed weights.
//
// Covers the case OpenCV handles with its general area path: shrinking in both directions
// by factors that are not both integers (210x160 -> 84x84 among them). The weights are
// computed exactly as OpenCV computes them, and every float is accumulated in OpenCV's order
// (each source row resampled horizontally, then rows combined), so the bytes are identical;
// tests check this against cv2.resize. Faster than cv::resize because the tables are built
// once and each source row is resampled once instead of once per output row it touches.
// Not thread-safe (owns scratch rows): one per environment. run() allocates nothing.
class AreaResizer {
 public:
  static bool supports(int src_h, int src_w, int dst_h, int dst_w);
  AreaResizer(int src_h, int src_w, int dst_h, int dst_w, int channels);
  // source_rows (optional, src_h entries): source row r is read from row source_rows[r], and
  // rows with the same entry are known equal without comparing them (pool_gray_rows).
  void run(const uint8_t* src, uint8_t* dst, const int16_t* source_rows = nullptr);

  struct RowTap {
    int dst_row;
    int src_row;
    float weight;
  };
  // The AVX-512 frame kernel covers one channel, output rows of up to 16 * kMaxGroups
  // values, and up to kMaxTaps source values per output value.
  static constexpr int kMaxGroups = 8;
  static constexpr int kMaxTaps = 4;

 private:
  void resample_row(const uint8_t* row, float* out);
  // The whole frame with AVX-512 when this CPU, geometry and channel count allow it.
  bool run_avx512(const uint8_t* src, uint8_t* dst, const int16_t* source_rows);

  int src_w_, dst_w_, channels_;
  int taps_per_col_ = 0;           // padded: every output value has this many taps
  // Tap-major tables over the output row (dst_w * channels values): tap t of value i reads
  // source value tap_src_[t * width + i] with weight tap_weight_[t * width + i] (0 for
  // padding). Tap-major order lets the values accumulate independently, in OpenCV's order.
  std::vector<int> tap_src_;
  std::vector<float> tap_weight_;
  std::vector<RowTap> row_taps_;   // in OpenCV's order
  // AVX-512 path: per group of 16 output values, the first source value of its window, and
  // for every tap the lane (0..31) of its source value in that window. Empty if unusable.
  std::vector<int> group_base_;
  std::vector<int> group_lane_;
  std::vector<float> src_row_, row_a_, row_b_, sum_;
};

}  // namespace atari_vec
