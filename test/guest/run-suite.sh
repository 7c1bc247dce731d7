#!/usr/bin/env bash
# test/guest/run-suite.sh [--kernel KVER] [--only G1,G2] [--backings dax,file] [--no-build]
#
# The guest suite: numactlx on /dev/dax0.0 and on a file, in the QEMU guest of vm.sh, one
# boot per group (persistence takes three boots on the same images, each picking up what
# the previous one left). Builds the project (npm run build) and the C fixtures on the host first;
# setup.sh must have run. Prints each check as it runs, then a summary with the time each
# boot took, and ends with `N passed, N failed`. Exit 0 only when every check passed.
#
# Groups (test/guest/groups/):
#   programs    doctor; python3 and redis-server with all their memory on node 3
#   snapshots   memhold on node 3: snapshots by signal, CLI and cron, incremental bytes,
#               verify, exact contents of raw exports, an exported core read by gdb
#   kill9       kill -9 of numactlx while a snapshot is being copied: verify clean, the
#               earlier snapshot intact, the backing usable again
#   persist-1   a snapshot made durable, then the guest powered off hard
#   persist-2   after the power-off: snapshots, verify and export show it exactly; then
#               a power-off while a snapshot is being copied
#   persist-3   after that power-off: every earlier snapshot intact, verify clean
set -uo pipefail

here=$(dirname "$(readlink -f "$0")")
project=$(cd "$here/../.." && pwd)
run_dir=${NUMACTLX_GUEST_RUN:-/var/tmp/numactlx-guest}
share=$run_dir/share
kver= only= backings=dax,file build=1
while [ $# -gt 0 ]; do
  case $1 in
    --kernel) kver=$2; shift 2;;
    --only) only=$2; shift 2;;
    --backings) backings=$2; shift 2;;
    --no-build) build=0; shift;;
    *) echo "run-suite: unknown argument '$1' (see the comment at the top of $0)" >&2; exit 2;;
  esac
done

# name|vm.sh options|the group's command (in the guest, cwd = the shared directory)
groups=(
  "programs|--fresh|programs.mjs"
  "snapshots|--fresh|snapshots.mjs"
  "kill9|--fresh|kill9.mjs"
  "persist-1|--fresh|persist.mjs 1"
  "persist-2||persist.mjs 2"
  "persist-3||persist.mjs 3"
)

suite_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$build" = 1 ]; then
  echo "run-suite: building numactlx (npm run build)"
  (cd "$project" && npm run --silent build) || { echo "run-suite: the build failed"; exit 1; }
fi
mkdir -p "$share/bin"
for f in memhold pagecheck; do
  gcc -O2 -Wall -Wextra -Werror -o "$share/bin/$f" "$here/fixtures/$f.c" || { echo "run-suite: cannot compile $f.c"; exit 1; }
done
# The host suite's sandboxes: a whitelist, and a deny-list (libseccomp-dev: the guest's root is
# the host's, libseccomp.so with it).
gcc -O2 -Wall -Wextra -Werror -o "$share/bin/sandboxed" "$here/../fixtures/sandboxed.c" ||
  { echo "run-suite: cannot compile sandboxed.c"; exit 1; }
gcc -O2 -Wall -Wextra -Werror -o "$share/bin/sandboxed_denylist" "$here/../fixtures/sandboxed_denylist.c" -lseccomp ||
  { echo "run-suite: cannot compile sandboxed_denylist.c (apt-get install libseccomp-dev)"; exit 1; }
# The host suite's processes on their parent's mm, sparse touches (fault-ahead), and
# threads forking at once.
for f in clone_vm sparse_touch fork_race; do
  gcc -O2 -Wall -Wextra -Werror -pthread -o "$share/bin/$f" "$here/../fixtures/$f.c" || { echo "run-suite: cannot compile $f.c"; exit 1; }
done
results=$share/results.jsonl
: > "$results"
rm -f "$share/persist-state.json"

kernel_opt=()
[ -n "$kver" ] && kernel_opt=(--kernel "$kver")
summary=()
for entry in "${groups[@]}"; do
  IFS='|' read -r name opts cmd <<< "$entry"
  script=${cmd%% *} args=
  [[ $cmd == *" "* ]] && args=${cmd#* }
  if [ -n "$only" ] && [[ ",$only," != *",${name%-[0-9]},"* ]] && [[ ",$only," != *",$name,"* ]]; then continue; fi
  echo "run-suite: group $name"
  before=$(wc -l < "$results")
  start=$(date +%s)
  # shellcheck disable=SC2086 # opts is a word list
  "$here/vm.sh" $opts "${kernel_opt[@]}" --share "$share" --project "$project" \
    --env "GUEST_BIN=$share/bin" --env "GUEST_BACKINGS=$backings" --env "GUEST_FRESH=$([[ $opts == *--fresh* ]] && echo 1 || echo 0)" \
    "exec node \"\$PROJECT/test/guest/groups/$script\" $args"
  rc=$?
  secs=$(($(date +%s) - start))
  new=$(($(wc -l < "$results") - before))
  # (grep -c reads to the end: grep -q would leave tail to die of SIGPIPE, a failure under pipefail)
  failed_here=$(tail -n "$new" "$results" | grep -c '"ok":false')
  if [ "$new" -eq 0 ] || { [ "$rc" -ne 0 ] && [ "$failed_here" -eq 0 ]; }; then
    # the guest died (or the group crashed) without reporting a failure: that is one
    printf '{"group":"%s","name":"%s: the boot","ok":false,"ms":%d,"message":"the guest ended with status %d and %d checks reported (see %s)"}\n' \
      "$name" "$name" $((secs * 1000)) "$rc" "$new" "$share/console.log" >> "$results"
  fi
  summary+=("$(printf '%-10s %4ss  boot+command, vm.sh status %s' "$name" "$secs" "$rc")")
done

echo
# TCG shares the host's CPUs: the load says how much of one the guest had
echo "run-suite: kernel ${kver:-$(cat "${NUMACTLX_GUEST_CACHE:-/var/cache/numactlx-guest}/default-kernel" 2>/dev/null)}, $(($(date +%s) - suite_start)) s in all, host load average at the start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %s\n' "${summary[@]}"
node -e '
  // a line cut by a power-off or a crash counts as a failed check, not as a crash of this summary
  const parse = (l) => { try { return JSON.parse(l); } catch { return { group: "?", name: "a results line", ok: false, message: `unreadable: ${l}` }; } };
  const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map(parse);
  const failed = lines.filter((r) => !r.ok);
  if (failed.length) {
    console.log("failed checks:");
    for (const r of failed) console.log(`  ${r.group}: ${r.name}: ${r.message.split("\n")[0]}`);
  }
  console.log(`${lines.length - failed.length} passed, ${failed.length} failed`);
  process.exitCode = failed.length || lines.length === 0 ? 1 : 0;
' "$results"
