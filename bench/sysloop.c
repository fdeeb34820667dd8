// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The workload of bench/parts_bench.py: N getppid() calls, timed with
 * CLOCK_MONOTONIC; prints the elapsed nanoseconds and N (the calls made,
 * as the other loops print the operations that succeeded). getppid does almost
 * nothing, so what a program on its tracepoint costs stands out. Called
 * through syscall(2): glibc does not cache it, but say so.
 *
 *   sysloop N
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	struct timespec a, b;
	long n, i;

	if (argc != 2 || (n = atol(argv[1])) <= 0) {
		fprintf(stderr, "usage: sysloop N\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++)
		syscall(SYS_getppid);
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld %ld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec),
	       n);
	return 0;
}
