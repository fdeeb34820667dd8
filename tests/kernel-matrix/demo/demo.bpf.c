// SPDX-License-Identifier: GPL-2.0
/* One program per hook kind; demo.c loads them one at a time (autoload), so a hook the
 * kernel lacks fails alone. Every program filters in the kernel by cgroup id:
 * bpf_get_current_cgroup_id() compared with the value in the cfg map. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "demo.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct km_cfg);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KM_NCOUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void bump(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline __u64 target_cgid(void)
{
	__u32 zero = 0;
	struct km_cfg *c = bpf_map_lookup_elem(&cfg, &zero);

	return c ? c->cgid : 0;
}

/* Count the current task as in or outside the target cgroup. */
static __always_inline void count_task(void)
{
	__u64 want = target_cgid();

	if (!want)
		return;
	bump(bpf_get_current_cgroup_id() == want ? KM_C_HIT : KM_C_MISS);
}

static __always_inline int is_marker(const char *upath)
{
	char buf[KM_MARKER_LEN + 2];
	const char marker[] = KM_MARKER;

	if (bpf_probe_read_user_str(buf, sizeof(buf), upath) < 0)
		return 0;
#pragma unroll
	for (int i = 0; i <= KM_MARKER_LEN; i++)
		if (buf[i] != marker[i])
			return 0;
	return 1;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_openat(struct trace_event_raw_sys_enter *ctx)
{
	if (is_marker((const char *)ctx->args[1]))
		count_task();
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_sys_enter, struct pt_regs *regs, long id)
{
	if (id != 257 /* __NR_openat on x86_64 */)
		return 0;
	if (is_marker((const char *)BPF_CORE_READ(regs, si)))
		count_task();
	return 0;
}

SEC("fentry/do_sys_openat2")
int BPF_PROG(fentry_openat2, int dfd, const char *filename)
{
	if (is_marker(filename))
		count_task();
	return 0;
}

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(kprobe_openat2, int dfd, const char *filename)
{
	if (is_marker(filename))
		count_task();
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tpbtf_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	bump(KM_C_ALL);
	count_task();
	return 0;
}

static __always_inline void block_event(struct request *rq)
{
	__u64 want = target_cgid();

	bump(KM_C_ALL);
	count_task();
	/* The cgroup the bio is charged to (needs the io controller on that cgroup). */
	if (want && BPF_CORE_READ(rq, bio, bi_blkg, blkcg, css.cgroup, kn, id) == want)
		bump(KM_C_BIO_CG);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(tpbtf_rq_issue, struct request *rq)
{
	block_event(rq);
	return 0;
}

/* Added in 6.5: on 6.1 loading fails (no BTF type btf_trace_block_io_start). */
SEC("tp_btf/block_io_start")
int BPF_PROG(tpbtf_io_start, struct request *rq)
{
	block_event(rq);
	return 0;
}
