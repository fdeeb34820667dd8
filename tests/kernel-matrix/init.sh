#!/bin/busybox sh
# /init of the kernel-matrix initramfs (installed by mkinitramfs; runs as PID 1).
# Prints marker lines on the console; the host (boot) judges only by them:
#   KM-BEGIN kernel=RELEASE uptime=SECONDS   /init started
#   KM-INFO ...                              setup notes (modules, mounts)
#   KM-WARN ...                              a setup step failed (test goes on)
#   KM-RUN ARGV...                           the test binary is about to run
#   ...                                      whatever the test binary prints
#   KM-EXIT STATUS                           its exit status
#   KM-END uptime=SECONDS                    /init finished; poweroff follows
# Kernel command line: km.args=A,B,C (or km.args="A B C") replaces the baked-in
# arguments; km.shell=1 starts a shell on the console before poweroff.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/km/bin:/bin:/sbin:/usr/bin:/usr/sbin HOME=/ TERM=dumb

mkdir -p /dev /proc /sys /tmp /mnt
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp

echo "KM-BEGIN kernel=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"

mnt() { # TYPE DIR
    mkdir -p "$2"
    mount -t "$1" "$1" "$2" 2>/tmp/mnt.err && return 0
    echo "KM-WARN mount -t $1 $2 failed: $(cat /tmp/mnt.err)"
}
mnt tracefs /sys/kernel/tracing
mnt debugfs /sys/kernel/debug
mnt bpf /sys/fs/bpf
# cgroup2 at /sys/fs/cgroup: some kernels need the sysfs mount point to exist first
mnt cgroup2 /sys/fs/cgroup

if [ -s /km/modules.order ]; then
    while read -r m; do
        if out=$(insmod "/lib/modules/$m.ko" 2>&1); then
            echo "KM-INFO insmod $m"
        else
            echo "KM-WARN insmod $m failed: $out"
        fi
    done < /km/modules.order
fi

i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
if [ -b /dev/vda ]; then
    if out=$(mount -t ext4 /dev/vda /mnt 2>&1); then
        echo "KM-INFO mounted /dev/vda on /mnt"
    else
        echo "KM-WARN mount /dev/vda /mnt failed: $out"
    fi
else
    echo "KM-WARN no /dev/vda after 5 s"
fi

# Arguments: baked in (/km/args, one a line) unless km.args is on the kernel command line.
set --
if [ -f /km/args ]; then
    while IFS= read -r a || [ -n "$a" ]; do set -- "$@" "$a"; done < /km/args
fi
cmdline=$(cat /proc/cmdline)
case " $cmdline " in
*' km.args="'*)
    v=${cmdline#*km.args=\"}; v=${v%%\"*}
    # shellcheck disable=SC2086 # split on purpose
    set -f; set -- $v; set +f ;;
*' km.args='*)
    v=${cmdline#*km.args=}; v=${v%% *}
    # shellcheck disable=SC2086 # split on purpose
    set -f; IFS=,; set -- $v; unset IFS; set +f ;;
esac

KM_KERNEL=$(uname -r)
export KM_KERNEL KM_DISK=/mnt KM_FILES=/km/files KM_CGROUP2=/sys/fs/cgroup
test=$(cat /km/test 2>/dev/null)
cd /km/files 2>/dev/null || cd /
if [ -n "$test" ] && [ -x "$test" ]; then
    echo "KM-RUN $test $*"
    "$test" "$@"
    rc=$?
else
    echo "KM-WARN no test binary ($test)"
    rc=127
fi
echo "KM-EXIT $rc"
cd /
sync
umount /mnt 2>/dev/null
echo "KM-END uptime=$(cut -d' ' -f1 /proc/uptime)"
case " $cmdline " in *' km.shell=1 '*) echo "KM-INFO km.shell=1: exit the shell to power off"; setsid cttyhack sh;; esac
poweroff -f
while :; do sleep 60; done
