"""PPO on Atari with atari_vec: one file, PyTorch on the CPU, in the style of CleanRL.

Trains a Nature-CNN actor-critic with GAE, the clipped surrogate objective, Adam and a linearly
annealed learning rate, on ``gym.make_vec("AtariVec/Breakout-v5", ...)``. Episode returns
(unclipped, from the environment's native ``info["episode"]``) are printed and, with
``--log-csv``, written as ``global_step,episodic_return,episodic_length`` rows for
``examples/plot_learning_curve.py``.

Example:
    python examples/ppo_atari.py --env-id AtariVec/Breakout-v5 --total-timesteps 10000000 \\
        --num-envs 8 --log-csv breakout.csv
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import nn
from torch.distributions import Categorical

import atari_vec

gym.register_envs(atari_vec)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env-id", default="AtariVec/Breakout-v5", help="a registered AtariVec id")
    p.add_argument("--total-timesteps", type=int, default=10_000_000, help="env steps in all")
    p.add_argument("--num-envs", type=int, default=8, help="parallel environments")
    p.add_argument("--num-steps", type=int, default=128, help="steps per env per rollout")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--learning-rate", type=float, default=2.5e-4)
    p.add_argument(
        "--no-anneal-lr",
        dest="anneal_lr",
        action="store_false",
        help="keep the learning rate constant",
    )
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--num-minibatches", type=int, default=4)
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--clip-coef", type=float, default=0.1)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--vf-coef", type=float, default=0.5)
    p.add_argument("--max-grad-norm", type=float, default=0.5)
    p.add_argument("--target-kl", type=float, default=None, help="stop an update early above it")
    p.add_argument("--episodic-life", action="store_true", help="end episodes on a life loss")
    p.add_argument("--max-num-frames-per-episode", type=int, default=108_000)
    p.add_argument("--num-threads", type=int, default=0, help="env worker threads; 0 = auto")
    p.add_argument("--torch-threads", type=int, default=0, help="torch CPU threads; 0 = default")
    p.add_argument("--log-csv", type=Path, default=None, help="write episode returns here")
    p.add_argument("--quiet", action="store_true", help="no per-episode lines")
    args = p.parse_args(argv)
    args.batch_size = args.num_envs * args.num_steps
    if args.batch_size % args.num_minibatches:
        p.error("--num-envs * --num-steps must be divisible by --num-minibatches")
    args.minibatch_size = args.batch_size // args.num_minibatches
    args.num_iterations = max(1, args.total_timesteps // args.batch_size)
    return args


def layer_init(layer: nn.Module, std: float = np.sqrt(2), bias: float = 0.0) -> nn.Module:
    """Orthogonal weights with gain ``std``, constant bias."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias)
    return layer


class Agent(nn.Module):
    """Nature-CNN torso shared by a categorical policy head and a value head."""

    def __init__(self, obs_shape: tuple[int, ...], num_actions: int):
        super().__init__()
        channels = obs_shape[0]
        conv = nn.Sequential(
            layer_init(nn.Conv2d(channels, 32, 8, stride=4)),
            nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = conv(torch.zeros(1, *obs_shape)).shape[1]
        self.network = nn.Sequential(conv, layer_init(nn.Linear(flat, 512)), nn.ReLU())
        self.actor = layer_init(nn.Linear(512, num_actions), std=0.01)
        self.critic = layer_init(nn.Linear(512, 1), std=1.0)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.network(obs.float() / 255.0)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self.features(obs)).squeeze(-1)

    def act(
        self, obs: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or score) actions: returns action, log-prob, entropy and value."""
        hidden = self.features(obs)
        dist = Categorical(logits=self.actor(hidden))
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), self.critic(hidden).squeeze(-1)


class Progress:
    """A tqdm bar when tqdm is installed, else one printed line per update."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar: Any = None
        else:
            self.bar = tqdm(total=total, unit="step", dynamic_ncols=True)

    def update(self, steps: int, text: str) -> None:
        self.done += steps
        if self.bar is not None:
            self.bar.update(steps)
            self.bar.set_postfix_str(text)
        else:
            print(f"{self.done}/{self.total} steps  {text}", flush=True)

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns of one rollout, ``(steps, envs)`` each.

    ``dones[t]`` marks that the episode ended with the transition of step ``t``, so neither
    the value nor the advantage of step ``t + 1`` flows back into step ``t``.
    """
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(len(rewards))):
        following = next_value if t == len(rewards) - 1 else values[t + 1]
        alive = 1.0 - dones[t]
        delta = rewards[t] + gamma * following * alive - values[t]
        last = delta + gamma * lam * alive * last
        advantages[t] = last
    return advantages, advantages + values


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    device = torch.device("cpu")

    # SAME_STEP: when an episode ends, the returned observation already starts the next one
    # and the last one is in info["final_obs"] (used to bootstrap truncated episodes).
    envs = gym.make_vec(
        args.env_id,
        num_envs=args.num_envs,
        autoreset_mode=AutoresetMode.SAME_STEP,
        episodic_life=args.episodic_life,
        max_num_frames_per_episode=args.max_num_frames_per_episode,
        num_threads=args.num_threads,
    )
    obs_shape = envs.single_observation_space.shape
    agent = Agent(obs_shape, envs.single_action_space.n).to(device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    n, s = args.num_envs, args.num_steps
    obs_buf = torch.zeros((s, n, *obs_shape), dtype=torch.uint8)
    actions = torch.zeros((s, n), dtype=torch.long)
    logprobs = torch.zeros((s, n))
    rewards = torch.zeros((s, n))
    dones = torch.zeros((s, n))
    values = torch.zeros((s, n))

    csv_file = None
    writer = None
    if args.log_csv is not None:
        args.log_csv.parent.mkdir(parents=True, exist_ok=True)
        csv_file = args.log_csv.open("w", newline="")
        writer = csv.writer(csv_file)
        writer.writerow(["global_step", "episodic_return", "episodic_length"])
        csv_file.flush()

    global_step = 0
    recent: list[float] = []
    progress = Progress(args.num_iterations * args.batch_size)
    start = time.perf_counter()
    next_obs_np, _ = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(next_obs_np)
    try:
        for iteration in range(1, args.num_iterations + 1):
            if args.anneal_lr:
                frac = 1.0 - (iteration - 1.0) / args.num_iterations
                optimizer.param_groups[0]["lr"] = frac * args.learning_rate

            for step in range(s):
                global_step += n
                obs_buf[step] = next_obs
                with torch.no_grad():
                    action, logprob, _, value = agent.act(next_obs)
                actions[step], logprobs[step], values[step] = action, logprob, value

                next_obs_np, reward, term, trunc, info = envs.step(action.numpy())
                reward = torch.as_tensor(reward, dtype=torch.float32)
                # A truncated episode did not end by itself: bootstrap from its last state.
                cut = np.flatnonzero(trunc & ~term)
                if len(cut) and "final_obs" in info:
                    with torch.no_grad():
                        last = agent.value(torch.as_tensor(info["final_obs"][cut]))
                    reward[cut] += args.gamma * last
                rewards[step] = reward
                dones[step] = torch.as_tensor(term | trunc, dtype=torch.float32)
                next_obs = torch.as_tensor(next_obs_np)

                if "_episode" in info:
                    for i in np.flatnonzero(info["_episode"]):
                        ret = float(info["episode"]["r"][i])
                        length = int(info["episode"]["l"][i])
                        recent = (recent + [ret])[-100:]
                        if writer is not None:
                            writer.writerow([global_step, ret, length])
                            csv_file.flush()  # a run stopped any way keeps its curve
                        if not args.quiet:
                            progress.write(f"global_step={global_step} episodic_return={ret:g}")

            with torch.no_grad():
                next_value = agent.value(next_obs)
            advantages, returns = gae(
                rewards, values, dones, next_value, args.gamma, args.gae_lambda
            )

            b_obs = obs_buf.reshape(-1, *obs_shape)
            b_actions = actions.reshape(-1)
            b_logprobs = logprobs.reshape(-1)
            b_advantages = advantages.reshape(-1)
            b_returns = returns.reshape(-1)
            b_values = values.reshape(-1)

            clipfracs = []
            approx_kl = torch.zeros(())
            for _epoch in range(args.update_epochs):
                order = torch.randperm(args.batch_size)
                for first in range(0, args.batch_size, args.minibatch_size):
                    mb = order[first : first + args.minibatch_size]
                    _, new_logprob, entropy, new_value = agent.act(b_obs[mb], b_actions[mb])
                    log_ratio = new_logprob - b_logprobs[mb]
                    ratio = log_ratio.exp()
                    with torch.no_grad():
                        approx_kl = ((ratio - 1) - log_ratio).mean()
                        clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean())

                    adv = b_advantages[mb]
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                    pg_loss = torch.max(
                        -adv * ratio,
                        -adv * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef),
                    ).mean()

                    # Clipped value loss, as in the PPO2 baselines.
                    v_clipped = b_values[mb] + torch.clamp(
                        new_value - b_values[mb], -args.clip_coef, args.clip_coef
                    )
                    v_loss = (
                        0.5
                        * torch.max(
                            (new_value - b_returns[mb]) ** 2, (v_clipped - b_returns[mb]) ** 2
                        ).mean()
                    )

                    loss = pg_loss - args.ent_coef * entropy.mean() + args.vf_coef * v_loss
                    optimizer.zero_grad()
                    loss.backward()
                    nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                    optimizer.step()
                if args.target_kl is not None and approx_kl > args.target_kl:
                    break

            if csv_file is not None:
                csv_file.flush()
            sps = global_step / (time.perf_counter() - start)
            mean_return = f"{np.mean(recent):.1f}" if recent else "n/a"
            progress.update(
                args.batch_size,
                f"it {iteration}/{args.num_iterations} return(100) {mean_return} "
                f"kl {float(approx_kl):.4f} clip {float(torch.stack(clipfracs).mean()):.3f} "
                f"sps {sps:,.0f}",
            )
    finally:
        progress.close()
        envs.close()
        if csv_file is not None:
            csv_file.close()


if __name__ == "__main__":
    main()
