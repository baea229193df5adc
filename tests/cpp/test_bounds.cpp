// test_bounds.cpp: regression tests for two out-of-bounds reads found by the sanitizer
// builds. The resize must read nothing past its source frame: the frame is put at the very
// end of readable memory, so an over-read crashes in any build. Building the palette tables
// must stay inside ALE's palette: only an ASan build can see that one (a global overflow),
// so in other builds the case just constructs an env. It needs a ROM
// (ATARI_VEC_TEST_ROM); without one it is skipped and the resize case still runs.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "atari_env.hpp"
#include "check.hpp"
#include "frame_ops.hpp"
#include "resize.hpp"

using namespace atari_vec;

namespace {

// `bytes` of memory that end exactly where an inaccessible page begins, so reading even one
// byte past the end faults, with or without a sanitizer.
uint8_t* guarded_buffer(std::size_t bytes) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t data_pages = (bytes + page - 1) / page;
  void* base = mmap(nullptr, (data_pages + 1) * page, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(base != MAP_FAILED);
  uint8_t* guard = static_cast<uint8_t*>(base) + data_pages * page;
  CHECK(mprotect(guard, page, PROT_NONE) == 0);
  return guard - bytes;
}

// AreaResizer keeps 32 floats of slack after each converted row; it once converted the slack
// too, reading 32 bytes past the caller's frame on the last row (ASan: heap-buffer-overflow
// on every AtariEnv step; valgrind: "Invalid read of size 32").
void resize_reads_only_the_frame() {
  struct Geometry {
    int src_h, src_w, dst_h, dst_w, channels;
  };
  for (const Geometry& g : {Geometry{210, 160, 84, 84, 1}, Geometry{210, 160, 84, 84, 3},
                            Geometry{210, 160, 42, 42, 1}}) {
    if (!AreaResizer::supports(g.src_h, g.src_w, g.dst_h, g.dst_w)) continue;
    const std::size_t bytes = static_cast<std::size_t>(g.src_h) * g.src_w * g.channels;
    uint8_t* src = guarded_buffer(bytes);
    for (std::size_t i = 0; i < bytes; ++i) src[i] = static_cast<uint8_t>(i * 37);
    std::vector<uint8_t> dst(static_cast<std::size_t>(g.dst_h) * g.dst_w * g.channels);
    AreaResizer resizer(g.src_h, g.src_w, g.dst_h, g.dst_w, g.channels);
    std::printf("resize %dx%dx%d -> %dx%d at a guard page\n", g.src_h, g.src_w, g.channels,
                g.dst_h, g.dst_w);
    std::fflush(stdout);  // a crash in run() should still say which geometry
    resizer.run(src, dst.data());
  }
}

// ALE's grayscale of palette index i is entry i + 1 of its 256-entry table, so asking it for
// all 256 indices once read NTSCPalette[256] (ASan: global-buffer-overflow in
// ColourPalette::applyPaletteGrayscale, from AtariEnv's constructor). Returns false when
// there is no ROM to build an env from.
bool palette_tables_stay_in_bounds() {
  const char* rom = std::getenv("ATARI_VEC_TEST_ROM");
  if (rom == nullptr || *rom == '\0') return false;
  for (bool grayscale : {true, false}) {
    EnvConfig config;
    config.rom_path = rom;
    config.obs_type = grayscale ? ObsType::kGrayscale : ObsType::kRGB;
    AtariEnv env(config);
    env.reset();
    env.step();
  }
  return true;
}

}  // namespace

int main() {
  atari_vec::testing::start_watchdog(300);
  resize_reads_only_the_frame();
  const bool palette = palette_tables_stay_in_bounds();
  std::printf("test_bounds: OK%s\n",
              palette ? "" : " (palette case skipped: set ATARI_VEC_TEST_ROM)");
  return 0;
}
