/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* BPF stamps events with CLOCK_BOOTTIME; records carry wall-clock time. */
#ifndef PS_CLOCK_H
#define PS_CLOCK_H
#include <stdint.h>

/* (Re)compute the boot -> realtime offset; call at start and on each tick. */
void clock_sync(void);
uint64_t clock_wall_from_boot(uint64_t boot_ns);
uint64_t clock_now_ns(int clockid);

#endif
