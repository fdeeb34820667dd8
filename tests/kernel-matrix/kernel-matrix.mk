# Make targets for the kernel matrix. Include from the top-level Makefile (after OUT
# is set):  include tests/kernel-matrix/kernel-matrix.mk
# then:  make kernel-matrix            the agent (build/podsnoop): every tracer's hook
#                                      methods on every kernel of the table under qemu
#                                      and on this machine's kernel (agent/run; also
#                                      part of make test)
#        make kernel-matrix-demo       the demo test binary on every kernel (run)
#        make kernel-matrix-selftest   the harness judges panics, hangs, exits right
#        make kernel-matrix-deps       apt-get the tools (root)
# Variables reach the scripts through the environment: KM_KERNELS, KM_JOBS, KM_TIMEOUT,
# KM_NO_FETCH=1, KM_SKIP=1, KMA_AGENT_ARGS (agent/run); KM_BINARY, KM_ARGS, KM_FILES,
# KM_EXPECT_DIR, KM_SKIP_IF_NO_QEMU=1 (run).
KM_MK_DIR := $(dir $(lastword $(MAKEFILE_LIST)))

kernel-matrix: $(OUT)/podsnoop
	$(KM_MK_DIR)agent/run

kernel-matrix-demo:
	$(KM_MK_DIR)run

kernel-matrix-selftest:
	$(KM_MK_DIR)selftest

kernel-matrix-deps:
	$(KM_MK_DIR)install-deps

.PHONY: kernel-matrix kernel-matrix-demo kernel-matrix-selftest kernel-matrix-deps
