/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between demo.bpf.c and demo.c. */
#ifndef KM_DEMO_H
#define KM_DEMO_H

/* The file whose opens the open-hooks count (exact match, NUL included). */
#define KM_MARKER "/tmp/km-demo-marker"
#define KM_MARKER_LEN (sizeof(KM_MARKER) - 1)

struct km_cfg {
	__u64 cgid; /* cgroup id to count as "in"; 0 = count nothing */
};

enum km_counter {
	KM_C_HIT = 0, /* event from a task in cfg.cgid */
	KM_C_MISS,    /* event from a task outside it */
	KM_C_ALL,     /* every event the program saw (block, exec) */
	KM_C_BIO_CG,  /* block request whose bio is charged to cfg.cgid */
	KM_NCOUNTERS,
};

#endif
