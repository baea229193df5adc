// frame_ops.hpp: the per-pixel operations of the pipeline (palette lookup, max-pool), as free
// functions over caller-owned memory. None allocates; all are safe to call from any thread on
// distinct buffers. The resize has its own file, resize.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace atari_vec {

// Maps the ALE screen's palette indices to grayscale or RGB bytes. Built once per
// environment from ALE's own palette, so the colours are exactly ALE's.
struct PaletteLut {
  std::array<uint8_t, 256> gray{};
  std::array<uint8_t, 256 * 3> rgb{};
};

// dst[i] = lut(src[i]) for `pixels` palette indices; writes 1 (gray) or 3 (rgb) bytes per pixel.
void apply_palette(const PaletteLut& lut, bool grayscale, const uint8_t* src, std::size_t pixels,
                   uint8_t* dst);

// dst[i] = max(gray(src[i]), other[i]): the last frame of a step mapped and max-pooled in
// one pass (apply_palette to gray, then max_inplace, gives the same bytes).
void apply_gray_max(const PaletteLut& lut, const uint8_t* src, const uint8_t* other,
                    std::size_t pixels, uint8_t* dst);

// dst[i] = max(dst[i], src[i]).
void max_inplace(uint8_t* dst, const uint8_t* src, std::size_t n);

// memcpy for the frames a step copies, on 256-bit registers where the CPU has AVX2: glibc's
// memcpy takes 512-bit ones on CPUs with AVX-512, which slows the emulation after it (see
// cpu_features.hpp). Non-overlapping buffers, as memcpy.
void copy_bytes(uint8_t* dst, const uint8_t* src, std::size_t n);

// The gray max-pool of two frames of palette indices (rows x width, contiguous), row by row:
// pooled row r = max(gray(a row r), gray(b row r)). source_rows[r] is the row whose bytes
// pooled row r has: r, or, when rows r of both a and b equal their rows r - 1,
// source_rows[r - 1]; such repeated rows are not written (fill_repeated_rows writes them).
void pool_gray_rows(const PaletteLut& lut, const uint8_t* a, const uint8_t* b, int rows, int width,
                    uint8_t* pooled, int16_t* source_rows);

// The rows pool_gray_rows left unwritten, copied from their source rows.
void fill_repeated_rows(uint8_t* pooled, int rows, int width, const int16_t* source_rows);

}  // namespace atari_vec
