/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel differences, each settled with CO-RE at load time (never
 * LINUX_VERSION_CODE): the ___old/___new flavours below carry only the
 * fields we read and are matched against the running kernel's BTF.
 * Include after vmlinux.h and the libbpf BPF headers.
 */
#ifndef PS_CORE_FIXES_BPF_H
#define PS_CORE_FIXES_BPF_H

/*
 * Pages in a folio. The first word of a folio is its head page's flags
 * (an unsigned long, wrapped in memdesc_flags_t since 6.17); a large folio
 * has PG_head set and keeps its size in the first tail page:
 *   5.16 .. 6.5:  _folio_nr_pages (64-bit), _folio_order
 *   6.6 .. 6.13:  the order in the low byte of _flags_1
 *   6.14+:        _nr_pages (64-bit) as well
 */
struct folio___nr_new {
	unsigned int _nr_pages;
} __attribute__((preserve_access_index));

struct folio___nr_old {
	unsigned int _folio_nr_pages;
} __attribute__((preserve_access_index));

struct folio___flags1 {
	unsigned long _flags_1;
} __attribute__((preserve_access_index));

static __always_inline __u64 ps_folio_nr_pages(void *folio)
{
	unsigned long flags = 0, f1 = 0;
	unsigned int nr = 0;
	int head = bpf_core_enum_value(enum pageflags, PG_head);

	if (bpf_probe_read_kernel(&flags, sizeof(flags), folio) || head <= 0 || head >= 64 ||
	    !(flags & (1ul << head)))
		return 1;
	if (bpf_core_field_exists(struct folio___nr_new, _nr_pages)) {
		nr = BPF_CORE_READ((struct folio___nr_new *)folio, _nr_pages);
	} else if (bpf_core_field_exists(struct folio___nr_old, _folio_nr_pages)) {
		nr = BPF_CORE_READ((struct folio___nr_old *)folio, _folio_nr_pages);
	} else if (bpf_core_field_exists(struct folio___flags1, _flags_1)) {
		f1 = BPF_CORE_READ((struct folio___flags1 *)folio, _flags_1) & 0xff;
		nr = f1 < 32 ? 1u << f1 : 1;
	}
	return nr ? nr : 1;
}

/*
 * mm_filemap_add_to_page_cache gained the folio order in its record in 6.7
 * ("mm/filemap: add order to mm_filemap_add_to_page_cache"); before that
 * every added folio counts as one page there.
 */
struct trace_event_raw_mm_filemap_op_page_cache___order {
	unsigned char order;
} __attribute__((preserve_access_index));

static __always_inline __u64 ps_tp_add_pages(void *ctx)
{
	unsigned char order;

	if (!bpf_core_field_exists(struct trace_event_raw_mm_filemap_op_page_cache___order, order))
		return 1;
	order = BPF_CORE_READ((struct trace_event_raw_mm_filemap_op_page_cache___order *)ctx,
			      order);
	return order < 32 ? 1ull << order : 1;
}

/*
 * The file behind a descriptor of the current task: files->fdt->fd[fd],
 * bounded by max_fds. NULL when there is none.
 */
static __always_inline struct file *ps_fd_file(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **arr, *f = NULL;
	unsigned int max;

	if (!fdt)
		return NULL;
	max = BPF_CORE_READ(fdt, max_fds);
	if (fd >= max)
		return NULL;
	arr = BPF_CORE_READ(fdt, fd);
	if (!arr || bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]))
		return NULL;
	return f;
}

/*
 * The file an overlayfs regular file forwards its I/O to. Up to 6.12 the
 * overlay file's private_data is that file; since 6.13 it points to a
 * struct ovl_file { realfile, upperfile } ("ovl: allocate a container
 * struct ovl_file for ovl private context").
 */
struct ovl_file___ps {
	struct file *realfile;
} __attribute__((preserve_access_index));

static __always_inline struct file *ps_ovl_real_file(struct file *f)
{
	void *priv = BPF_CORE_READ(f, private_data);

	if (!priv)
		return NULL;
	if (bpf_core_type_exists(struct ovl_file___ps))
		return BPF_CORE_READ((struct ovl_file___ps *)priv, realfile);
	return priv;
}

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
