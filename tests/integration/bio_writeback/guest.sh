#!/bin/sh
# guest.sh - cgroup writeback attribution, run inside a Debian kernel under qemu
# (tests/kernel-matrix/run) where cgroup2 is the only hierarchy, so the io and memory
# controllers can be enabled on it: what the development VM (hybrid) cannot do.
#
# A process in pod/ctr writes 1 MiB through the page cache; `sync` from another
# cgroup makes a flusher kworker write it back. podsnoop selects pod (the parent):
# the writeback must come out charged to pod/ctr with attribution "blkcg", and the
# sync process's own I/O (another cgroup) must be filtered out.
# Prints KM-CHECK lines (see tests/kernel-matrix/README.md).
CG=${KM_CGROUP2:-/sys/fs/cgroup}
DISK=${KM_DISK:-/mnt}
P=${PODSNOOP:-/km/bin/podsnoop}
check() { echo "KM-CHECK $1 $2 $3"; }

if ! grep -qw io "$CG/cgroup.controllers" || ! grep -qw memory "$CG/cgroup.controllers"; then
	check cgroup_writeback unsupported "no io and memory controllers on cgroup2"
	exit 0
fi
echo "+io +memory" > "$CG/cgroup.subtree_control" || { check cgroup_writeback fail "enable"; exit 0; }
mkdir -p "$CG/pod/ctr" "$CG/other"
echo "+io +memory" > "$CG/pod/cgroup.subtree_control" || { check cgroup_writeback fail "pod"; exit 0; }
check cgroup_writeback ok "io and memory on cgroup2"
CTR=$(stat -c %i "$CG/pod/ctr")

"$P" -t bio --bio-min-us 0 --cgroup "$CG/pod" --duration 60 >/tmp/out 2>/tmp/err &
pid=$!
i=0
while ! grep -q 'info: ready' /tmp/err && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
/bin/sh -c 'echo $$ > "$0/cgroup.procs"; exec dd if=/dev/zero of="$1/wbfile" bs=4096 count=256' \
	"$CG/pod/ctr" "$DISK" 2>/dev/null
/bin/sh -c 'echo $$ > "$0/cgroup.procs"; exec sync' "$CG/other"
sleep 1
kill -TERM $pid
wait $pid
rc=$?
sed 's/^/KM-INFO err /' /tmp/err
grep '"type":"bio"' /tmp/out | sed 's/^/KM-INFO bio /'

# bytes written back and charged to ctr through its blkcg, by a kworker
wb=$(grep '"type":"bio"' /tmp/out | grep '"op":"W' | grep '"attribution":"blkcg"' |
	grep "\"cgroup_id\":$CTR," | grep '"comm":"kworker' |
	sed 's/.*"bytes":\([0-9]*\),.*/\1/' | awk '{ s += $1 } END { print s + 0 }')
if [ "$rc" = 0 ] && [ "$wb" = 1048576 ]; then
	check writeback_blkcg ok "1048576 bytes charged to pod/ctr ($CTR) by blkcg"
else
	check writeback_blkcg fail "agent rc $rc, $wb bytes charged to pod/ctr ($CTR) by blkcg"
fi
# selection by an ancestor (pod) of the blkcg's cgroup; nothing else comes through
others=$(grep '"type":"bio"' /tmp/out | grep -vc "\"cgroup_id\":$CTR,")
if [ "$others" = 0 ]; then
	check writeback_selection ok "only pod/ctr records"
else
	check writeback_selection fail "$others records of other cgroups"
fi
