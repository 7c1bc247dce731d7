#!/bin/sh
# Moving a range between two userfaultfds (bench/uffd_move.c), next to UFFDIO_WRITEPROTECT and fork(),
# pinned (taskset -c 0) and unpinned, REPS times each; prints each run and the medians.
#   bench/uffd-move.sh [SIZE_MIB] [REPS]
set -e
size=${1:-1024}; reps=${2:-5}
dir=$(mktemp -d); trap 'rm -rf "$dir"' EXIT
cc -O2 -o "$dir/uffd_move" "$(dirname "$0")/uffd_move.c"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for place in pinned unpinned; do
  : > "$dir/$place"
  for i in $(seq "$reps"); do
    if [ "$place" = pinned ]; then taskset -c 0 "$dir/uffd_move" "$size"; else "$dir/uffd_move" "$size"; fi | tee -a "$dir/$place"
  done
  printf '%s medians:' "$place"
  for key in wp_all unreg_async reg_sync wp_sync to_sync to_async fork; do
    sed -n "s/.* $key=\([0-9.]*\).*/\1/p" "$dir/$place" | sort -n | awk -v k="$key" '{v[NR]=$1} END {printf " %s=%s", k, (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
  done
  echo
done
