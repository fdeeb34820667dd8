// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The block I/O workload of bench/bio_bench.py: N reads of 4 KiB at random
 * 4 KiB-aligned offsets with O_DIRECT (queue depth 1: one read at a time, no
 * page cache), timed with CLOCK_MONOTONIC. Prints the elapsed nanoseconds and
 * the number of reads that returned 4 KiB.
 *
 *   bioloop N FILE_OR_DEVICE [SEED]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_DIRECT */
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096

int main(int argc, char **argv)
{
	uint64_t x = 0x9e3779b97f4a7c15ull, blocks;
	struct timespec a, b;
	long n, i, ok = 0;
	void *buf;
	off_t size;
	int fd;

	if (argc < 3 || (n = atol(argv[1])) <= 0) {
		fprintf(stderr, "usage: bioloop N FILE_OR_DEVICE [SEED]\n");
		return 2;
	}
	if (argc > 3)
		x ^= strtoull(argv[3], NULL, 0);
	fd = open(argv[2], O_RDONLY | O_DIRECT);
	if (fd < 0 || (size = lseek(fd, 0, SEEK_END)) < BLK) {
		perror(argv[2]);
		return 1;
	}
	blocks = (uint64_t)size / BLK;
	if (posix_memalign(&buf, BLK, BLK))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		if (pread(fd, buf, BLK, (off_t)(x % blocks) * BLK) == BLK)
			ok++;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%lld %ld\n", (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec),
	       ok);
	return 0;
}
