// draw_skip.cpp: an experiment, not part of atari_vec. Would it pay to skip drawing the
// frames that no observation reads (frames 1 and 2 of a 4-frame step), and would the
// observations stay exact?
//
// ALE's TIA has a mode that emulates a frame without writing its pixels (the setting
// "fast_tia_update": collisions are still computed, the frame buffer is left alone). The
// setting is read once when the TIA is built; this program flips the TIA's private flag
// between frames instead, so one environment can skip drawing frames 1-2 and draw 3-4.
// Private access goes through an explicit template instantiation (the standard exempts its
// arguments from access checks): fine for an experiment, not for the library.
//
//   draw_skip ROM compare STEPS   two environments in lockstep, one drawing every frame and
//                                 one skipping frames 1-2 and the reset no-ops before the last
//                                 two; counts screens (frames 3-4 and the reset's last one)
//                                 and states (RAM, reward, game over) that differ, and frames
//                                 whose drawing stopped before the bottom of the screen
//   draw_skip ROM time STEPS      microseconds per 4-frame step, drawing every frame and
//                                 skipping frames 1-2, interleaved three times
//
// Build: cmake ... -DATARI_VEC_BUILD_BENCHMARKS=ON; cmake --build build/bench --target draw_skip
#include <ale/ale_interface.hpp>
#include <ale/emucore/Console.hxx>
#include <ale/emucore/OSystem.hxx>
#include <ale/emucore/TIA.hxx>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

namespace {

using ale::stella::TIA;

// Access to a private data member: Rob<Tag, &TIA::member> defines get(Tag) returning the
// member pointer, and explicit instantiation may name private members.
template <typename Tag, typename Tag::type Member>
struct Rob {
  friend typename Tag::type get(Tag) { return Member; }
};
struct FastUpdate { using type = bool TIA::*; friend type get(FastUpdate); };
struct ClockAtLastUpdate { using type = int TIA::*; friend type get(ClockAtLastUpdate); };
struct ClockStopDisplay { using type = int TIA::*; friend type get(ClockStopDisplay); };
template struct Rob<FastUpdate, &TIA::fastUpdate>;
template struct Rob<ClockAtLastUpdate, &TIA::myClockAtLastUpdate>;
template struct Rob<ClockStopDisplay, &TIA::myClockStopDisplay>;

TIA& tia_of(ale::ALEInterface& ale) {
  return dynamic_cast<TIA&>(ale.theOSystem->console().mediaSource());
}
void set_drawing(ale::ALEInterface& ale, bool draw) { tia_of(ale).*get(FastUpdate{}) = !draw; }
// The last frame's drawing ended before the bottom of the display (a short frame): the rest
// of the buffer still holds what an earlier frame drew there.
bool short_frame(ale::ALEInterface& ale) {
  TIA& t = tia_of(ale);
  return t.*get(ClockAtLastUpdate{}) < t.*get(ClockStopDisplay{});
}

constexpr int kFrameskip = 4;
constexpr int kNoopMax = 30;

void load(ale::ALEInterface& ale, const std::string& rom) {
  ale.setInt("random_seed", 7);
  ale.setFloat("repeat_action_probability", 0.25f);
  ale.loadROM(rom);
}

bool same_screen(ale::ALEInterface& a, ale::ALEInterface& b) {
  const ale::ALEScreen& sa = a.getScreen();
  return std::memcmp(sa.getArray(), b.getScreen().getArray(), sa.arraySize()) == 0;
}

int compare(const std::string& rom, int steps) {
  ale::ALEInterface every, skip;
  load(every, rom);
  load(skip, rom);
  const ale::ActionVect actions = every.getMinimalActionSet();
  std::mt19937 rng(1);
  long frames = 0, screens = 0, screen_diffs = 0, state_diffs = 0, shorts = 0, observed_shorts = 0;
  for (int s = 0; s < steps; ++s) {
    const ale::Action a = actions[rng() % actions.size()];
    // As the reference does: stop at game over, and read frames 3 and 4 only if reached.
    for (int k = 0; k < kFrameskip && !every.game_over(); ++k) {
      set_drawing(skip, k >= kFrameskip - 2);
      const ale::reward_t r1 = every.act(a), r2 = skip.act(a);
      ++frames;
      state_diffs += r1 != r2;
      const bool observed = k >= kFrameskip - 2 && !every.game_over();
      if (short_frame(every)) {
        ++shorts;
        observed_shorts += observed;
      }
      if (observed) {
        ++screens;
        screen_diffs += !same_screen(every, skip);
      }
    }
    state_diffs += std::memcmp(every.getRAM().array(), skip.getRAM().array(), 128) != 0;
    state_diffs += every.game_over() != skip.game_over();
    if (every.game_over()) {
      set_drawing(skip, true);
      every.reset_game();
      skip.reset_game();
      const int noops = static_cast<int>(rng() % (kNoopMax + 1));
      for (int i = 0; i < noops; ++i) {
        set_drawing(skip, i >= noops - 2);
        every.act(ale::PLAYER_A_NOOP);
        skip.act(ale::PLAYER_A_NOOP);
      }
      ++screens;
      screen_diffs += !same_screen(every, skip);
    }
  }
  const std::string name = rom.substr(rom.find_last_of('/') + 1);
  std::printf("%-26s frames %6ld  screens %6ld  screens differing %4ld  states differing %ld  "
              "short frames %ld (observed %ld)\n",
              name.c_str(), frames, screens, screen_diffs, state_diffs, shorts, observed_shorts);
  return 0;
}

double time_steps(const std::string& rom, int steps, bool skip_drawing) {
  ale::ALEInterface ale;
  load(ale, rom);
  const ale::ActionVect actions = ale.getMinimalActionSet();
  std::mt19937 rng(1);
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) {
    const ale::Action a = actions[rng() % actions.size()];
    for (int k = 0; k < kFrameskip; ++k) {
      if (skip_drawing) set_drawing(ale, k >= kFrameskip - 2);
      ale.act(a);
    }
    if (ale.game_over()) {
      set_drawing(ale, true);
      ale.reset_game();
    }
  }
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() /
         steps;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || (std::strcmp(argv[2], "compare") != 0 && std::strcmp(argv[2], "time") != 0)) {
    std::fprintf(stderr, "usage: %s ROM compare|time STEPS\n", argv[0]);
    return 2;
  }
  ale::Logger::setMode(ale::Logger::Error);
  const std::string rom = argv[1];
  const int steps = std::atoi(argv[3]);
  if (std::strcmp(argv[2], "compare") == 0) return compare(rom, steps);
  for (int round = 0; round < 3; ++round) {
    const double every = time_steps(rom, steps, false), skip = time_steps(rom, steps, true);
    std::printf("%s: draw every frame %.1f us/step, skip frames 1-2 %.1f us/step (%.3fx)\n",
                rom.substr(rom.find_last_of('/') + 1).c_str(), every, skip, every / skip);
  }
  return 0;
}
