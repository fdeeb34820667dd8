// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Load a BPF object, attach its programs (or only those named), print "ready",
 * and run until SIGINT or SIGTERM, draining its ring buffers every 10 ms as
 * the agent does (a ring nobody drains fills up, and a full ring's failing
 * reservations cost less than real ones).
 *
 *   tp_floor FILE.bpf.o [PROGRAM...]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/libbpf.h>

static int drop(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

static int named(const char *name, int argc, char **argv)
{
	int i;

	if (argc < 3)
		return 1;
	for (i = 2; i < argc; i++)
		if (!strcmp(argv[i], name))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	struct ring_buffer *rb = NULL;
	struct bpf_object *obj;
	struct bpf_program *p;
	struct bpf_map *m;
	int n = 0, err;
	sigset_t set;

	if (argc < 2) {
		fprintf(stderr, "usage: tp_floor FILE.bpf.o [PROGRAM...]\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "tp_floor: cannot open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	bpf_object__for_each_program(p, obj) {
		bpf_program__set_autoload(p, named(bpf_program__name(p), argc, argv));
		n += named(bpf_program__name(p), argc, argv);
	}
	if (argc > 2 && n != argc - 2) {
		fprintf(stderr, "tp_floor: %s lacks a program named on the command line\n", argv[1]);
		return 2;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "tp_floor: cannot load %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	bpf_object__for_each_program(p, obj) {
		if (bpf_program__autoload(p) && !bpf_program__attach(p)) {
			fprintf(stderr, "tp_floor: cannot attach %s\n", bpf_program__name(p));
			return 1;
		}
	}
	bpf_object__for_each_map(m, obj) {
		if (bpf_map__type(m) != BPF_MAP_TYPE_RINGBUF)
			continue;
		if (rb) {
			err = ring_buffer__add(rb, bpf_map__fd(m), drop, NULL);
		} else {
			rb = ring_buffer__new(bpf_map__fd(m), drop, NULL, NULL);
			err = rb ? 0 : -errno;
		}
		if (err) {
			fprintf(stderr, "tp_floor: ring buffer %s: %s\n", bpf_map__name(m),
				strerror(-err));
			return 1;
		}
	}
	fprintf(stderr, "ready\n");
	while (sigtimedwait(&set, NULL, &tick) < 0)
		if (rb)
			ring_buffer__consume(rb);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}
