/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PS_AGENT_BIO_H
#define PS_AGENT_BIO_H

#include <stddef.h>
#include "agent/out/output.h"
#include "agent/tracers/tracer.h"

extern const struct tracer bio_tracer;

/* Check a raw ring buffer record and build a view into it; -EINVAL when it does not fit. */
int bio_decode(const void *data, size_t size, struct bio_view *v);
/* blktrace-style operation letters (R, W, D, F, N, then F A S M) into out (8 bytes). */
void bio_op_string(uint8_t op, uint8_t op_flags, char out[8]);
/* Letter of an operation class, as histograms are keyed: R, W, D, F or N. */
const char *bio_op_class(uint32_t op);

#endif
