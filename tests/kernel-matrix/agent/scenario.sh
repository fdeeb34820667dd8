#!/bin/sh
# scenario.sh - drive the real agent through every hook method of every tracer on the
# running kernel, and print what it did between marker lines. It judges nothing: the
# host (check.py) compares the markers with the expectations of that kernel.
#
# Runs as the guest's test under qemu (busybox sh, /init's environment) and, unchanged,
# on the host (any POSIX sh; root). Usage:
#   scenario.sh [TRACER...]        default: every tracer `podsnoop probe` lists
# Environment:
#   PODSNOOP       the agent (default: podsnoop on PATH; /km/bin/podsnoop in the guest)
#   KM_CGROUP2     the cgroup2 mount (default: found in /proc/mounts)
#   KM_DISK        a directory on a real block device for file activity (the guest's
#                  ext4 /dev/vda at /mnt; agent/run gives the host run one under build/)
#   KMA_TIMEOUT    seconds to wait for the agent's "ready" line (default 60)
#   KMA_AGENT_ARGS more agent flags for every run (e.g. -v)
#
# For each tracer: one run per hook method the probe lists, forced with
# `--hook TRACER=METHOD` (available or not: a missing one must be refused), then one run
# of all tracers with their default choice. Every run selects the child cgroup IN with
# --cgroup; the activity of each tracer happens in IN, in its child IN/sub, and the same
# activity in the parent of IN (outside the selection: none of it may appear).
#
# Markers (one a line; the host ignores everything else on the console):
#   KMA-BEGIN kernel=RELEASE
#   KMA-PROBE <podsnoop probe -o ndjson line>
#   KMA-CASE tracer=T method=M            M is "default" for the all-tracers run (T="*")
#   KMA-ACT TRACER WHERE TOKEN CGROUP_ID  an activity happened (WHERE: in|sub|out)
#   KMA-OUT <agent stdout line>           its NDJSON records
#   KMA-ERR <agent stderr line>           its log: "tracing with", summary, errors
#   KMA-RC STATUS                         the agent's exit status (after SIGTERM)
#   KMA-END
#
# Adding a tracer: write act_TRACER (below) and its checker and expectation lines
# (check.py, expect/*.txt); see README.md.

PODSNOOP=${PODSNOOP:-podsnoop}
# the guest has no environment from the host: agent/run passes extra flags in a file
if [ -z "${KMA_AGENT_ARGS:-}" ] && [ -f /km/agent-args ]; then
	KMA_AGENT_ARGS=$(cat /km/agent-args)
fi
KMA_TIMEOUT=${KMA_TIMEOUT:-60}
tmp=${TMPDIR:-/tmp}/kma.$$
mkdir -p "$tmp" || exit 2
DISK=${KM_DISK:-$tmp}/kma.$$
mkdir -p "$DISK" || exit 2

if [ -z "${KM_CGROUP2:-}" ]; then
	KM_CGROUP2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
fi
[ -n "$KM_CGROUP2" ] || { echo "scenario: cgroup2 is not mounted" >&2; exit 2; }

# The selection: IN (and IN/sub below it) are selected; their parent BASE is not.
BASE=$KM_CGROUP2/kma-$$
IN=$BASE/in
SUB=$IN/sub

cg_id() { stat -c %i "$1"; }

# run_in CGROUP CMD [ARG...]: run CMD in CGROUP (a child process moves itself there,
# then execs CMD); returns CMD's status.
run_in() {
	/bin/sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$@"
}

# act TRACER WHERE TOKEN CGROUP: note an activity for the host.
act() { echo "KMA-ACT $1 $2 $3 $(cg_id "$4")"; }

# ---- activities, one function per tracer -------------------------------------------
# act_TRACER WHERE CGROUP TOKEN: do that tracer's kind of activity once in CGROUP,
# naming it by TOKEN so the host can find (or miss) it in the records (files go under
# $DISK), and print KMA-ACT first. flags_TRACER="..." (optional): agent flags every run
# of that tracer needs (e.g. a latency threshold of 0).

act_exec() {
	act exec "$1" "$3" "$2"
	run_in "$2" /bin/true "$3"                       # a successful exec
	run_in "$2" "/kma-missing/$3" 2>/dev/null        # a failed one (ENOENT)
	:
}

# open: a file created and read back, and a missing one (ENOENT)
act_open() {
	act open "$1" "$3" "$2"
	run_in "$2" /bin/sh -c ': > "$0" && cat "$0" && cat "$0.missing"' "$DISK/$3" 2>/dev/null
	:
}

# bio: 8 O_DIRECT writes of 4 KiB to a file on the disk, then 8 O_DIRECT reads back
flags_bio="--bio-min-us 0"
act_bio() {
	act bio "$1" "$3" "$2"
	# page dd in from outside the selection: its own reads would count as dd's I/O
	dd if=/dev/zero of=/dev/null count=1 2>/dev/null
	run_in "$2" dd if=/dev/zero of="$DISK/$3" bs=4096 count=8 oflag=direct 2>/dev/null
	run_in "$2" dd if="$DISK/$3" of=/dev/null bs=4096 count=8 iflag=direct 2>/dev/null
	:
}

# fs: an fsync-heavy write (open, 4 writes of 4 KiB, fsync) and a read of it with dd,
# which uses read() (busybox cat would use sendfile, which no fs method sees)
flags_fs="--fs-min-us 0"
act_fs() {
	act fs "$1" "$3" "$2"
	run_in "$2" dd if=/dev/zero of="$DISK/$3" bs=4096 count=4 conv=fsync 2>/dev/null
	run_in "$2" dd if="$DISK/$3" of=/dev/null bs=4096 2>/dev/null
	:
}

# cache: 64 pages written around the page cache (O_DIRECT), read twice (misses, then
# hits), and 32 pages written through it (dirtied)
flags_cache="--interval 1"
act_cache() {
	act cache "$1" "$3" "$2"
	run_in "$2" dd if=/dev/zero of="$DISK/$3.d" bs=4096 count=64 oflag=direct 2>/dev/null
	run_in "$2" dd if="$DISK/$3.d" of=/dev/null bs=65536 2>/dev/null
	run_in "$2" dd if="$DISK/$3.d" of=/dev/null bs=65536 2>/dev/null
	run_in "$2" dd if=/dev/zero of="$DISK/$3.w" bs=4096 count=32 2>/dev/null
	:
}

# ---- driver -------------------------------------------------------------------------
n=0
# one_run TRACER METHOD TRACERS: run the agent selecting IN, do the activities of
# TRACERS (space-separated), stop it with SIGTERM, print everything.
one_run() {
	tracer=$1 method=$2 acts=$3
	n=$((n + 1))
	echo "KMA-CASE tracer=$tracer method=$method"
	mkdir -p "$SUB"
	set --
	if [ "$tracer" != "*" ]; then
		set -- -t "$tracer" --hook "$tracer=$method"
	elif [ -n "$only" ]; then
		list=
		for t in $acts; do list=${list:+$list,}$t; done
		set -- -t "$list"
	fi
	for t in $acts; do
		eval "f=\${flags_$t:-}"
		# shellcheck disable=SC2086,SC2154 # a list of flags
		set -- "$@" $f
	done
	# empty them here: the background child truncates them only when it gets to run,
	# and the previous run's "ready" must not count
	: >"$tmp/out"
	: >"$tmp/err"
	# --duration: a safety net only; SIGTERM ends the run
	# shellcheck disable=SC2086 # KMA_AGENT_ARGS is a list of flags
	"$PODSNOOP" "$@" --cgroup "$IN" --duration 600 ${KMA_AGENT_ARGS:-} \
		>"$tmp/out" 2>"$tmp/err" &
	pid=$!
	i=0 ready=0
	while [ $i -lt $((KMA_TIMEOUT * 20)) ]; do
		if grep -q 'podsnoop: info: ready$' "$tmp/err"; then ready=1; break; fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
		i=$((i + 1))
	done
	if [ $ready = 1 ]; then
		for t in $acts; do
			"act_$t" in "$IN" "kma-$t-$n-in"
			"act_$t" sub "$SUB" "kma-$t-$n-sub"
			"act_$t" out "$BASE" "kma-$t-$n-out"
		done
	fi
	kill -TERM "$pid" 2>/dev/null
	# an agent that does not stop is a failure, not a hang: KILL it after KMA_TIMEOUT
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt $((KMA_TIMEOUT * 20)) ]; do
		sleep 0.05
		i=$((i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "scenario: the agent ignored SIGTERM for ${KMA_TIMEOUT}s: killed" >>"$tmp/err"
		kill -KILL "$pid"
	fi
	wait "$pid"
	rc=$?
	sed 's/^/KMA-OUT /' "$tmp/out"
	sed 's/^/KMA-ERR /' "$tmp/err"
	echo "KMA-RC $rc"
}

cleanup() {
	for d in "$SUB" "$IN" "$BASE"; do
		[ -d "$d" ] || continue
		# the activities have exited; move anything left to the root, then remove
		while read -r p; do echo "$p" > "$KM_CGROUP2/cgroup.procs"; done < "$d/cgroup.procs" 2>/dev/null
		rmdir "$d" 2>/dev/null
	done
	rm -rf "$tmp" "$DISK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$SUB" || { echo "scenario: cannot make cgroups under $KM_CGROUP2" >&2; exit 2; }
echo "KMA-BEGIN kernel=$(uname -r)"
"$PODSNOOP" probe -o ndjson >"$tmp/probe" 2>"$tmp/probe.err"
echo "KMA-PROBE-RC $?"
sed 's/^/KMA-PROBE /' "$tmp/probe"
sed 's/^/KMA-ERR /' "$tmp/probe.err"

tracers=$* only=$*
if [ -z "$tracers" ]; then
	tracers=$(sed -n 's/.*"type":"probe","tracer":"\([a-z0-9_]*\)".*/\1/p' "$tmp/probe")
fi
for t in $tracers; do
	line=$(grep "\"type\":\"probe\",\"tracer\":\"$t\"" "$tmp/probe")
	methods=$(echo "$line" | grep -o '"name":"[a-z0-9_]*"' | sed 's/"name":"\(.*\)"/\1/')
	for m in $methods; do
		one_run "$t" "$m" "$t"
	done
done
one_run "*" default "$tracers"
echo "KMA-END"
