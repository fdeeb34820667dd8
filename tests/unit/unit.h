/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Unit tests use cmocka; this pulls in what cmocka.h expects before it. */
#ifndef PS_UNIT_H
#define PS_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

/*
 * UNIT_CASE=pattern (make unit T=name C=pattern) runs only the cases whose
 * names match, with cmocka's * and ? wildcards; the others do not run.
 */
__attribute__((constructor)) static void unit_case_filter(void)
{
	const char *p = getenv("UNIT_CASE");

	if (p && *p)
		cmocka_set_test_filter(p);
}
#endif
