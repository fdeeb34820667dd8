// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The NDJSON writer: any bytes in, valid JSON out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "unit.h"
#include "lib/jsonw.h"

/* Render one string literal through jw_write_string. */
static char *render(const char *s, size_t len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	jw_write_string(f, s, len);
	fclose(f);
	return buf;
}

static void check(const char *in, size_t len, const char *want)
{
	char *got = render(in, len);

	assert_string_equal(got, want);
	free(got);
}

static void test_plain_and_escapes(void **state)
{
	(void)state;
	check("abc", 3, "\"abc\"");
	check("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
	check("l1\nl2\r\t", 7, "\"l1\\nl2\\r\\t\"");
	check("\x01\x1f", 2, "\"\\u0001\\u001f\"");
	check("", 0, "\"\"");
}

static void test_embedded_nul_is_escaped(void **state)
{
	(void)state;
	check("a\0b", 3, "\"a\\u0000b\"");
}

static void test_valid_utf8_passes(void **state)
{
	(void)state;
	check("\xc3\xa9", 2, "\"\xc3\xa9\"");			/* é */
	check("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"");		/* € */
	check("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");	/* U+1F600 */
}

static void test_invalid_utf8_replaced(void **state)
{
	(void)state;
	check("\xff", 1, "\"\\ufffd\"");
	check("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");		/* overlong '/' */
	check("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");	/* surrogate */
	check("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	check("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");		/* cut sequence */
	check("a\xe2\x82" "b", 4, "\"a\\ufffd\\ufffdb\"");
}

/* Every byte value, in every position, must come out as parseable JSON. */
static void test_all_bytes_parse(void **state)
{
	char in[512], *doc, *lit;
	size_t n;
	cJSON *j;

	(void)state;
	for (int i = 0; i < 256; i++) {
		in[2 * i] = (char)i;
		in[2 * i + 1] = (char)(255 - i);
	}
	lit = render(in, sizeof(in));
	n = strlen(lit);
	doc = malloc(n + 8);
	assert_non_null(doc);
	snprintf(doc, n + 8, "{\"s\":%s}", lit);
	j = cJSON_Parse(doc);
	assert_non_null(j);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "s")));
	cJSON_Delete(j);
	free(doc);
	free(lit);
}

static void test_record_structure(void **state)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	struct jw w;
	cJSON *j, *arr;

	(void)state;
	jw_begin(&w, f);
	jw_cstr(&w, "type", "exec");
	jw_u64(&w, "big", UINT64_MAX);
	jw_i64(&w, "neg", -2);
	jw_arr_open(&w, "args");
	jw_cstr(&w, NULL, "a");
	jw_cstr(&w, NULL, "b");
	jw_arr_close(&w);
	jw_obj_open(&w, "k8s");
	jw_cstr(&w, "pod", "p");
	jw_obj_close(&w);
	jw_bool(&w, "t", true);
	jw_double(&w, "nan", 0.0 / 0.0);
	jw_end(&w);
	fclose(f);

	assert_int_equal(buf[n - 1], '\n');
	assert_string_equal(buf, "{\"type\":\"exec\",\"big\":18446744073709551615,\"neg\":-2,"
				 "\"args\":[\"a\",\"b\"],\"k8s\":{\"pod\":\"p\"},\"t\":true,"
				 "\"nan\":null}\n");
	j = cJSON_Parse(buf);
	assert_non_null(j);
	arr = cJSON_GetObjectItem(j, "args");
	assert_int_equal(cJSON_GetArraySize(arr), 2);
	cJSON_Delete(j);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_escapes),
		cmocka_unit_test(test_embedded_nul_is_escaped),
		cmocka_unit_test(test_valid_utf8_passes),
		cmocka_unit_test(test_invalid_utf8_replaced),
		cmocka_unit_test(test_all_bytes_parse),
		cmocka_unit_test(test_record_structure),
	};

	return cmocka_run_group_tests_name("jsonw", tests, NULL, NULL);
}
