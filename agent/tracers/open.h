/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PS_AGENT_OPEN_H
#define PS_AGENT_OPEN_H

#include <stddef.h>
#include "agent/out/output.h"
#include "agent/tracers/tracer.h"

extern const struct tracer open_tracer;

/* Check a raw ring buffer record and build a view into it; -EINVAL when its lengths do not fit. */
int open_decode(const void *data, size_t size, struct open_view *v);

#endif
