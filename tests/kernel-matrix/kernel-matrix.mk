# Make targets for the kernel matrix. Include from the top-level Makefile:
#   include tests/kernel-matrix/kernel-matrix.mk
# then:  make kernel-matrix            (demo test binary, all kernels of the table)
#        make kernel-matrix KM_BINARY=build/podsnoop-tests KM_EXPECT_DIR=tests/expect
#        make kernel-matrix-selftest   (the harness judges panics, hangs, exits right)
#        make kernel-matrix-deps       (apt-get the tools; root)
# Variables are passed to tests/kernel-matrix/run through the environment:
# KM_BINARY, KM_ARGS, KM_FILES, KM_EXPECT_DIR, KM_KERNELS, KM_JOBS, KM_TIMEOUT,
# KM_SKIP_IF_NO_QEMU=1 (skip cleanly without qemu), KM_SKIP=1.
KM_MK_DIR := $(dir $(lastword $(MAKEFILE_LIST)))

kernel-matrix:
	$(KM_MK_DIR)run

kernel-matrix-selftest:
	$(KM_MK_DIR)selftest

kernel-matrix-deps:
	$(KM_MK_DIR)install-deps

.PHONY: kernel-matrix kernel-matrix-selftest kernel-matrix-deps
