#!/usr/bin/env bash
# Runs every benchmark against one build directory and prints their figures.
# The benchmarks assert nothing: this fails only when one of them cannot run.
#   bench/run.sh <build_dir>
set -u

if [ $# -ne 1 ]; then
  echo "usage: $0 <build_dir>" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd) || exit 2
repo_dir=$(cd "$(dirname "$0")/.." && pwd)

echo "== Ferry benchmarks"
echo "date:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc:  $(nproc)"
echo "commit: $(git -C "$repo_dir" describe --always --dirty 2>/dev/null || echo unknown)"
echo "build:  $build_dir"

failed=0
for bench in bench_ingest bench_req bench_sync bench_negentropy; do
  echo
  echo "== $bench"
  if ! "$build_dir/$bench" --ferry "$build_dir/ferry"; then
    echo "$bench: FAILED to run" >&2
    failed=1
  fi
done
exit $failed
