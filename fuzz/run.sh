#!/usr/bin/env bash
# Runs the fuzzers of a FERRY_FUZZ build tree.
#   fuzz/run.sh BUILD_DIR SECONDS [NAME...]   (default: every fuzzer)
# Each fuzzer starts from its committed seeds (fuzz/corpus/NAME) and what
# earlier runs kept (BUILD_DIR/corpus/NAME, where new inputs go, so the
# committed corpus stays small). A crash, leak, UBSan report or an input
# slower than 10 s stops it, leaves the input in BUILD_DIR/crashes and makes
# this script fail. Replay one with: BUILD_DIR/fuzz_NAME CRASH_FILE
set -euo pipefail

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$(cd "$1" && pwd)
seconds=$2
shift 2
names=("$@")
if ((${#names[@]} == 0)); then
  for source in "$fuzz_dir"/*.cpp; do
    names+=("$(basename "$source" .cpp)")
  done
fi

mkdir -p "$build/crashes"
failed=()
for name in "${names[@]}"; do
  mkdir -p "$build/corpus/$name"
  args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1
        -artifact_prefix="$build/crashes/$name-")
  if [[ -f $fuzz_dir/dict/$name.dict ]]; then
    args+=(-dict="$fuzz_dir/dict/$name.dict")
  fi
  echo "fuzz: $name for ${seconds}s"
  if ! "$build/fuzz_$name" "${args[@]}" "$build/corpus/$name" \
    "$fuzz_dir/corpus/$name"; then
    failed+=("$name")
  fi
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/crashes)" >&2
  exit 1
fi
