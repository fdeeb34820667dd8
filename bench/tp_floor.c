// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Load and attach tp_floor.bpf.o, print "ready", wait for SIGINT or SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <bpf/libbpf.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *p;
	sigset_t set;
	int sig;

	if (argc != 2) {
		fprintf(stderr, "usage: tp_floor FILE.bpf.o\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "tp_floor: cannot load %s\n", argv[1]);
		return 1;
	}
	bpf_object__for_each_program(p, obj) {
		if (!bpf_program__attach(p)) {
			fprintf(stderr, "tp_floor: cannot attach %s\n", bpf_program__name(p));
			return 1;
		}
	}
	fprintf(stderr, "ready\n");
	sigwait(&set, &sig);
	bpf_object__close(obj);
	return 0;
}
