#!/usr/bin/env bash
# sanitize.sh: builds the C++ tests (tests/cpp) with a sanitizer, ALE included, and runs them;
# fails on any test failure and on any sanitizer report.
#
#   scripts/sanitize.sh address [--quick]   # ASan + UBSan (and LeakSanitizer)
#   scripts/sanitize.sh thread  [--quick]   # TSan
#
# --quick shrinks the iteration counts (for CI); without it the defaults of the tests apply,
# and ATARI_VEC_TEST_SCALE / ATARI_VEC_POOL_ITERATIONS / ATARI_VEC_ATARI_STEPS scale them.
# The build goes to build/sanitize-<kind> (ATARI_VEC_SANITIZE_BUILD_DIR overrides) and is
# incremental. The ALE source already unpacked by a wheel build is reused when present
# (ALE_SOURCE_DIR overrides); otherwise CMake fetches it. ATARI_VEC_TEST_ROM picks the ROM
# of the real-emulator test (default: ale-py's breakout, found with $PYTHON or python3).
#
# Exit codes: 0 clean, 1 failure or sanitizer report, 2 usage, 77 a tool is missing (no C++
# compiler, CMake, Ninja, or the sanitizer's runtime library), so callers can skip.
set -euo pipefail

usage() {
  echo "usage: $0 {address|thread} [--quick]" >&2
  exit 2
}
[[ $# -ge 1 ]] || usage
kind=$1
shift
[[ $kind == address || $kind == thread ]] || usage
quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    *) usage ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
build=${ATARI_VEC_SANITIZE_BUILD_DIR:-$root/build/sanitize-$kind}
start=$(date +%s)

missing() {
  echo "sanitize.sh: SKIP: $*" >&2
  exit 77
}

cxx=${CXX:-}
if [[ -z $cxx ]]; then
  for c in c++ g++ clang++; do
    if command -v "$c" >/dev/null 2>&1; then cxx=$c; break; fi
  done
fi
[[ -n $cxx ]] || missing "no C++ compiler (c++, g++ or clang++)"
command -v cmake >/dev/null 2>&1 || missing "cmake not found"
command -v ninja >/dev/null 2>&1 || missing "ninja not found"

# The sanitizer runtime is a separate package on some systems (libtsan, libasan): try it on a
# two-line program before spending minutes on ALE.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
flags=$([[ $kind == thread ]] && echo "-fsanitize=thread" || echo "-fsanitize=address,undefined")
printf '#include <thread>\nint main() { std::thread t([] {}); t.join(); return 0; }\n' > "$probe/p.cpp"
if ! "$cxx" -std=c++17 $flags -pthread "$probe/p.cpp" -o "$probe/p" >"$probe/log" 2>&1; then
  missing "$cxx cannot build with $flags: $(head -c 300 "$probe/log")"
fi

# Address-space layout randomisation can collide with TSan's fixed shadow mapping on some
# kernels ("unexpected memory mapping"); running without it avoids that.
run_prefix=(nice -n 19)
if [[ $kind == thread ]] && setarch "$(uname -m)" -R true >/dev/null 2>&1; then
  run_prefix+=(setarch "$(uname -m)" -R)
fi
if ! "${run_prefix[@]}" "$probe/p" >"$probe/log" 2>&1; then
  missing "a $kind-sanitized program does not run here: $(head -c 300 "$probe/log")"
fi

# Without OpenCV: what runs in the hot path is the native resize, and CI (which builds the
# Python module with OpenCV) thereby also builds and tests the OpenCV-free configuration.
cmake_args=(-S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
            -DCMAKE_CXX_COMPILER="$cxx" -DATARI_VEC_SANITIZE="$kind" -DATARI_VEC_BUILD_TESTS=ON
            -DATARI_VEC_OPENCV=OFF)
if [[ -z ${ALE_SOURCE_DIR:-} ]]; then
  ale_version=$(sed -n 's/^set(ATARI_VEC_ALE_VERSION "\([^"]*\)".*/\1/p' "$root/CMakeLists.txt")
  for dir in "$root"/build/*/_deps/ale_py-"$ale_version"; do
    if [[ -f $dir/version.txt ]]; then
      cmake_args+=(-DALE_SOURCE_DIR="$dir")
      break
    fi
  done
fi

echo "sanitize.sh: $kind build in $build"
nice -n 19 cmake "${cmake_args[@]}" >"$probe/configure.log" 2>&1 || {
  cat "$probe/configure.log" >&2
  exit 1
}
# The build log (ALE's warnings included) goes to a file; only a failure prints it.
if ! nice -n 19 cmake --build "$build" -j "${ATARI_VEC_JOBS:-2}" \
    --target test_task_queue test_result_ring test_reset_ahead test_pool test_atari_pool test_bounds >"$build/build.log" 2>&1; then
  grep -E -B2 -A12 'error|FAILED' "$build/build.log" | head -80 >&2
  echo "sanitize.sh: build failed (log: $build/build.log)" >&2
  exit 1
fi
echo "sanitize.sh: built in $(( $(date +%s) - start )) s"

if [[ -z ${ATARI_VEC_TEST_ROM:-} ]]; then
  python=${PYTHON:-$(command -v python3 || command -v python || true)}
  if [[ -n $python ]]; then
    ATARI_VEC_TEST_ROM=$("$python" -c 'from ale_py import roms; print(roms.get_rom_path("breakout"))' 2>/dev/null || true)
  fi
fi
export ATARI_VEC_TEST_ROM=${ATARI_VEC_TEST_ROM:-}
[[ -n $ATARI_VEC_TEST_ROM ]] || echo "sanitize.sh: no ROM found (ale-py missing?); test_atari_pool will be skipped"

if [[ $quick == 1 ]]; then
  export ATARI_VEC_POOL_ITERATIONS=${ATARI_VEC_POOL_ITERATIONS:-1000}
  export ATARI_VEC_ATARI_STEPS=${ATARI_VEC_ATARI_STEPS:-40}
fi
# Every report counts: TSan exits non-zero at exit after any report (exitcode), UBSan must
# be told to stop at its first one, LeakSanitizer runs at exit under ASan.
export TSAN_OPTIONS="exitcode=66 second_deadlock_stack=1 history_size=4 ${TSAN_OPTIONS:-}"
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

log=$build/sanitize-test.log
status=0
"${run_prefix[@]}" ctest --test-dir "$build" -V >"$log" 2>&1 || status=$?
grep -E '^[0-9]+: test_[a-z_]+: ' "$log" || true
grep -E 'tests passed|Test +#' "$log" || true
# Belt and braces: a report that did not change an exit code still fails the run.
reports='WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:'
if grep -qE "$reports" "$log"; then
  echo "sanitize.sh: $kind sanitizer reports (full log: $log); distinct summaries:" >&2
  grep -E 'SUMMARY: |runtime error:' "$log" | sed -E 's/^[0-9]+: //; s/ \(pid=[0-9]+\)//' | sort | uniq -c | sort -rn | head -40 >&2
  echo "sanitize.sh: the first report:" >&2
  grep -E -m1 -A40 "$reports" "$log" | cut -c1-240 >&2
  status=1
fi
elapsed=$(( $(date +%s) - start ))
if [[ $status != 0 ]]; then
  grep -E -B5 'CHECK failed|watchdog:' "$log" | head -40 >&2 || true
  echo "sanitize.sh: $kind FAILED after ${elapsed} s (log: $log)" >&2
  exit 1
fi
echo "sanitize.sh: $kind clean (${elapsed} s)"
