/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Building exec ring buffer records by hand, for the tests that decode them. */
#ifndef PS_EXEC_FIXTURE_H
#define PS_EXEC_FIXTURE_H

#include <string.h>
#include "bpf/exec.h"

/*
 * Zero ev, then lay out fname (NUL-terminated) and args (one blob with
 * embedded NULs) as the kernel does. Returns the record's size.
 */
static inline size_t exec_fill(struct exec_event *ev, const char *fname, const char *args,
			       size_t args_len)
{
	size_t fl = strlen(fname) + 1;

	memset(ev, 0, sizeof(*ev));
	memcpy(ev->buf, fname, fl);
	memcpy(ev->buf + fl, args, args_len);
	ev->filename_len = (__u32)fl;
	ev->args_len = (__u32)args_len;
	return EXEC_EVENT_HDR_SIZE + fl + args_len;
}

#endif
