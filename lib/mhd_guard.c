// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <sys/socket.h>

#include "lib/mhd_guard.h"

struct mhd_guard_conn {
	struct mhd_guard_conn *prev, *next;
	struct mhd_guard *g;
	int fd;
	enum mhd_guard_phase phase;
	uint64_t deadline_ms;	/* CLOCK_MONOTONIC */
	bool cut;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Called with g->mu held. */
static void set_phase(struct mhd_guard_conn *k, enum mhd_guard_phase phase)
{
	unsigned s = phase == MHD_GUARD_HEADERS ? k->g->header_s : k->g->body_s;

	k->phase = phase;
	k->deadline_ms = now_ms() + (uint64_t)s * 1000u;
}

static struct mhd_guard_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

void mhd_guard_notify(void *guard, struct MHD_Connection *c, void **socket_context,
		      enum MHD_ConnectionNotificationCode code)
{
	struct mhd_guard *g = guard;
	struct mhd_guard_conn *k = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		k = ci ? calloc(1, sizeof(*k)) : NULL;
		pthread_mutex_lock(&g->mu);
		if (!k) {
			g->untracked++;
		} else {
			k->g = g;
			k->fd = ci->connect_fd;
			set_phase(k, MHD_GUARD_HEADERS);
			k->next = g->conns;
			if (g->conns)
				g->conns->prev = k;
			g->conns = k;
		}
		pthread_mutex_unlock(&g->mu);
		*socket_context = k;
		return;
	}
	if (!k) /* CLOSED, of one never tracked */
		return;
	pthread_mutex_lock(&g->mu);
	*(k->prev ? &k->prev->next : &g->conns) = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&g->mu);
	free(k);
	*socket_context = NULL;
}

void mhd_guard_phase(struct MHD_Connection *c, enum mhd_guard_phase phase)
{
	struct mhd_guard_conn *k = conn_of(c);

	if (!k)
		return;
	pthread_mutex_lock(&k->g->mu);
	set_phase(k, phase);
	pthread_mutex_unlock(&k->g->mu);
}

void mhd_guard_completed(void *guard, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)guard;
	(void)req_cls;
	(void)toe;
	mhd_guard_phase(c, MHD_GUARD_HEADERS);
}

unsigned mhd_guard_reap(struct mhd_guard *g)
{
	uint64_t now = now_ms();
	unsigned n = 0;

	pthread_mutex_lock(&g->mu);
	for (struct mhd_guard_conn *k = g->conns; k; k = k->next) {
		if (k->phase == MHD_GUARD_BUSY || k->cut || now < k->deadline_ms)
			continue;
		/* MHD sees the end of its input and closes the connection itself */
		shutdown(k->fd, SHUT_RDWR);
		k->cut = true;
		n++;
	}
	g->cut += n;
	pthread_mutex_unlock(&g->mu);
	return n;
}
