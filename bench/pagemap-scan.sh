#!/bin/sh
# PAGEMAP_SCAN read-and-reset next to UFFDIO_WRITEPROTECT and fork() (bench/pagemap_scan.c),
# pinned (taskset -c 0) and unpinned, REPS times each; prints each run and the medians.
#   bench/pagemap-scan.sh [SIZE_MIB] [REPS]
set -e
size=${1:-1024}; reps=${2:-5}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cc -O2 -o "$dir/pagemap_scan" "$(dirname "$0")/pagemap_scan.c"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for place in pinned unpinned; do
  : > "$dir/$place"
  for i in $(seq "$reps"); do
    if [ "$place" = pinned ]; then taskset -c 0 "$dir/pagemap_scan" "$size"; else "$dir/pagemap_scan" "$size"; fi | tee -a "$dir/$place"
  done
  printf '%s medians:' "$place"
  for key in scan_all rewrite scan_all2 scan_1pct scan_none wp_all fork cow_rewrite; do
    sed -n "s/.* $key=\([0-9.]*\).*/\1/p" "$dir/$place" | sort -n | awk -v k="$key" '{v[NR]=$1} END {printf " %s=%s", k, (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
  done
  echo
done
