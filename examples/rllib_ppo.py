"""PPO with RLlib on atari_vec: several EnvRunners, each stepping one native pool.

Needs Ray's extra (``pip install ".[rllib]"``; ray[rllib] 2.60 pins gymnasium 1.2.2, so a
virtual environment of its own is easiest). Logs one CSV row per training iteration
(``global_step,episodic_return``: env steps so far, and the mean native, unclipped game return
of the last 100 episodes) and plots it with ``plot_learning_curve.py``.

Example:
    python examples/rllib_ppo.py --game pong --num-env-runners 2 --iterations 50 \\
        --log-csv rllib_pong.csv --plot rllib_pong.png
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--game", default="pong")
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--num-env-runners", type=int, default=2)
    p.add_argument("--num-envs-per-env-runner", type=int, default=8)
    p.add_argument("--rollout-length", type=int, default=128,
                   help="steps per env per iteration (train batch = runners x envs x this)")
    p.add_argument("--num-cpus", type=int, default=None, help="for ray.init (default: all)")
    p.add_argument("--log-csv", type=Path, default=Path("rllib_ppo.csv"))
    p.add_argument("--plot", type=Path, default=None, help="also plot the curve to this PNG")
    args = p.parse_args()

    import ray
    from tqdm import tqdm

    from atari_vec.adapters.rllib import ppo_config

    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    config = ppo_config(args.game, num_envs_per_env_runner=args.num_envs_per_env_runner,
                        num_env_runners=args.num_env_runners)
    runners = max(1, args.num_env_runners)
    config.training(train_batch_size_per_learner=args.rollout_length
                    * args.num_envs_per_env_runner * runners)
    algo = config.build_algo()
    start = time.monotonic()
    with args.log_csv.open("w", newline="") as f, tqdm(total=args.iterations, unit="it") as bar:
        writer = csv.writer(f)
        writer.writerow(["global_step", "episodic_return"])
        for _ in range(args.iterations):
            result = algo.train()
            r = result["env_runners"]
            steps = int(result.get("num_env_steps_sampled_lifetime",
                                   r.get("num_env_steps_sampled_lifetime", 0)))
            ret = r.get("atari_vec_episode_return")
            if ret is not None:
                writer.writerow([steps, f"{ret:.3f}"])
                f.flush()
            bar.set_postfix(steps=steps, ret="-" if ret is None else f"{ret:.1f}",
                            sps=f"{steps / (time.monotonic() - start):.0f}")
            bar.update()
    algo.stop()
    ray.shutdown()
    if args.plot:
        subprocess.run([sys.executable, str(Path(__file__).with_name("plot_learning_curve.py")),
                        str(args.log_csv), "--out", str(args.plot), "--window", "1"], check=True)


if __name__ == "__main__":
    main()
