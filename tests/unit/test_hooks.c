// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The hook method each tracer takes, from what `podsnoop probe` finds: the
 * real tracer table, probe answers written down per kind of kernel.
 */
#include <string.h>

#include "unit.h"
#include "agent/tracers/tracer.h"

/* Every method of every tracer available or not, then the exceptions by name. */
static void probe_all(struct hook_probe *p, bool avail)
{
	for (size_t i = 0; i < tracer_count; i++)
		for (size_t j = 0; j < tracer_table[i]->n_methods; j++)
			p->avail[i][j] = avail;
}

static void set(struct hook_probe *p, const char *tracer, const char *method, bool avail)
{
	int i = tracer_index(tracer);
	const struct hook_method *m;

	assert_true(i >= 0);
	m = tracer_method(tracer_table[i], method);
	assert_non_null(m);
	p->avail[i][m - tracer_table[i]->methods] = avail;
}

/* Every tracer's method set to avail, in every tracer. */
static void set_all(struct hook_probe *p, const char *method, bool avail)
{
	for (size_t i = 0; i < tracer_count; i++)
		if (tracer_method(tracer_table[i], method))
			set(p, tracer_table[i]->name, method, avail);
}

static uint32_t set_of(const char *const names[])
{
	uint32_t on = 0;

	for (; *names; names++) {
		int i = tracer_index(*names);

		assert_true(i >= 0);
		on |= 1u << i;
	}
	return on;
}

#define TRACERS(...) set_of((const char *const[]){ __VA_ARGS__, NULL })
#define ALL ((1u << tracer_count) - 1)

static const char *pick(const struct hook_method *const out[], const char *tracer)
{
	const struct hook_method *m = out[tracer_index(tracer)];

	return m ? m->name : "(none)";
}

/* This development VM (6.18): no kprobes, no trampolines. */
static void kernel_without_trampolines(struct hook_probe *p)
{
	probe_all(p, true);
	set_all(p, "fentry", false);
	set_all(p, "kprobe", false);
}

static void test_no_trampolines_syscall_tracepoints(void **state)
{
	const struct hook_method *out[CFG_MAX_TRACERS];
	struct hook_probe p;

	(void)state;
	kernel_without_trampolines(&p);
	hooks_choose(&p, ALL, NULL, out);
	/* cheaper than the raw dispatcher on whole workloads here (docs/hooks.md) */
	assert_string_equal(pick(out, "exec"), "syscalls");
	assert_string_equal(pick(out, "open"), "syscalls");
	assert_string_equal(pick(out, "fs"), "syscalls");
	assert_string_equal(pick(out, "bio"), "io_start");
	assert_string_equal(pick(out, "cache"), "tp_btf");
	/* the same for any set of tracers; those outside it get none */
	hooks_choose(&p, TRACERS("fs"), NULL, out);
	assert_string_equal(pick(out, "fs"), "syscalls");
	assert_null(out[tracer_index("exec")]);
	assert_null(out[tracer_index("cache")]);
}

static void test_no_tracefs_the_dispatcher(void **state)
{
	const struct hook_method *out[CFG_MAX_TRACERS];
	struct hook_probe p;

	(void)state;
	/* tracefs unmounted (a pod without it): the syscall tracepoints are missing */
	kernel_without_trampolines(&p);
	set_all(&p, "syscalls", false);
	hooks_choose(&p, ALL, NULL, out);
	/* before exec's sched_process_exec hooks: it sees failed execs too */
	assert_string_equal(pick(out, "exec"), "raw_syscalls");
	assert_string_equal(pick(out, "open"), "raw_syscalls");
	assert_string_equal(pick(out, "fs"), "raw_syscalls");
	/* not x86-64 either: exec keeps the hooks that need no tracefs, open has none */
	set_all(&p, "raw_syscalls", false);
	hooks_choose(&p, ALL, NULL, out);
	assert_string_equal(pick(out, "exec"), "sched_btf");
	assert_null(out[tracer_index("open")]);
	assert_null(out[tracer_index("fs")]);
}

static void test_trampolines_first(void **state)
{
	const struct hook_method *out[CFG_MAX_TRACERS];
	struct hook_probe p;

	(void)state;
	/* Debian's 6.1 and 6.12: kprobes and trampolines */
	probe_all(&p, true);
	hooks_choose(&p, ALL, NULL, out);
	assert_string_equal(pick(out, "exec"), "fentry");
	assert_string_equal(pick(out, "open"), "fentry");
	assert_string_equal(pick(out, "fs"), "fentry");
	assert_string_equal(pick(out, "cache"), "fentry");
	/* fs's functions in a module without BTF: kprobes; exec and open keep fentry */
	set(&p, "fs", "fentry", false);
	hooks_choose(&p, ALL, NULL, out);
	assert_string_equal(pick(out, "fs"), "kprobe");
	assert_string_equal(pick(out, "exec"), "fentry");
}

static void test_forced_methods(void **state)
{
	const struct hook_method *out[CFG_MAX_TRACERS];
	const char *forced[CFG_MAX_TRACERS] = { 0 };
	struct hook_probe p;

	(void)state;
	kernel_without_trampolines(&p);
	forced[tracer_index("exec")] = "raw_syscalls";
	forced[tracer_index("fs")] = "raw_syscalls";
	hooks_choose(&p, ALL, forced, out);
	assert_string_equal(pick(out, "exec"), "raw_syscalls");
	assert_string_equal(pick(out, "fs"), "raw_syscalls");
	assert_string_equal(pick(out, "open"), "syscalls");	/* not forced: its own choice */
	/* forced below the first choice, and a method further down */
	memset(forced, 0, sizeof(forced));
	forced[tracer_index("exec")] = "sched_raw";
	forced[tracer_index("cache")] = "tracepoint";
	hooks_choose(&p, ALL, forced, out);
	assert_string_equal(pick(out, "exec"), "sched_raw");
	assert_string_equal(pick(out, "cache"), "tracepoint");
}

static void test_forced_missing_method_is_none(void **state)
{
	const struct hook_method *out[CFG_MAX_TRACERS];
	const char *forced[CFG_MAX_TRACERS] = { 0 };
	struct hook_probe p;

	(void)state;
	kernel_without_trampolines(&p);
	forced[tracer_index("exec")] = "fentry";
	forced[tracer_index("fs")] = "kprobe";
	hooks_choose(&p, ALL, forced, out);
	/* never another method in its place: the agent refuses the flag (exit 2) */
	assert_null(out[tracer_index("exec")]);
	assert_null(out[tracer_index("fs")]);
	assert_string_equal(pick(out, "open"), "syscalls");
	/* and the same method where the kernel has it */
	probe_all(&p, true);
	hooks_choose(&p, ALL, forced, out);
	assert_string_equal(pick(out, "exec"), "fentry");
	assert_string_equal(pick(out, "fs"), "kprobe");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_trampolines_syscall_tracepoints),
		cmocka_unit_test(test_no_tracefs_the_dispatcher),
		cmocka_unit_test(test_trampolines_first),
		cmocka_unit_test(test_forced_methods),
		cmocka_unit_test(test_forced_missing_method_is_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
