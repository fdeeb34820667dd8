/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel differences, resolved at load time with CO-RE: each helper reads
 * the newer layout when this kernel has it and an older flavour otherwise.
 * Include after vmlinux.h and the libbpf BPF headers.
 */
#ifndef PS_CORE_FIXES_BPF_H
#define PS_CORE_FIXES_BPF_H

/*
 * request->rq_disk went away in 5.17 ("block: remove the ->rq_disk field in
 * struct request"); request_queue->disk exists since 5.15.
 */
struct request___x {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *ps_rq_disk(struct request *rq)
{
	struct request___x *old = (void *)rq;

	if (bpf_core_field_exists(old->rq_disk))
		return BPF_CORE_READ(old, rq_disk);
	return BPF_CORE_READ(rq, q, disk);
}

/*
 * cgroup->ancestor_ids[] (ids) became cgroup->ancestors[] (pointers) in 6.1
 * ("cgroup: Replace cgroup->ancestor_ids[] with ->ancestors[]"). Both are
 * flexible arrays indexed by level; level must not exceed cg->level.
 */
struct cgroup___old {
	__u64 ancestor_ids[0];
} __attribute__((preserve_access_index));

static __always_inline __u64 ps_cgroup_ancestor_id(struct cgroup *cg, __u32 level)
{
	struct cgroup___old *old = (void *)cg;
	struct cgroup *anc = NULL;
	__u64 id = 0;

	if (bpf_core_field_exists(old->ancestor_ids)) {
		bpf_probe_read_kernel(&id, sizeof(id),
				      (void *)cg + bpf_core_field_offset(old->ancestor_ids) +
					      (__u64)level * sizeof(__u64));
		return id;
	}
	bpf_probe_read_kernel(&anc, sizeof(anc),
			      (void *)cg + bpf_core_field_offset(cg->ancestors) +
				      (__u64)level * sizeof(void *));
	return anc ? BPF_CORE_READ(anc, kn, id) : 0;
}

#endif /* PS_CORE_FIXES_BPF_H */
