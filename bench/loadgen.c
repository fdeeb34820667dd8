// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Load generator for bench/: exec events at a controlled rate without
 * forking. Each event is an execve() of a path that does not exist, which
 * fails with ENOENT after the kernel has run the exec tracepoints, so the
 * agent emits one exec record (retval -2) per call, with argv
 * {"psload", TAG, N} where N counts from 0 (each record is unique).
 *
 *   loadgen RATE SECONDS [TAG [varied]]
 *
 * "varied" adds two arguments that change from call to call as on a busy
 * node: a 32-hex-digit random id and one of a few typical command lines'
 * tails, so that gzip has less to work with than N alone.
 * Paces itself every millisecond to RATE calls per second overall and
 * prints on stdout: "sent N in S s = R/s". RATE 0: as fast as it can.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static const char *const tails[] = {
		"--config=/etc/app/config.yaml --log-level=info",
		"-c 'test -f /var/run/app.pid'",
		"/usr/share/nginx/html/index.html",
		"--health-check --timeout=5s",
		"-la /proc/self/fd",
		"get pods -n kube-system -o json",
		"/tmp/tmp.Xc81Lq9z",
		"",
	};
	char path[128], num[24], id[40], *envp[] = { NULL };
	char *args[6] = { "psload", NULL, num, NULL, NULL, NULL };
	uint64_t rate, start, end, t, sent = 0, x = 0x9e3779b97f4a7c15ull;
	bool varied;
	double secs;

	if (argc < 3) {
		fprintf(stderr, "usage: loadgen RATE SECONDS [TAG]\n");
		return 2;
	}
	rate = strtoull(argv[1], NULL, 10);
	secs = strtod(argv[2], NULL);
	args[1] = argc > 3 ? argv[3] : "load";
	varied = argc > 4 && !strcmp(argv[4], "varied");
	if (varied) {
		args[3] = id;
		x ^= now_ns();
	}
	snprintf(path, sizeof(path), "/nonexistent/psload-%s", args[1]);
	start = now_ns();
	end = start + (uint64_t)(secs * 1e9);
	while ((t = now_ns()) < end) {
		/* how many calls are due by now */
		uint64_t due = rate ? (uint64_t)((double)(t - start) * (double)rate / 1e9) + 1 : sent + 64;

		if (sent >= due) {
			struct timespec ts = { 0, 200000 }; /* 0.2 ms */

			nanosleep(&ts, NULL);
			continue;
		}
		while (sent < due) {
			snprintf(num, sizeof(num), "%llu", (unsigned long long)sent);
			if (varied) { /* xorshift64: cheap, random enough for gzip */
				uint64_t a, b;

				x ^= x << 13, x ^= x >> 7, x ^= x << 17, a = x;
				x ^= x << 13, x ^= x >> 7, x ^= x << 17, b = x;
				snprintf(id, sizeof(id), "%016llx%016llx", (unsigned long long)a,
					 (unsigned long long)b);
				args[4] = (char *)tails[a % (sizeof(tails) / sizeof(tails[0]))];
			}
			execve(path, args, envp);
			if (errno != ENOENT) {
				perror("execve");
				return 1;
			}
			sent++;
		}
	}
	t = now_ns();
	printf("sent %llu in %.3f s = %.0f/s\n", (unsigned long long)sent, (double)(t - start) / 1e9,
	       (double)sent * 1e9 / (double)(t - start));
	return 0;
}
