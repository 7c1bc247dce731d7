// The usage text (numactl's, plus numactlx's options and verbs).

export const USAGE = `usage: numactlx [--all | -a] [--balancing | -b]
                [--interleave= | -i <nodes>] [--weighted-interleave= | -w <nodes>]
                [--preferred= | -p <node>] [--preferred-many= | -P <nodes>]
                [--physcpubind= | -C <cpus>] [--cpunodebind= | -N <nodes>]
                [--membind= | -m <nodes>] [--localalloc | -l]
                [--remap=NODE,PATH[,size=SIZE][,resident=SIZE] ...] [--max-resident SIZE]
                [--fault-ahead SIZE]
                [--stats FILE] [--schedule CRON ...] [--keep N] [--config FILE]
                [--snapshot-signal SIG] [--snapshot-on-exit] [--] command args ...
       numactlx [--show | -s] [--remap=...]
       numactlx [--hardware | -H] [--cpu-compress] [--remap=...]
       numactlx [--version | --help]
       numactlx doctor [--json]
       numactlx status [PID] [--json]
       numactlx ps [--json]
       numactlx snapshot [--label L] [--wait] [PID] [--json]
       numactlx snapshots PATH [--json]      numactlx verify PATH [--json]
       numactlx export PATH SNAP --format core|raw -o OUT [--pid PID] [--force]
       numactlx diff PATH A B [--json]       numactlx rm PATH SNAP
       numactlx repair PATH                  numactlx format PATH [--size SIZE] [--force]

memory policy is --preferred | -p, --membind | -m, --localalloc | -l,
                 --interleave | -i, --weighted-interleave | -w, --preferred-many | -P
<nodes> is a comma delimited list of node numbers or A-B ranges or all;
  virtual nodes declared with --remap count as nodes.
<cpus> is a comma delimited list of cpu numbers or A-B ranges or all
all ranges can be inverted with !
all numbers and ranges can be made cpuset-relative with +
'same' as a node list repeats the previous node list.
the old --cpubind argument is deprecated; use --cpunodebind or --physcpubind instead.
--remap=NODE,PATH[,size=SIZE] makes NODE (not a node of this machine) a virtual node
  backed by PATH: a file (created with SIZE if missing) or a /dev/dax device.
  resident=SIZE: at most SIZE of the node's pages in the program's memory; past it,
  pages are evicted to PATH and come back on the next access (--max-resident SIZE: the
  same for every virtual node without its own; 2m at least, the node's size at most).
--fault-ahead SIZE: the most pages served per fault on a virtual node (4k..2m, default 1m).
--stats FILE: the virtual nodes' statistics as JSON when the program has ended.
Snapshots of the virtual nodes (need --remap):
  --schedule CRON: take one on a cron schedule ('*/5 * * * *'; 6 fields: seconds first).
  --keep N: keep the N newest unlabelled snapshots, delete older ones.
  --config FILE: the same settings as JSON (the command line adds and overrides).
  --snapshot-signal SIG: the signal to numactlx that takes one (default SIGUSR1).
  --snapshot-on-exit: take one when the program ends.
<size> can have k, m, g or t suffixes.
A first argument that is a verb runs the verb; run a program of that name with
'numactlx -- NAME'.
`;
