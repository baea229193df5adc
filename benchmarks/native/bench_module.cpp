// bench_module.cpp: atari_vec._bench, the benchmark-only native code, kept out of the
// production module (_core): the bare-emulator ceiling that benchmarks/throughput.py
// reports beside the peers.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "emulator_limit.hpp"

namespace py = pybind11;

PYBIND11_MODULE(_bench, m) {
  m.doc() = "atari_vec benchmark helpers (not part of the API)";
  m.def(
      "emulator_limit",
      [](const std::string& rom_path, int num_envs, int num_threads, int64_t frames_per_env,
         int frameskip, bool pin, uint64_t seed, float repeat_action_probability,
         const std::string& through) {
        atari_vec::Through how;
        if (through == "ale") {
          how = atari_vec::Through::kAle;
        } else if (through == "env_ram") {
          how = atari_vec::Through::kEnvRam;
        } else if (through == "env_gray") {
          how = atari_vec::Through::kEnvGray;
        } else {
          throw py::value_error("through must be 'ale', 'env_ram' or 'env_gray', got '" +
                                through + "'");
        }
        atari_vec::LimitResult r;
        {
          py::gil_scoped_release release;
          r = atari_vec::emulator_limit(rom_path, num_envs, num_threads, frames_per_env,
                                        frameskip, pin, seed, repeat_action_probability, how);
        }
        return py::make_tuple(r.frames, r.seconds);
      },
      py::arg("rom_path"), py::arg("num_envs"), py::arg("num_threads"), py::arg("frames_per_env"),
      py::arg("frameskip") = 4, py::arg("pin") = false, py::arg("seed") = 0,
      py::arg("repeat_action_probability") = 0.0f, py::arg("through") = "ale",
      "Bare ALE act() throughput in native threads: returns (frames, seconds). through='env_ram' "
      "or 'env_gray' drives atari_vec's AtariEnv in the same loop (no pool, no Python).");
}
