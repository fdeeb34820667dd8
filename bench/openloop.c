// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The open() workload of bench/open_bench.py: N openat()+close() pairs on
 * one path, timed with CLOCK_MONOTONIC. Prints the elapsed nanoseconds and
 * the number of opens that succeeded.
 *
 *   openloop N PATH
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec a, b;
	long n, i, ok = 0;

	if (argc != 3 || (n = atol(argv[1])) <= 0) {
		fprintf(stderr, "usage: openloop N PATH\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) {
		int fd = openat(AT_FDCWD, argv[2], O_RDONLY);

		if (fd >= 0) {
			ok++;
			close(fd);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld %ld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec),
	       ok);
	return 0;
}
