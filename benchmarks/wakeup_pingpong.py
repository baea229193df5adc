"""What a thread wake-up costs on this machine: a one-byte ping-pong between two processes
over a socket pair, the answering side either blocking in recv() or polling (non-blocking
reads in a loop, up to 1 ms, then blocking).

The difference between the two round trips is about what the server saves per step by
polling a lone session's connection after a reply (``ATARI_VEC_POLL_US``, see
atari_vec/server/fastws.py) instead of sleeping until the next request wakes it.

    python benchmarks/wakeup_pingpong.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time


def answer(sock: socket.socket, poll: bool) -> None:
    """The answering process: echo every byte until the other side closes."""
    while True:
        if poll:
            sock.setblocking(False)
            end = time.perf_counter() + 0.001
            while True:
                try:
                    data = sock.recv(64)
                    break
                except BlockingIOError:
                    if time.perf_counter() > end:
                        sock.setblocking(True)
                        data = sock.recv(64)
                        break
        else:
            data = sock.recv(64)
        if not data:
            return
        sock.sendall(data)


def round_trip_us(poll: bool, n: int) -> float:
    """The mean round trip in microseconds over n pings."""
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        ours.close()
        try:
            answer(theirs, poll)
        finally:
            os._exit(0)
    theirs.close()
    try:
        for _ in range(200):  # warm-up
            ours.sendall(b"x")
            ours.recv(64)
        start = time.perf_counter()
        for _ in range(n):
            ours.sendall(b"x")
            ours.recv(64)
        return (time.perf_counter() - start) / n * 1e6
    finally:
        ours.close()
        os.waitpid(pid, 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pings", type=int, default=20000)
    args = p.parse_args()
    if args.rounds < 1 or args.pings < 1:
        p.error("--rounds and --pings must be at least 1")
    results: dict[str, list[float]] = {"blocking": [], "polling": []}
    for r in range(args.rounds):
        for kind in (("blocking", "polling") if r % 2 == 0 else ("polling", "blocking")):
            results[kind].append(round_trip_us(kind == "polling", args.pings))
    for kind, values in results.items():
        print(f"{kind:9s} answerer: round trip {statistics.median(values):6.1f} us (median of "
              f"{args.rounds}; {' '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
