/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PS_AGENT_EXEC_H
#define PS_AGENT_EXEC_H

#include <stddef.h>
#include "agent/out/output.h"
#include "agent/tracers/tracer.h"

extern const struct tracer exec_tracer;

/*
 * Check a raw ring buffer record and build a view into it; -EINVAL when the
 * lengths do not fit the record. Arguments beyond max_args, and a cut-off
 * last argument, are dropped and flagged as truncation.
 */
int exec_decode(const void *data, size_t size, uint32_t max_args, struct exec_view *v);

#endif
