/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Unary gRPC calls over HTTP/2 on a unix socket, with libcurl: what the CRI
 * needs. One connection per client, reused; a call blocks up to the timeout,
 * so it belongs on the metadata thread, never on the event path.
 */
#ifndef PS_GRPC_H
#define PS_GRPC_H

#include <stddef.h>
#include <stdint.h>

#define GRPC_MAX_RESPONSE (64u << 20)

/* The outcome of one call. */
struct grpc_status {
	int code;		/* gRPC status code; -1 when the call never got one */
	char message[512];	/* grpc-message (decoded), or the transport error */
};

struct grpc_conn {
	void *curl;
	void *headers;
	char socket[108];
	long timeout_ms;
	/* the response being read */
	uint8_t *buf;
	size_t len, cap;
	struct grpc_status *st;
	int http_code;
	char errbuf[256];
};

int grpc_open(struct grpc_conn *c, const char *socket, long timeout_ms);
void grpc_close(struct grpc_conn *c);

/*
 * Call the method at path ("/pkg.Service/Method") with a packed request. On
 * success (status OK with one message) msg and msg_len give the answer, in
 * the connection's buffer until the next call. Otherwise st says why: -EREMOTEIO with st->code set when the
 * server answered with an error status, -ECONNREFUSED/-ENOENT/-ETIMEDOUT/
 * -EIO for transport failures, -EPROTO for a malformed answer.
 */
int grpc_call(struct grpc_conn *c, const char *path, const uint8_t *req, size_t req_len,
	      const uint8_t **msg, size_t *msg_len, struct grpc_status *st);

/* Exposed for tests. */
const char *grpc_code_name(int code);
/* 5-byte length-prefixed message framing. */
void grpc_frame_header(uint8_t hdr[5], size_t len);
int grpc_unframe(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msg_len);
/* One header or trailer line ("grpc-status: 14\r\n"): updates st. */
void grpc_header_line(const char *line, size_t n, struct grpc_status *st);
/* grpc-message is percent-encoded: decode in place. */
void grpc_percent_decode(char *s);

#endif
