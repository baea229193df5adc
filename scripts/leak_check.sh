#!/usr/bin/env bash
# leak_check.sh: runs a short create/step/close loop of the installed atari_vec under
# valgrind memcheck and summarises what it finds that belongs to atari_vec or ALE.
#
#   scripts/leak_check.sh [cycles]        # default 4 cycles; ~2-4 minutes under valgrind
#
# PYTHONMALLOC=malloc makes every Python allocation visible to memcheck. CPython still keeps
# interned objects, type caches and module state alive until exit by design; memcheck calls
# most of that "possibly lost" or "still reachable", and some "definitely lost" blocks come
# from CPython or NumPy themselves. Those are counted but not held against us: only loss
# records whose allocation stack passes through atari_vec's module (_core), atari_vec:: or
# ale:: code are. The same goes for invalid reads and writes. (pybind11's import-time
# registrations show up as a constant ~16 KB "possibly lost" through _core: run with more
# cycles to see that nothing grows with them.)
#
# Exit codes: 0 nothing attributable, 1 a definite leak or an invalid access attributable
# to atari_vec/ALE, 77 valgrind missing. The full log is kept (path printed at the end).
set -euo pipefail

cycles=${1:-4}
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$(command -v python3 || command -v python)}
# The interpreter binary itself: valgrind would otherwise check a wrapper (pyenv's shims are
# shell scripts) and never see Python.
python=$("$python" -c 'import sys; print(sys.executable)')
if ! command -v valgrind >/dev/null 2>&1; then
  echo "leak_check.sh: SKIP: valgrind not installed" >&2
  exit 77
fi
out=${ATARI_VEC_LEAK_DIR:-$root/build/leak-check}
mkdir -p "$out"
log=$out/memcheck.log
driver=$out/driver.py

# Every path that allocates or frees: sync and async pools, seeded resets (ROM reload),
# stepping, a step in flight at close, and an env dropped without close().
cat >"$driver" <<'EOF'
import gc
import sys

import numpy as np

import atari_vec

cycles = int(sys.argv[1])
kw = dict(frameskip=1, noop_max=0, stack_num=2, num_threads=2)
for i in range(cycles):
    for batch in (0, 1):
        env = atari_vec.AtariVectorEnv("pong", 2, batch_size=batch, **kw)
        env.reset(seed=i)
        for _ in range(5):
            env.step(np.zeros(env.batch_size, dtype=np.int64))
        env.send(np.zeros(env.batch_size, dtype=np.int64))
        if i % 2:
            env.close()
        del env
        gc.collect()
print("driver: done", cycles, "cycles", flush=True)
EOF

echo "leak_check.sh: valgrind memcheck, $cycles cycles (slow: python runs ~50x slower)"
start=$(date +%s)
status=0
PYTHONMALLOC=malloc nice -n 19 valgrind --tool=memcheck --leak-check=full \
  --show-leak-kinds=definite,possible --errors-for-leak-kinds=definite \
  --num-callers=40 --log-file="$log" \
  "$python" "$driver" "$cycles" || status=$?
if [[ $status != 0 ]]; then
  echo "leak_check.sh: the driver itself failed (exit $status); see $log" >&2
  exit 1
fi

# Split the log into records (a header line and its stack) and classify them.
rc=0
"$python" - "$log" <<'EOF' || rc=$?
import re
import sys

text = open(sys.argv[1]).read()
lines = [re.sub(r"^==\d+== ?", "", line) for line in text.splitlines()]
ours = re.compile(r"_core\.cpython|atari_vec::|ale::|/atari_vec/")
records, current = [], None
for line in lines:
    if line.strip() == "":
        if current:
            records.append(current)
        current = None
    elif current is None:
        current = [line]
    else:
        current.append(line)
if current:
    records.append(current)

def kind(rec):
    head = rec[0]
    if "definitely lost in loss record" in head:
        return "definite"
    if "possibly lost in loss record" in head:
        return "possible"
    if head.startswith(("Invalid read", "Invalid write", "Conditional jump", "Use of uninit",
                        "Invalid free", "Mismatched free", "Source and destination overlap")):
        return "error"
    return None

def size(rec):
    m = re.match(r"([\d,]+) (?:\([\d,]+ direct, [\d,]+ indirect\) )?bytes", rec[0])
    return int(m.group(1).replace(",", "")) if m else 0

summary = {}
attributable = {"definite": [], "possible": [], "error": []}
for rec in records:
    k = kind(rec)
    if k is None:
        continue
    summary.setdefault(k, [0, 0])
    summary[k][0] += 1
    summary[k][1] += size(rec)
    if any(ours.search(line) for line in rec[1:]):
        attributable[k].append(rec)

print("leak_check.sh: totals over the whole process (CPython and NumPy included):")
for line in lines:
    if re.match(r"\s*(definitely|indirectly|possibly) lost:|\s*still reachable:|ERROR SUMMARY", line):
        print("   ", line.strip())
for k in ("definite", "possible", "error"):
    n, b = summary.get(k, [0, 0])
    mine = attributable[k]
    print(f"leak_check.sh: {k}: {n} records ({b} bytes); through atari_vec/ALE code: "
          f"{len(mine)} records ({sum(size(r) for r in mine)} bytes)")
bad = attributable["definite"] + attributable["error"]
for rec in bad[:20]:
    print("\n" + "\n".join(rec[:25]))
sys.exit(1 if bad else 0)
EOF
echo "leak_check.sh: $(( $(date +%s) - start )) s; full log: $log"
exit $rc
