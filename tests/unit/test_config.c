// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Command-line parsing: good flags land in the config, bad ones are refused. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "agent/config.h"
#include "agent/tracers/tracer.h"
#include "bpf/exec.h"

#define ARGV(...) ((char *[]){ "podsnoop", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "podsnoop", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cfg, ...) config_parse(cfg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_defaults(void **state)
{
	struct ps_config c;
	char *argv[] = { "podsnoop", NULL };

	(void)state;
	assert_int_equal(config_parse(&c, 1, argv), 0);
	assert_int_equal(c.cmd, CMD_RUN);
	assert_int_equal(c.output, OUT_NDJSON);
	assert_int_equal(c.tracers, (1u << tracer_count) - 1);
	assert_false(c.tracers_given);
	assert_int_equal(c.max_args, EXEC_ARGC_DEF);
	assert_int_equal(c.max_args_bytes, EXEC_ARGS_BYTES_DEF);
	assert_true(c.max_args >= 32 && c.max_args_bytes >= 4096);
}

static void test_all_flags(void **state)
{
	struct ps_config c;

	(void)state;
	assert_int_equal(PARSE(&c, "--tracers", "exec", "-o", "text", "--cgroup", "/a",
			       "-c", "b/c", "--mntns", "4026531840", "-m", "7", "--exclude-host",
			       "--duration", "1.5", "--hook", "exec=sched_raw", "--max-args", "40",
			       "--max-args-bytes", "1024", "--drain-ms", "10", "--ringbuf-kb",
			       "64", "--metrics-series", "3", "-vv"),
			 0);
	assert_true(c.tracers_given);
	assert_int_equal(c.tracers, 1u << tracer_index("exec"));
	assert_int_equal(c.output, OUT_TEXT);
	assert_int_equal(c.n_cgroups, 2);
	assert_string_equal(c.cgroups[1], "b/c");
	assert_int_equal(c.n_mntns, 2);
	assert_true(c.mntns[0] == 4026531840ull && c.mntns[1] == 7);
	assert_true(c.exclude_host);
	assert_true(c.duration > 1.49 && c.duration < 1.51);
	assert_string_equal(c.hooks[tracer_index("exec")], "sched_raw");
	assert_int_equal(c.max_args, 40);
	assert_int_equal(c.max_args_bytes, 1024);
	assert_int_equal(c.drain_ms, 10);
	assert_int_equal(c.ringbuf_kb, 64);
	assert_int_equal(c.metrics_series, 3);
	assert_int_equal(c.verbose, 2);
}

static void test_probe_command(void **state)
{
	struct ps_config c;

	(void)state;
	assert_int_equal(PARSE(&c, "probe", "-o", "ndjson"), 0);
	assert_int_equal(c.cmd, CMD_PROBE);
	assert_int_equal(PARSE(&c, "probe", "--cgroup", "/x"), -EINVAL);
}

static void test_bad_input(void **state)
{
	struct ps_config c;

	(void)state;
	/* each is a one-line error and -EINVAL: exit status 2 */
	assert_int_equal(PARSE(&c, "--bogus"), -EINVAL);
	assert_int_equal(PARSE(&c, "-x"), -EINVAL);
	assert_int_equal(PARSE(&c, "--tracers", "exec,nope"), -EINVAL);
	assert_int_equal(PARSE(&c, "--tracers", ","), -EINVAL);
	assert_int_equal(PARSE(&c, "--output", "xml"), -EINVAL);
	assert_int_equal(PARSE(&c, "--mntns", "abc"), -EINVAL);
	assert_int_equal(PARSE(&c, "--mntns", "-5"), -EINVAL);
	assert_int_equal(PARSE(&c, "--mntns", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--mntns", "99999999999999999999999"), -EINVAL);
	assert_int_equal(PARSE(&c, "--duration", "abc"), -EINVAL);
	assert_int_equal(PARSE(&c, "--duration", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--duration", "-1"), -EINVAL);
	assert_int_equal(PARSE(&c, "--duration", "inf"), -EINVAL);
	assert_int_equal(PARSE(&c, "--duration", "5s"), -EINVAL);
	assert_int_equal(PARSE(&c, "--hook", "exec"), -EINVAL);
	assert_int_equal(PARSE(&c, "--hook", "nope=syscalls"), -EINVAL);
	assert_int_equal(PARSE(&c, "--hook", "exec=nope"), -EINVAL);
	assert_int_equal(PARSE(&c, "--max-args", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--max-args", "100000"), -EINVAL);
	assert_int_equal(PARSE(&c, "--max-args-bytes", "10"), -EINVAL);
	assert_int_equal(PARSE(&c, "--ringbuf-kb", "100"), -EINVAL);
	assert_int_equal(PARSE(&c, "--drain-ms", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--metrics-series", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--metrics-series", "2x"), -EINVAL);
	assert_int_equal(PARSE(&c, "--cgroup", ""), -EINVAL);
	assert_int_equal(PARSE(&c, "--duration"), -EINVAL);
	assert_int_equal(PARSE(&c, "stray"), -EINVAL);
}

static void test_rate_limit(void **state)
{
	struct ps_config c;

	(void)state;
	assert_int_equal(PARSE(&c, "--duration", "1"), 0);
	assert_int_equal(c.rate_limit, CFG_RATE_LIMIT_DEF);
	assert_int_equal(c.rate_burst, CFG_RATE_LIMIT_DEF * CFG_RATE_BURST_S_DEF);
	assert_int_equal(PARSE(&c, "--rate-limit", "300"), 0);
	assert_true(c.rate_limit == 300 && c.rate_burst == 300 * CFG_RATE_BURST_S_DEF);
	assert_int_equal(PARSE(&c, "--rate-limit", "300,7"), 0);
	assert_true(c.rate_limit == 300 && c.rate_burst == 7);
	assert_int_equal(PARSE(&c, "--rate-limit", "0"), 0);
	assert_int_equal(c.rate_limit, 0);
	assert_int_equal(PARSE(&c, "--rate-limit", "100000000"), 0);
	assert_int_equal(c.rate_burst, 100000000u * CFG_RATE_BURST_S_DEF);
	assert_int_equal(PARSE(&c, "--rate-limit", ""), -EINVAL);
	assert_int_equal(PARSE(&c, "--rate-limit", "x"), -EINVAL);
	assert_int_equal(PARSE(&c, "--rate-limit", "-5"), -EINVAL);
	assert_int_equal(PARSE(&c, "--rate-limit", "0,5"), -EINVAL);
	assert_int_equal(PARSE(&c, "--rate-limit", "5,0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--rate-limit", "5,"), -EINVAL);
	assert_int_equal(PARSE(&c, "--rate-limit", "5,6,7"), -EINVAL);
	assert_int_equal(PARSE(&c, "--rate-limit", "100000001"), -EINVAL);
	assert_int_equal(PARSE(&c, "--rate-limit", "123456789012345678901234567890123"), -EINVAL);
}

/* An error inside a cluster of short options must not leak into the next parse. */
static void test_parse_after_error_in_cluster(void **state)
{
	struct ps_config c;

	(void)state;
	assert_int_equal(PARSE(&c, "-qv"), -EINVAL); /* stops at q, before v */
	assert_int_equal(config_parse(&c, 1, (char *[]){ "podsnoop", NULL }), 0);
	assert_int_equal(c.verbose, 0);
	assert_int_equal(PARSE(&c, "-vq"), -EINVAL);
	assert_int_equal(PARSE(&c, "-o", "text"), 0);
	assert_int_equal(c.output, OUT_TEXT);
	assert_int_equal(c.verbose, 0);
}

/* A unix socket path holds 107 bytes: a longer one is refused, never cut. */
static void test_cri_socket_length(void **state)
{
	char p107[108], p108[109], u108[116];
	struct ps_config c;

	(void)state;
	memset(p107, 'a', sizeof(p107));
	p107[0] = '/';
	p107[107] = '\0';
	snprintf(p108, sizeof(p108), "%sb", p107);
	snprintf(u108, sizeof(u108), "unix://%s", p108);
	assert_int_equal(PARSE(&c, "--cri-socket", p107), 0);
	assert_string_equal(c.cri_socket, p107);
	assert_int_equal(PARSE(&c, "--cri-socket", p108), -EINVAL);
	assert_int_equal(PARSE(&c, "--cri-socket", u108), -EINVAL);
	u108[7 + 107] = '\0';
	assert_int_equal(PARSE(&c, "--cri-socket", u108), 0);
	assert_int_equal(PARSE(&c, "--cri-socket", "unix://"), -EINVAL);
}

static void test_listen_and_check_config(void **state)
{
	struct ps_config c;

	(void)state;
	assert_int_equal(PARSE(&c, "--listen", ":9464", "--check-config"), 0);
	assert_string_equal(c.listen, ":9464");
	assert_true(c.check_config);
	assert_int_equal(PARSE(&c, "--listen", "[::1]:0"), 0);
	assert_false(c.check_config);
	assert_int_equal(PARSE(&c, "--listen", "9464"), -EINVAL);
	assert_int_equal(PARSE(&c, "--listen", "h:99999"), -EINVAL);
	assert_int_equal(PARSE(&c, "--listen"), -EINVAL);
	assert_int_equal(PARSE(&c, "probe", "--listen", ":1"), -EINVAL);
	assert_int_equal(PARSE(&c, "probe", "--check-config"), 0);
}

static void test_help_and_version(void **state)
{
	struct ps_config c;
	FILE *saved = stdout;

	(void)state;
	stdout = fopen("/dev/null", "w");
	assert_int_equal(PARSE(&c, "--help"), 1);
	assert_int_equal(PARSE(&c, "-V"), 1);
	fclose(stdout);
	stdout = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_flags),
		cmocka_unit_test(test_probe_command),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_parse_after_error_in_cluster),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_cri_socket_length),
		cmocka_unit_test(test_listen_and_check_config),
		cmocka_unit_test(test_help_and_version),
	};

	/* the errors are expected: keep the test log readable */
	if (!freopen("/dev/null", "w", stderr))
		return 1;
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
