// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * exec PROG with an argument that lives on a page this process never
 * touched: a BPF program reading argv at execve entry cannot fault it in.
 * Usage: exec_untouched PROG
 */
#include <stdio.h>
#include <unistd.h>

/* page-aligned and large so nothing else shares (and touches) its page */
static const char untouched[3 * 4096] __attribute__((aligned(4096))) =
	"untouched-rodata-argument";

int main(int argc, char **argv)
{
	char *args[] = { argv[1], (char *)untouched, NULL };

	if (argc != 2) {
		fprintf(stderr, "usage: exec_untouched PROG\n");
		return 2;
	}
	execv(argv[1], args);
	perror("execv");
	return 127;
}
