"""Plot the learning curve written by ``ppo_atari.py --log-csv`` as a PNG.

Each CSV (``global_step,episodic_return[,episodic_length]``) is drawn as faint points, one per
episode, under a moving average over ``--window`` episodes.

Example:
    python examples/plot_learning_curve.py breakout.csv --out breakout.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def read_curve(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(global_steps, returns)`` from one CSV, sorted by step."""
    steps: list[int] = []
    returns: list[float] = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"global_step", "episodic_return"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            steps.append(int(row["global_step"]))
            returns.append(float(row["episodic_return"]))
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps)[order], np.asarray(returns)[order]


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    upper = np.arange(1, len(values) + 1)
    return (sums[upper] - sums[upper - counts]) / counts


def plot(paths: list[Path], out: Path, window: int, title: str | None) -> Path:
    """Draw every CSV in ``paths`` on one figure and save it to ``out``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for path in paths:
        steps, returns = read_curve(path)
        if len(steps) == 0:
            raise ValueError(f"{path}: no episodes recorded")
        (line,) = ax.plot(steps, moving_average(returns, window), label=path.stem)
        ax.scatter(steps, returns, s=3, alpha=0.2, color=line.get_color())
    ax.set_xlabel("environment steps")
    ax.set_ylabel(f"episodic return (mean of last {window})")
    ax.set_title(title or "PPO learning curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path, nargs="+", help="CSV files from ppo_atari.py")
    parser.add_argument("--out", type=Path, default=Path("learning_curve.png"))
    parser.add_argument("--window", type=int, default=100, help="episodes per moving average")
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error("--window must be at least 1")
    print(plot(args.csv, args.out, args.window, args.title))


if __name__ == "__main__":
    main()
