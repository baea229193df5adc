"""Step one build of atari_vec a fixed number of times, for callgrind A/B comparisons.

Instruction counts do not depend on what else the machine is doing, so they compare two
builds where wall-clock timings on a shared machine are too noisy. Run it under valgrind
twice per build with different step counts; the difference of the two totals is the cost of
the extra steps alone (imports and construction cancel out):

    PY=$(python -c 'import sys; print(sys.executable)')   # the real binary, not a shim
    PYTHONPATH=/tmp/av_before valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        $PY benchmarks/callgrind_steps.py breakout 4 100
    ... the same with 600 steps, and both again with PYTHONPATH=/tmp/av_after

A build that knows ``seeding="ale_py"`` uses it, so builds from before and after the seeding
change replay the same trajectories (same emulation work). One worker thread; the settings
of benchmarks/throughput.py.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from throughput import ALE_KWARGS  # noqa: E402

import atari_vec  # noqa: E402


def main() -> None:
    game, num_envs, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    params = inspect.signature(atari_vec.AtariVectorEnv).parameters
    extra = {"seeding": "ale_py"} if "seeding" in params else {}
    env = atari_vec.AtariVectorEnv(game, num_envs, num_threads=1, **ALE_KWARGS, **extra)
    actions = np.random.default_rng(0).integers(0, env.single_action_space.n, (steps, num_envs))
    env.reset(seed=0)
    for a in actions:
        env.step(a)
    env.close()
    print(f"{steps} batches of {num_envs} stepped with {atari_vec.__file__}")


if __name__ == "__main__":
    main()
