// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <time.h>
#include "agent/clock.h"

static int64_t boot_to_wall;

uint64_t clock_now_ns(int clockid)
{
	struct timespec ts;

	clock_gettime(clockid, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void clock_sync(void)
{
	/* bracket the realtime read to halve the error of the two reads */
	uint64_t b1 = clock_now_ns(CLOCK_BOOTTIME);
	uint64_t w = clock_now_ns(CLOCK_REALTIME);
	uint64_t b2 = clock_now_ns(CLOCK_BOOTTIME);

	boot_to_wall = (int64_t)w - (int64_t)(b1 + (b2 - b1) / 2);
}

uint64_t clock_wall_from_boot(uint64_t boot_ns)
{
	return (uint64_t)((int64_t)boot_ns + boot_to_wall);
}
