// frame_ops.hpp: the per-frame image operations of the pipeline, as free functions over
// caller-owned memory. None allocates after construction; all are safe to call from any
// thread on distinct buffers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace atari_vec {

// Once per process, before any worker runs: keeps OpenCV from starting threads of its own
// inside our workers.
void init_frame_ops();

// Maps the ALE screen's palette indices to grayscale or RGB bytes. Built once per
// environment from ALE's own palette, so the colours are exactly ALE's.
struct PaletteLut {
  std::array<uint8_t, 256> gray{};
  std::array<uint8_t, 256 * 3> rgb{};
};

// dst[i] = lut(src[i]) for `pixels` palette indices; writes 1 (gray) or 3 (rgb) bytes per pixel.
void apply_palette(const PaletteLut& lut, bool grayscale, const uint8_t* src, std::size_t pixels,
                   uint8_t* dst);

// dst[i] = max(dst[i], src[i]).
void max_inplace(uint8_t* dst, const uint8_t* src, std::size_t n);

// Area-averaging resize with exactly OpenCV's INTER_AREA results.
void resize_area(const uint8_t* src, int src_h, int src_w, uint8_t* dst, int dst_h, int dst_w,
                 int channels);

}  // namespace atari_vec
