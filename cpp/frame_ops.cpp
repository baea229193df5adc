// frame_ops.cpp: palette lookup, max-pool and the INTER_AREA resize.
#include "frame_ops.hpp"

#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>

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

}  // namespace atari_vec
