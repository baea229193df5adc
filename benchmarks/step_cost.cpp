// step_cost.cpp: splits the cost of one environment step into its parts, in one thread:
// emulation (frameskip x act), screen fetch + palette (third frame), the same fused with the
// max-pool (last frame), resize (OpenCV and the native kernel), frame-stack copy, and the
// queue + result-ring round trip.
//
// Build and run: see benchmarks/README.md (cmake -DATARI_VEC_BUILD_BENCHMARKS=ON).
// Usage: step_cost ROM_PATH [iterations]
#include <ale/ale_interface.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "frame_ops.hpp"
#include "resize.hpp"
#include "result_ring.hpp"
#include "task_queue.hpp"

using namespace atari_vec;
using Clock = std::chrono::steady_clock;

namespace {

template <typename F>
double micros_per_call(int iterations, F&& f) {
  const auto start = Clock::now();
  for (int i = 0; i < iterations; ++i) f(i);
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / iterations;
}

volatile uint8_t sink;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ROM_PATH [iterations]\n", argv[0]);
    return 2;
  }
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 2000;
  constexpr int kFrameskip = 4, kStack = 4, kOut = 84;
  init_resize();
  ale::Logger::setMode(ale::Logger::Error);
  ale::ALEInterface ale;
  ale.loadROM(argv[1]);
  const ale::ActionVect actions = ale.getMinimalActionSet();
  const int h = static_cast<int>(ale.getScreen().height());
  const int w = static_cast<int>(ale.getScreen().width());
  const std::size_t pixels = static_cast<std::size_t>(h) * w;

  PaletteLut lut;
  uint8_t index[256];
  for (int i = 0; i < 256; ++i) index[i] = static_cast<uint8_t>(i);
  ale.theOSystem->colourPalette().applyPaletteGrayscale(lut.gray.data(), index, 256);
  std::vector<uint8_t> a(pixels), b(pixels), out(kOut * kOut), stack(kStack * kOut * kOut),
      obs(kStack * kOut * kOut);
  AreaResizer resizer(h, w, kOut, kOut, 1);
  std::mt19937 rng(0);

  const double emulate = micros_per_call(iterations, [&](int) {
    const ale::Action act = actions[rng() % actions.size()];
    for (int k = 0; k < kFrameskip; ++k) ale.act(act);
    if (ale.game_over()) ale.reset_game();
  });
  const double fetch = micros_per_call(iterations, [&](int i) {
    apply_palette(lut, true, ale.getScreen().getArray(), pixels, (i & 1) ? a.data() : b.data());
  });
  const double pool = micros_per_call(iterations, [&](int) { max_inplace(a.data(), b.data(), pixels); });
  // The step's last frame: palette and max-pool in one pass (what the environment runs).
  const double fetch_pool = micros_per_call(iterations, [&](int) {
    apply_gray_max(lut, ale.getScreen().getArray(), b.data(), pixels, a.data());
  });
  // OpenCV's resize, for comparison, when this build has OpenCV.
  const double resize_cv = have_opencv() ? micros_per_call(iterations, [&](int) {
    resize_area(a.data(), h, w, out.data(), kOut, kOut, 1);
  }) : -1.0;
  const double resize_native = micros_per_call(iterations, [&](int) { resizer.run(a.data(), out.data()); });
  const double copy = micros_per_call(iterations, [&](int i) {
    std::memcpy(stack.data() + (i % kStack) * kOut * kOut, out.data(), out.size());
    std::memcpy(obs.data(), stack.data(), obs.size());
    sink = obs[i % obs.size()];
  });
  TaskQueue queue(16);
  ResultRing ring(1, 3, false);
  BatchBuffers buffers;
  for (int blk = 0; blk < 3; ++blk) ring.prepare(blk, buffers);
  const double queueing = micros_per_call(iterations, [&](int i) {
    Task t{0, TaskKind::kStep};
    queue.push_bulk(&t, 1);
    queue.pop(t);
    const RowRef ref = ring.claim(0);
    ring.commit(ref);
    ring.prepare((i + 2) % 3, buffers);
  });

  const double total = emulate + fetch + fetch_pool + resize_native + copy + queueing;
  std::printf("per step (frameskip %d, %dx%d gray, stack %d), microseconds, one thread:\n",
              kFrameskip, kOut, kOut, kStack);
  std::printf("  %-28s %8.2f\n", "emulation (act x4)", emulate);
  std::printf("  %-28s %8.2f\n", "screen fetch + palette", fetch);
  std::printf("  %-28s %8.2f\n", "  same + max-pool, fused", fetch_pool);
  std::printf("  %-28s %8.2f  (not in the total: the fused pass does it)\n", "  max-pool alone", pool);
  if (resize_cv >= 0) {
    std::printf("  %-28s %8.2f\n", "resize, cv::resize", resize_cv);
  } else {
    std::printf("  %-28s %8s\n", "resize, cv::resize", "(no OpenCV in this build)");
  }
  std::printf("  %-28s %8.2f\n", "resize, native kernel", resize_native);
  std::printf("  %-28s %8.2f\n", "stack write + copy out", copy);
  std::printf("  %-28s %8.2f\n", "queue + ring round trip", queueing);
  std::printf("  %-28s %8.2f  (overhead %.1f%% of the step)\n", "total (native resize)", total,
              100.0 * (total - emulate) / total);
  return 0;
}
