// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Metadata sources: kubelet PodList parsing, gRPC framing and trailers, CRI info. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "agent/attrib/cri.h"
#include "agent/attrib/grpc.h"
#include "agent/attrib/kubelet.h"

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static const struct kl_container *find_ctr(const struct kl_pod *p, const char *id)
{
	for (size_t i = 0; i < p->n_containers; i++)
		if (strcmp(p->containers[i].id, id) == 0)
			return &p->containers[i];
	return NULL;
}

#define R(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
	     c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static void test_kubelet_podlist(void **state)
{
	struct kl_podlist l;
	char err[256];
	size_t len;
	char *json = slurp("tests/data/kubelet_podlist.json", &len);
	const struct kl_pod *web, *proxy, *batch;
	const struct kl_container *c;

	(void)state;
	assert_int_equal(kubelet_parse(json, len, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.skipped, 1); /* the item without a uid */
	web = &l.pods[0];
	assert_string_equal(web->name, "web-7d4b9c6f5d-x2k8p");
	assert_string_equal(web->namespace_, "shop");
	assert_string_equal(web->uid, "9a1f2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d");
	assert_int_equal(web->n_labels, 3);
	assert_string_equal(web->labels[2].key, "tier");
	assert_string_equal(web->labels[2].value, "frontend");
	/* app now, app's previous (OOM-killed) instance, nginx, the init container */
	assert_int_equal(web->n_containers, 4);
	c = find_ctr(web, R("3"));
	assert_non_null(c);
	assert_string_equal(c->name, "app");
	assert_string_equal(c->runtime, "containerd");
	c = find_ctr(web, R("2"));
	assert_non_null(c);
	assert_string_equal(c->name, "app");
	assert_string_equal(find_ctr(web, R("4"))->name, "nginx");
	assert_string_equal(find_ctr(web, R("1"))->name, "migrate");

	proxy = &l.pods[1];
	assert_string_equal(proxy->uid, "3e83ebb5a33a5fe4b5a8c3a5b94a0e2b");
	assert_int_equal(proxy->n_containers, 1);
	assert_string_equal(proxy->containers[0].runtime, "cri-o");

	batch = &l.pods[2];
	assert_string_equal(batch->name, "batch-28571430-abcde");
	assert_int_equal(batch->n_labels, 0);
	assert_int_equal(batch->n_containers, 0); /* still creating: no id yet */
	kubelet_podlist_free(&l);
	free(json);
}

static void test_kubelet_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"{",
		"{\"kind\":\"PodList\",\"items\":[{\"metadata\":",
		"[]",
		"{\"kind\":\"Pod\",\"items\":[]}",
		"{\"kind\":\"PodList\"}",
		"{\"kind\":\"PodList\",\"items\":{}}",
		"\xff\xfe{}",
	};
	struct kl_podlist l;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (kubelet_parse(bad[i], strlen(bad[i]), &l, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
	}
	/* wrong types inside items are skipped, not fatal */
	{
		const char *odd = "{\"kind\":\"PodList\",\"items\":[1,\"x\",null,"
				  "{\"metadata\":{\"uid\":5,\"name\":\"a\",\"namespace\":\"b\"}},"
				  "{\"metadata\":{\"uid\":\"u\",\"name\":\"a\",\"namespace\":\"b\","
				  "\"labels\":{\"k\":1,\"j\":\"v\"}},\"status\":{\"containerStatuses\":"
				  "[{\"name\":\"c\",\"containerID\":\"containerd://short\"},"
				  "{\"containerID\":\"containerd://" R("a") "\"},7]}}]}";

		assert_int_equal(kubelet_parse(odd, strlen(odd), &l, err, sizeof(err)), 0);
		assert_int_equal(l.n, 1);
		assert_int_equal(l.skipped, 4);
		assert_int_equal(l.pods[0].n_labels, 1);
		assert_int_equal(l.pods[0].n_containers, 0);
		kubelet_podlist_free(&l);
	}
}

/* A body of tiny objects is refused by what its parse allocates, not parsed to 50x its size. */
static void test_kubelet_parse_budget(void **state)
{
	static const char head[] = "{\"kind\":\"PodList\",\"items\":[", tail[] = "{}]}";
	size_t n = 8u << 20, len = 0;
	char *json = malloc(n + sizeof(tail)), err[256];
	struct kl_podlist l;

	(void)state;
	assert_non_null(json);
	memcpy(json, head, sizeof(head) - 1);
	for (len = sizeof(head) - 1; len + 3 <= n; len += 3)
		memcpy(json + len, "{},", 3);
	memcpy(json + len, tail, sizeof(tail));
	len += sizeof(tail) - 1;
	assert_int_equal(kubelet_parse(json, len, &l, err, sizeof(err)), -E2BIG);
	assert_non_null(strstr(err, "would take more than 192 MiB"));
	assert_null(l.pods);
	/* the same items, fewer: parsed (each skipped, having no metadata) */
	len = sizeof(head) - 1 + 3 * 300000;
	memcpy(json + len, tail, sizeof(tail));
	assert_int_equal(kubelet_parse(json, len + sizeof(tail) - 1, &l, err, sizeof(err)), 0);
	assert_true(l.skipped == 300001 && l.n == 0);
	kubelet_podlist_free(&l);
	free(json);
}

static void test_grpc_framing(void **state)
{
	uint8_t buf[16] = { 0 };
	const uint8_t *msg;
	size_t n;

	(void)state;
	grpc_frame_header(buf, 3);
	assert_memory_equal(buf, "\0\0\0\0\3", 5);
	assert_int_equal(grpc_unframe(buf, 8, &msg, &n), 0);
	assert_int_equal(n, 3);
	assert_ptr_equal(msg, buf + 5);
	assert_int_equal(grpc_unframe(buf, 9, &msg, &n), -EPROTO);	/* trailing bytes */
	assert_int_equal(grpc_unframe(buf, 7, &msg, &n), -EPROTO);	/* cut short */
	assert_int_equal(grpc_unframe(buf, 4, &msg, &n), -EPROTO);
	buf[0] = 1;							/* compressed */
	assert_int_equal(grpc_unframe(buf, 8, &msg, &n), -EPROTO);
	grpc_frame_header(buf, 0x01020304);
	assert_memory_equal(buf, "\0\1\2\3\4", 5);
}

static void test_grpc_trailers(void **state)
{
	struct grpc_status st = { .code = -1 };
	char s[64];

	(void)state;
	grpc_header_line("content-type: application/grpc\r\n", strlen("content-type: application/grpc\r\n"), &st);
	assert_int_equal(st.code, -1);
	grpc_header_line("grpc-status: 14\r\n", strlen("grpc-status: 14\r\n"), &st);
	assert_int_equal(st.code, 14);
	assert_string_equal(grpc_code_name(st.code), "UNAVAILABLE");
	grpc_header_line("Grpc-Message: connection%20refused%3A%20x%ZZ\r\n", strlen("Grpc-Message: connection%20refused%3A%20x%ZZ\r\n"), &st);
	assert_string_equal(st.message, "connection refused: x%ZZ");
	grpc_header_line("grpc-status: abc\r\n", strlen("grpc-status: abc\r\n"), &st);
	assert_int_equal(st.code, 2); /* unparseable: UNKNOWN */
	grpc_header_line("grpc-status:0", strlen("grpc-status:0"), &st);
	assert_int_equal(st.code, 0);
	grpc_header_line("no colon here", strlen("no colon here"), &st);
	assert_int_equal(st.code, 0);
	assert_string_equal(grpc_code_name(5), "NOT_FOUND");
	assert_string_equal(grpc_code_name(99), "UNKNOWN_CODE");
	assert_string_equal(grpc_code_name(-1), "NO_STATUS");
	strcpy(s, "%e2%9c%93 ok%");
	grpc_percent_decode(s);
	assert_string_equal(s, "\xe2\x9c\x93 ok%");
}

static void test_cri_info_pid(void **state)
{
	(void)state;
	assert_int_equal(cri_info_pid("{\"sandboxID\":\"x\",\"pid\":4242,\"runtimeSpec\":{}}"), 4242);
	assert_int_equal(cri_info_pid("{\"pid\":0}"), 0);
	assert_int_equal(cri_info_pid("{\"pid\":\"12\"}"), 0);
	assert_int_equal(cri_info_pid("{\"pid\":-3}"), 0);
	assert_int_equal(cri_info_pid("not json"), 0);
	assert_int_equal(cri_info_pid(""), 0);
}

/* Talking to nothing: a clear error, no crash. */
static void test_cri_no_socket(void **state)
{
	struct cri_client c;

	(void)state;
	assert_int_equal(cri_open(&c, "unix:///nonexistent/ps-cri.sock", 1000), 0);
	assert_string_equal(c.socket, "/nonexistent/ps-cri.sock");
	assert_int_equal(cri_version(&c), -ENOENT);
	assert_non_null(strstr(c.err, "/nonexistent/ps-cri.sock"));
	assert_non_null(strstr(c.err, "No such file"));
	assert_int_equal(c.lat[CRI_VERSION].calls, 1);
	assert_int_equal(c.lat[CRI_VERSION].errors, 1);
	cri_close(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kubelet_podlist),
		cmocka_unit_test(test_kubelet_malformed),
		cmocka_unit_test(test_kubelet_parse_budget),
		cmocka_unit_test(test_grpc_framing),
		cmocka_unit_test(test_grpc_trailers),
		cmocka_unit_test(test_cri_info_pid),
		cmocka_unit_test(test_cri_no_socket),
	};

	return cmocka_run_group_tests_name("sources", tests, NULL, NULL);
}
