/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Deadlines for libmicrohttpd connections. MHD's own timeout is an idle
 * timeout, reset by every byte: a client trickling header bytes holds its
 * connection forever, and enough of them hold every connection the server
 * allows (slowloris). A guard gives each connection a deadline for its
 * request's headers, counted from the connection's start or the end of its
 * last request, and one for a body; mhd_guard_reap() shuts down the
 * connections past theirs.
 *
 *	static struct mhd_guard guard = MHD_GUARD_INIT(5, 60);
 *	MHD_start_daemon(..., MHD_OPTION_NOTIFY_CONNECTION, mhd_guard_notify, &guard,
 *			 MHD_OPTION_NOTIFY_COMPLETED, mhd_guard_completed, &guard, ...);
 *	in the access handler, first call of a request: mhd_guard_phase(c, MHD_GUARD_BODY)
 *	(or MHD_GUARD_BUSY when no body is read: no deadline while it is answered)
 *	every second or so, on any thread: mhd_guard_reap(&guard)
 *
 * shutdown() is safe from any thread: MHD reports a connection CLOSED
 * (which takes the guard's lock) before it closes the socket, so a socket
 * number the guard holds has not been reused.
 */
#ifndef PS_MHD_GUARD_H
#define PS_MHD_GUARD_H

#include <pthread.h>
#include <stdint.h>
#include <microhttpd.h>

enum mhd_guard_phase {
	MHD_GUARD_HEADERS,	/* the next request's headers are due */
	MHD_GUARD_BODY,		/* the headers are in, the body is due */
	MHD_GUARD_BUSY,		/* the server is answering: no deadline */
};

struct mhd_guard_conn;

struct mhd_guard {
	pthread_mutex_t mu;
	unsigned header_s, body_s;
	struct mhd_guard_conn *conns;
	uint64_t cut;		/* connections shut down past their deadline */
	uint64_t untracked;	/* connections started without one (no memory) */
};

#define MHD_GUARD_INIT(header_s_, body_s_) \
	{ .mu = PTHREAD_MUTEX_INITIALIZER, .header_s = (header_s_), .body_s = (body_s_) }

/* For MHD_OPTION_NOTIFY_CONNECTION, with the guard as its closure. */
void mhd_guard_notify(void *guard, struct MHD_Connection *c, void **socket_context,
		      enum MHD_ConnectionNotificationCode code);
/* For MHD_OPTION_NOTIFY_COMPLETED: the next request's headers are due. */
void mhd_guard_completed(void *guard, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe);
/* A request of c moved on (from the access handler). */
void mhd_guard_phase(struct MHD_Connection *c, enum mhd_guard_phase phase);
/* Shut down the connections past their deadline; returns how many. */
unsigned mhd_guard_reap(struct mhd_guard *g);

#endif
