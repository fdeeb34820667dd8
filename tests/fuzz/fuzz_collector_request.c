// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The collector's request path (collector/request.c): a POSTed body,
 * gunzipped (first input byte odd) or taken as it is, bounded, unpacked,
 * checked record by record, then written through the agent's NDJSON writer,
 * as collector.c does with every batch it takes; its (agent_id, seq) into
 * a de-duplication set of its own. Everything the request took from the
 * pool must be back after request_release().
 */
#include <stdio.h>

#include "fuzz.h"
#include "collector/dedup.h"
#include "collector/request.h"

/* small bounds, so an input cannot make the fuzzer slow */
static const struct req_limits lim = {
	.max_raw = 1u << 20,
	.max_records = 20000,
	.max_losses = REQ_MAX_LOSSES,
	.max_decode = 16u << 20,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct mem_pool pool = { .max = 24u << 20 };
	struct dedup d;
	struct req r;
	unsigned status;

	if (!size)
		return 0;
	if (!devnull && !(devnull = fopen("/dev/null", "w")))
		abort();
	request_init(&r, &lim, &pool);
	status = request_decode(&r, data + 1, size - 1, data[0] & 1);
	if (status == 200) {
		if (!r.batch)
			abort();
		request_write_records(&r, devnull);
		dedup_init(&d, 4);
		if (dedup_mark(&d, r.batch->agent->agent_id, r.batch->seq) ||
		    !dedup_seen(&d, r.batch->agent->agent_id, r.batch->seq))
			abort();
		dedup_free(&d);
	} else if (r.batch || !r.msg[0] || (status != 400 && status != 413 && status != 503)) {
		abort();
	}
	fuzz_sink += r.raw_len + r.skipped;
	request_release(&r);
	if (pool.used || pool.peak > pool.max)
		abort();
	return 0;
}
