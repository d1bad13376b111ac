#!/usr/bin/env bash
# Runs every benchmark against one build directory and prints their figures,
# then the goal table of issues 13-15: each goal, the measured figure and whether
# it is met. Benches report their rows as "goal-row|goal|measured|met".
# The benchmarks assert nothing: this fails only when one of them cannot run.
#   bench/run.sh <build_dir>
set -u

if [ $# -ne 1 ]; then
  echo "usage: $0 <build_dir>" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd) || exit 2
repo_dir=$(cd "$(dirname "$0")/.." && pwd)
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT

echo "== Ferry benchmarks"
echo "date:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc:  $(nproc)"
echo "commit: $(git -C "$repo_dir" describe --always --dirty 2>/dev/null || echo unknown)"
echo "build:  $build_dir"

failed=0
for bench in bench_ingest bench_req bench_fanout bench_clients bench_sync bench_negentropy bench_cluster bench_cluster_scale bench_scale bench_federation; do
  echo
  echo "== $bench"
  "$build_dir/$bench" --ferry "$build_dir/ferry" | tee -a "$rows" | grep -v '^goal-row|'
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "$bench: FAILED to run" >&2
    failed=1
  fi
done

echo
echo "== goals of issue 13, the cluster (14) and federation (15) (2 cores; strfry figures from the issue)"
grep '^goal-row|' "$rows" | sort -t'|' -k2,2 -s | awk -F'|' '
  BEGIN { printf "| %-66s | %-36s | %-9s |\n", "goal", "measured", "status"
          printf "|%s|%s|%s|\n", "--------------------------------------------------------------------",
                 "--------------------------------------", "-----------" }
  { printf "| %-66s | %-36s | %-9s |\n", $2, $3, $4 }'
exit $failed
