# libFuzzer targets for every parser of outside input. Included from the top-level
# Makefile after LIB_SRCS, COMMON_SRCS, COLL_SRCS, GEN_SRCS and the flags are set:
#   include tests/fuzz/fuzz.mk
#
#   tests/fuzz/fuzz_<name>.c      defines LLVMFuzzerTestOneInput; picked up by wildcard
#   tests/fuzz/corpus/<name>/     seed inputs, from the tests' real data
#   tests/fuzz/crashes/<name>/    inputs that once crashed: regression cases, replayed
#                                 by make test
#
#   make fuzz        build every target, fuzz each for FUZZ_SECONDS (default 60);
#                    FUZZ_TARGETS="kubelet cri" narrows it; new crashes land in
#                    build/fuzz/artifacts/<name>/ (keep them in tests/fuzz/crashes/<name>/)
#   make test        replays every regression input and seed, then FUZZ_TEST_RUNS
#                    inputs per target with a fixed seed (tests/fuzz/run.sh)
#
# Every library source is built again with clang, instrumented for libFuzzer's
# coverage and under ASan + UBSan (a UBSan report aborts: it is a crash too).
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 60
FUZZ_TARGETS  ?=
FUZZ_SRCS     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS     := $(patsubst tests/fuzz/%.c,$(OUT)/fuzz/%,$(FUZZ_SRCS))
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   := $(filter-out -O2,$(CFLAGS)) -O1 $(FUZZ_SAN)
# the agent's library, lib/ and the collector's parts (not its main), as the unit tests link
FUZZ_LIB_OBJS := $(patsubst %.c,$(OUT)/fuzz/obj/%.o,$(LIB_SRCS) $(COMMON_SRCS) \
		 $(filter-out $(COLL_MAIN),$(COLL_SRCS))) \
	$(patsubst $(OUT)/gen/%.c,$(OUT)/fuzz/obj/gen/%.o,$(GEN_SRCS))
# libFuzzer and the sanitizer runtimes of clang 14
PKGS_FUZZ     := clang libclang-rt-14-dev

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	$(Q)tests/fuzz/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

ifneq ($(filter test test-build deps fuzz,$(MAKECMDGOALS)),)
$(FUZZ_LIB_OBJS) $(FUZZ_BINS): | deps
endif

$(OUT)/fuzz/obj/gen/%.o: $(OUT)/gen/%.c | $(GEN_HDRS)
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Wno-unused-parameter -MMD -MP \
		-c $< -o $@

# Skeletons and generated headers first, as for the plain build.
$(OUT)/fuzz/obj/%.o: %.c | $(SKELS) $(GEN_HDRS)
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(OUT)/fuzz/libpodsnoop.a: $(FUZZ_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(OUT)/fuzz/libpodsnoop.a | $(SKELS) $(GEN_HDRS)
	$(call msg,FUZZ,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz -MMD -MP $< \
		$(OUT)/fuzz/libpodsnoop.a $(COLLECTOR_LDLIBS) $(LDLIBS) -o $@

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_BINS:=.d)
