// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * exec PROG ARG from a second thread: the kernel gives the exec'ing thread
 * the leader's pid (de_thread), so execve returns under another tid than the
 * one it entered with. Prints the thread's tid first.
 * Usage: exec_thread PROG ARG
 */
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static char **args;

static void *run(void *unused)
{
	(void)unused;
	printf("%ld\n", (long)syscall(SYS_gettid));
	fflush(stdout);
	execv(args[0], args);
	perror("execv");
	_exit(127);
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc != 3) {
		fprintf(stderr, "usage: exec_thread PROG ARG\n");
		return 2;
	}
	args = argv + 1;
	if (pthread_create(&t, NULL, run, NULL))
		return 1;
	pthread_join(t, NULL); /* never returns: the exec replaces us */
	return 1;
}
