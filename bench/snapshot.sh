#!/bin/sh
# Exports a commit of this repository (default HEAD) to /tmp/numactlx-COMMIT, builds it
# there and prints the path of its bin/numactlx, so that a benchmark measures one known
# commit while the working tree keeps changing:
#
#   node bench/run.mjs --numactlx "$(bench/snapshot.sh)"
#
# Read-only for the repository (git archive); node_modules is shared by a symlink.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse "${1:-HEAD}")
dir=/tmp/numactlx-$(echo "$commit" | cut -c1-12)
if [ ! -x "$dir/bin/numactlx" ] || [ ! -d "$dir/dist" ]; then
	rm -rf "$dir"
	mkdir -p "$dir"
	git -C "$repo" archive "$commit" | tar -x -C "$dir"
	ln -s "$repo/node_modules" "$dir/node_modules"
	echo "$commit" > "$dir/COMMIT"
	(cd "$dir" && npm run --silent build >&2)
fi
echo "$dir/bin/numactlx"
