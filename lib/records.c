// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Names of the enums records carry (bpf/<t>.h), as every output prints them. */
#include "lib/records.h"

const char *exec_method_name(uint32_t method)
{
	switch (method) {
	case EXEC_M_SYSCALLS: return "syscalls";
	case EXEC_M_SCHED_BTF: return "sched_btf";
	case EXEC_M_SCHED_RAW: return "sched_raw";
	case EXEC_M_FENTRY: return "fentry";
	case EXEC_M_RAW_SYSCALLS: return "raw_syscalls";
	default: return "unknown";
	}
}

const char *open_method_name(uint32_t method)
{
	switch (method) {
	case OPEN_M_SYSCALLS: return "syscalls";
	case OPEN_M_FENTRY: return "fentry";
	case OPEN_M_KPROBE: return "kprobe";
	case OPEN_M_RAW_SYSCALLS: return "raw_syscalls";
	default: return "unknown";
	}
}

const char *open_syscall_name(uint32_t syscall)
{
	switch (syscall) {
	case OPEN_SC_OPEN: return "open";
	case OPEN_SC_OPENAT: return "openat";
	case OPEN_SC_OPENAT2: return "openat2";
	default: return "unknown";
	}
}

const char *bio_method_name(uint32_t method)
{
	switch (method) {
	case BIO_M_IO_START: return "io_start";
	case BIO_M_GETRQ: return "getrq";
	case BIO_M_IO_START_RAW: return "io_start_raw";
	case BIO_M_GETRQ_RAW: return "getrq_raw";
	default: return "unknown";
	}
}

const char *bio_attrib_name(uint32_t attribution)
{
	switch (attribution) {
	case BIO_A_SUBMITTER: return "submitter";
	case BIO_A_BLKCG: return "blkcg";
	default: return "none";
	}
}

void bio_hist_bounds(unsigned int i, uint64_t *lo, uint64_t *hi)
{
	*lo = i ? 1ull << i : 0;
	*hi = (2ull << i) - 1;
}

const char *fs_type_name(uint32_t fs)
{
	switch (fs) {
	case FS_T_EXT4: return "ext4";
	case FS_T_XFS: return "xfs";
	case FS_T_BTRFS: return "btrfs";
	default: return "unknown";
	}
}

const char *fs_op_name(uint32_t op)
{
	switch (op) {
	case FS_OP_READ: return "read";
	case FS_OP_WRITE: return "write";
	case FS_OP_OPEN: return "open";
	case FS_OP_FSYNC: return "fsync";
	default: return "unknown";
	}
}

const char *fs_method_name(uint32_t method)
{
	switch (method) {
	case FS_M_FENTRY: return "fentry";
	case FS_M_KPROBE: return "kprobe";
	case FS_M_SYSCALLS: return "syscalls";
	case FS_M_RAW_SYSCALLS: return "raw_syscalls";
	default: return "unknown";
	}
}

const char *cache_method_name(uint32_t m)
{
	switch (m) {
	case CACHE_M_FENTRY: return "fentry";
	case CACHE_M_KPROBE: return "kprobe";
	case CACHE_M_TP_BTF: return "tp_btf";
	case CACHE_M_TRACEPOINT: return "tracepoint";
	default: return "unknown";
	}
}
