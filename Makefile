# podsnoop: one build chain
#   bpf/<t>.bpf.c -> build/bpf/<t>.bpf.o -> build/<t>.skel.h -> build/agent/**/*.o -> build/podsnoop
#   proto/**/*.proto -> build/gen/**/*.pb-c.[ch] (protoc-c) -> libpodsnoop-common.a
#   lib/*.c -> libpodsnoop-common.a (shared);  agent/**/*.c, cgroup/*.c -> libpodsnoop.a
#   collector/*.c + libpodsnoop-common.a -> build/podsnoop-collector;  bench/*.c -> build/bench/*
# Every C file builds to build/<its path>.o by one pattern rule; project headers are
# included by their path from the repository root ("agent/tracers/tracer.h", "lib/jsonw.h").
# with -MMD -MP header dependencies on both sides. `make V=1` shows commands.
#
#   make            build build/podsnoop, build/podsnoop-collector and the bench helpers
#   make run        build and run the agent here, printing events (RUN_ARGS=...)
#   make test       install missing Debian packages, build what the tests run, run every test
#   make unit       the unit tests alone; T=filter: tests/unit/test_filter.c only,
#                   C='pattern': only its cases matching it (* and ? wildcards)
#   make test-build build what the tests run, run nothing (then pytest one file: docs/development.md)
#   make deps       only install missing Debian packages
#   make image      build/podsnoop-image.tar: OCI image archive of the agent (no engine needed)
#   make chart      build/helm-render: renders helm/podsnoop offline (helm's template engine)
#   make bench      install what the benchmarks need, run them all (bench/run.py; BENCH_ARGS=...)
#   make demo       as root: ClickHouse, the collector and the agent on this machine, a
#                   little workload, the per-pod block I/O latency table (demo/demo.py)
#   make install    the binaries and the queries into $(DESTDIR)$(PREFIX) (/usr/local)
#   make fuzz       build the libFuzzer targets, fuzz each FUZZ_SECONDS (tests/fuzz/fuzz.mk)

.DELETE_ON_ERROR:
# keep the generated BPF objects and skeletons: they are inputs of later builds
.SECONDARY:
.SUFFIXES:
.DEFAULT_GOAL := all

OUT        := build
ARCH       := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
CLANG      ?= clang
LLVM_STRIP ?= llvm-strip
BPFTOOL    ?= bpftool
CC         := gcc
RUN_ARGS   ?= --output text

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# Debian packages: to build, and in addition to test.
PKGS_BUILD := make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev \
	libcurl4-openssl-dev libcjson-dev libprotobuf-c-dev protobuf-c-compiler libmicrohttpd-dev \
	libgnutls28-dev
PKGS_TEST  := libcmocka-dev python3 python3-pytest python3-protobuf python3-grpcio protobuf-compiler \
	containerd runc busybox-static libbpf-tools util-linux e2fsprogs qemu-system-x86 xz-utils \
	mount coreutils xfsprogs btrfs-progs openssl clickhouse-server clickhouse-client \
	prometheus yamllint golang-go golang-github-masterminds-sprig-dev \
	golang-k8s-sigs-yaml-dev golang-github-xeipuuv-gojsonschema-dev nodejs
# ... and for `make demo`
PKGS_DEMO  := python3 clickhouse-server
# ... and from npm, into $(OTLP_NODE): the OpenTelemetry project's own OTLP definitions
# (tests/otlp/package.json, versions pinned by its package-lock.json)
OTLP_NODE  := $(OUT)/otlp-node
# ... and to run the benchmarks (bench/run.py): the peers compared against, the CRI testbed
PKGS_BENCH := python3 libbpf-tools util-linux containerd runc busybox-static python3-grpcio \
	postgresql make gcc \
	python3-protobuf protobuf-compiler
BENCH_ARGS ?=

# vmlinux.h: the checked-in one, or one generated from VMLINUX_BTF=/path.
ifneq ($(VMLINUX_BTF),)
VMLINUX_DIR := $(OUT)/vmlinux
VMLINUX_H   := $(VMLINUX_DIR)/vmlinux.h
else
VMLINUX_DIR := bpf/vmlinux/$(ARCH)
VMLINUX_H   :=
endif

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I$(VMLINUX_DIR) -Ibpf
# -Ulinux: protoc-c output has fields named "linux", a predefined macro in GNU C.
# -iquote .: "dir/file.h" from the repository root; <bpf/libbpf.h> never looks there.
CFLAGS     := -g -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -std=gnu11 -Ulinux \
	-iquote . -I$(OUT) -I$(OUT)/gen
LDLIBS     := -lbpf -lelf -lz -lmicrohttpd -lcurl -lcjson -lprotobuf-c -lpthread -lm
# the collector needs none of libbpf, libelf; libcurl and cJSON for --clickhouse
COLLECTOR_LDLIBS := -lmicrohttpd -lgnutls -lprotobuf-c -lcurl -lcjson -lz -lpthread -lm
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

BPF_SRCS   := $(wildcard bpf/*.bpf.c)
BPF_OBJS   := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS      := $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))
COLL_MAIN  := collector/collector.c
# lib/: what the agent and the collector share; the agent's own code (cgroup/ with it)
COMMON_SRCS := $(wildcard lib/*.c)
LIB_SRCS   := $(filter-out agent/main.c,$(wildcard agent/*.c agent/*/*.c)) $(wildcard cgroup/*.c)
COLL_SRCS  := $(wildcard collector/*.c)
# C generated from proto/ at build time (protoc-c): the CRI subset, our wire schema, the
# opentelemetry-proto subset (OTLP)
PROTOS     := proto/cri/api.proto $(wildcard proto/podsnoop/v1/*.proto) \
	$(wildcard proto/opentelemetry/proto/*/v1/*.proto proto/opentelemetry/proto/collector/*/v1/*.proto)
GEN_SRCS   := $(patsubst proto/%.proto,$(OUT)/gen/%.pb-c.c,$(PROTOS))
GEN_HDRS   := $(GEN_SRCS:.c=.h)
GEN_OBJS   := $(GEN_SRCS:.c=.o)
COMMON_OBJS := $(patsubst %.c,$(OUT)/%.o,$(COMMON_SRCS)) $(GEN_OBJS)
LIB_OBJS   := $(patsubst %.c,$(OUT)/%.o,$(LIB_SRCS))
MAIN_OBJ   := $(OUT)/agent/main.o
# the shipped queries, built into the collector (`podsnoop-collector query`) and installed
QUERY_SQL  := $(sort $(wildcard collector/queries/*.sql))
COLL_OBJS  := $(patsubst %.c,$(OUT)/%.o,$(COLL_SRCS)) $(OUT)/gen/queries.o
# the unit tests link the agent, lib/ and the collector's parts (not its main), as archives:
# a test takes only the objects it calls
COLL_LIB_OBJS := $(filter-out $(OUT)/$(COLL_MAIN:.c=.o),$(COLL_OBJS))
TEST_OBJS  := $(OUT)/libpodsnoop.a $(OUT)/libpodsnoop-collector.a $(OUT)/libpodsnoop-common.a
BENCH_BINS := $(patsubst bench/%.c,$(OUT)/bench/%,$(filter-out %.bpf.c,$(wildcard bench/*.c))) \
	$(patsubst bench/%.bpf.c,$(OUT)/bench/%.bpf.o,$(wildcard bench/*.bpf.c))
ASAN_OBJS  := $(patsubst %.c,$(OUT)/asan/%.o,$(LIB_SRCS) $(COMMON_SRCS) \
	$(filter-out $(COLL_MAIN),$(COLL_SRCS))) $(GEN_OBJS) $(OUT)/gen/queries.o
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRCS))
ASAN_BINS  := $(patsubst tests/unit/%.c,$(OUT)/asan/tests/%,$(UNIT_SRCS))
HELPERS    := $(patsubst tests/helpers/%.c,$(OUT)/tests/helpers/%,$(wildcard tests/helpers/*.c))

.PHONY: all run test test-build unit deps clean image image-rootfs chart bench install demo
all: $(OUT)/podsnoop $(OUT)/podsnoop-collector $(BENCH_BINS)

deps:
	@tests/deps.sh $(PKGS_BUILD) $(if $(filter test test-build unit,$(MAKECMDGOALS)),$(PKGS_TEST)) \
		$(if $(filter test test-build fuzz,$(MAKECMDGOALS)),$(PKGS_FUZZ)) \
		$(if $(filter bench,$(MAKECMDGOALS)),$(PKGS_BENCH)) \
		$(if $(filter demo,$(MAKECMDGOALS)),$(PKGS_DEMO))

# Installing packages first must not race the build: order it explicitly.
ifneq ($(filter run test test-build unit deps bench demo,$(MAKECMDGOALS)),)
$(BPF_OBJS) $(LIB_OBJS) $(COMMON_OBJS) $(MAIN_OBJ) $(ASAN_OBJS) $(VMLINUX_H) $(GEN_SRCS) $(COLL_OBJS): | deps
$(OUT)/helm-render $(OUT)/podsnoop-image.tar: | deps
endif

$(OUT) $(OUT)/bpf $(OUT)/tests $(OUT)/vmlinux $(OUT)/asan/tests $(OUT)/bench:
	$(Q)mkdir -p $@

$(OUT)/vmlinux/vmlinux.h: $(VMLINUX_BTF) | $(OUT)/vmlinux
	$(call msg,BTF,$@)
	$(Q)$(BPFTOOL) btf dump file $< format c > $@

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(VMLINUX_H) | $(OUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@
	$(Q)$(LLVM_STRIP) -g $@ # DWARF is not needed at run time; BTF stays

$(OUT)/%.skel.h: $(OUT)/bpf/%.bpf.o
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(OUT)/gen/%.pb-c.c $(OUT)/gen/%.pb-c.h &: proto/%.proto
	$(call msg,PROTOC,$@)
	$(Q)mkdir -p $(OUT)/gen
	$(Q)protoc-c -Iproto --c_out=$(OUT)/gen $<

$(OUT)/gen/queries.c: $(QUERY_SQL) collector/queries/embed.sh
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D) && sh collector/queries/embed.sh $(QUERY_SQL) > $@

$(OUT)/gen/queries.o: $(OUT)/gen/queries.c collector/query.h
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# (after every header: one .proto may import another)
$(OUT)/gen/%.pb-c.o: $(OUT)/gen/%.pb-c.c $(OUT)/gen/%.pb-c.h | $(GEN_HDRS)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -Wno-unused-parameter -MMD -MP -c $< -o $@

# Every C file of agent/, lib/, cgroup/ and collector/. Skeletons and generated headers
# come first so the first build (no .d files yet) finds them.
$(OUT)/%.o: %.c | $(SKELS) $(GEN_HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D) && $(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(OUT)/libpodsnoop.a: $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/libpodsnoop-common.a: $(COMMON_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/libpodsnoop-collector.a: $(COLL_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(OUT)/asan/libpodsnoop-test.a: $(ASAN_OBJS)
	$(call msg,AR,$@)
	$(Q)mkdir -p $(@D) && rm -f $@ && ar rcs $@ $^

$(OUT)/podsnoop: $(MAIN_OBJ) $(OUT)/libpodsnoop.a $(OUT)/libpodsnoop-common.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

# The reference collector shares the NDJSON writer, the protobuf conversions and
# the batch codec and the metrics registry (its /metrics) with the agent through
# lib/, and nothing else.
$(OUT)/podsnoop-collector: $(COLL_OBJS) $(OUT)/libpodsnoop-common.a
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(COLLECTOR_LDLIBS) -o $@

# Workloads and load generators of the benchmarks; tp_floor loads a BPF object.
$(OUT)/bench/%: bench/%.c | $(OUT)/bench
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -MMD -MP $< -o $@ $(if $(filter tp_floor,$*),-lbpf -lelf -lz)

$(OUT)/bench/%.bpf.o: bench/%.bpf.c $(VMLINUX_H) | $(OUT)/bench
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@

# Unit tests, plain and under AddressSanitizer + UBSan.
$(OUT)/asan/%.o: %.c | $(SKELS) $(GEN_HDRS)
	$(call msg,CC-SAN,$@)
	$(Q)mkdir -p $(@D) && $(CC) $(CFLAGS) $(SAN_FLAGS) -MMD -MP -c $< -o $@

$(OUT)/tests/%: tests/unit/%.c tests/unit/unit.h $(TEST_OBJS) | $(OUT)/tests
	$(call msg,TEST,$@)
	$(Q)$(CC) $(CFLAGS) -Itests/unit -MMD -MP $< $(TEST_OBJS) $(LDLIBS) -lcmocka -o $@

$(OUT)/asan/tests/%: tests/unit/%.c tests/unit/unit.h $(OUT)/asan/libpodsnoop-test.a \
		| $(OUT)/asan/tests
	$(call msg,TEST-SAN,$@)
	$(Q)$(CC) $(CFLAGS) $(SAN_FLAGS) -Itests/unit -MMD -MP $< $(OUT)/asan/libpodsnoop-test.a \
		$(LDLIBS) -lcmocka -o $@

# Small programs the integration tests run (workloads with exact properties).
$(OUT)/tests/helpers/%: tests/helpers/%.c
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D) && $(CC) $(CFLAGS) -MMD -MP $< -pthread -o $@

# What the tests run, and nothing else (no bench workloads): the agent, the collector, the
# unit tests plain and sanitized, the integration tests' helpers, the image, the chart renderer.
TEST_BUILD := $(OUT)/podsnoop $(OUT)/podsnoop-collector $(UNIT_BINS) $(ASAN_BINS) $(HELPERS) \
	$(OUT)/podsnoop-image.tar $(OUT)/helm-render $(OTLP_NODE)/node_modules/.installed
UNIT_RUN   := $(if $(T),$(filter %/test_$(T),$(UNIT_BINS) $(ASAN_BINS)),$(UNIT_BINS) $(ASAN_BINS))

unit: $(UNIT_RUN)
	$(if $(T),$(if $(UNIT_RUN),,$(error make unit T=$(T): there is no tests/unit/test_$(T).c)))
	@T='$(T)' UNIT_CASE='$(C)' tests/run.sh --unit

run: $(OUT)/podsnoop
	$(OUT)/podsnoop $(RUN_ARGS)

test-build: $(TEST_BUILD) fuzz-build

test: test-build
	@tests/run.sh

clean:
	rm -rf $(OUT)

# The central path on this machine (as root): ClickHouse on loopback, the collector, the
# agent, a little block I/O, the per-pod latency table; everything stopped after (demo/demo.py).
demo: $(OUT)/podsnoop $(OUT)/podsnoop-collector
	$(Q)/usr/bin/python3 demo/demo.py $(DEMO_ARGS)

# The agent, the collector and the shipped queries (clickhouse-client runs them as they are).
PREFIX  ?= /usr/local
install: $(OUT)/podsnoop $(OUT)/podsnoop-collector
	install -D -m 0755 $(OUT)/podsnoop $(DESTDIR)$(PREFIX)/bin/podsnoop
	install -D -m 0755 $(OUT)/podsnoop-collector $(DESTDIR)$(PREFIX)/bin/podsnoop-collector
	install -d $(DESTDIR)$(PREFIX)/share/podsnoop/queries
	install -m 0644 $(QUERY_SQL) $(DESTDIR)$(PREFIX)/share/podsnoop/queries/

# Benchmarks (bench/README.md): every scenario, results in build/bench/results.json,
# the tables printed and written into docs/performance.md.
bench: all $(OTLP_NODE)/node_modules/.installed
	$(Q)/usr/bin/python3 bench/run.py $(BENCH_ARGS)

# The container image: the agent, its shared libraries and the loader (image/mkimage.py).
VERSION := $(shell sed -n 's/^\#define PODSNOOP_VERSION "\(.*\)"/\1/p' lib/version.h)
IMAGE   ?= localhost/podsnoop:$(VERSION)

image: $(OUT)/podsnoop-image.tar
$(OUT)/podsnoop-image.tar: $(OUT)/podsnoop image/mkimage.py
	$(call msg,IMAGE,$@ $(IMAGE))
	$(Q)/usr/bin/python3 image/mkimage.py --binary $< --ref $(IMAGE) --version $(VERSION) --out $@

# the same files as a directory, for the Dockerfile's build stage
image-rootfs: $(OUT)/podsnoop
	$(Q)/usr/bin/python3 image/mkimage.py --binary $< --rootfs $(OUT)/image-rootfs

# npm packages of the tests, as the lock file pins them; no install scripts run
$(OTLP_NODE)/node_modules/.installed: tests/otlp/package.json tests/otlp/package-lock.json | deps
	$(call msg,NPM,$(OTLP_NODE))
	$(Q)command -v npm >/dev/null || tests/deps.sh npm # a nodejs build without its npm
	$(Q)mkdir -p $(OTLP_NODE) && cp $^ $(OTLP_NODE)/
	$(Q)cd $(OTLP_NODE) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
	$(Q)touch $@

# helm/render: helm's template engine rebuilt from Debian's Go packages (GOPATH mode, offline)
GO_ENV := GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE=$(abspath $(OUT))/go-cache
chart: $(OUT)/helm-render
$(OUT)/helm-render: $(wildcard helm/render/*.go) | $(OUT)
	$(call msg,GO,$@)
	$(Q)$(GO_ENV) go build -o $@ ./helm/render

include tests/kernel-matrix/kernel-matrix.mk
include tests/fuzz/fuzz.mk

-include $(BPF_OBJS:.o=.d) $(LIB_OBJS:.o=.d) $(COMMON_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(ASAN_OBJS:.o=.d) \
	$(UNIT_BINS:=.d) $(ASAN_BINS:=.d) $(HELPERS:=.d) $(COLL_OBJS:.o=.d) \
	$(patsubst %.o,%.d,$(patsubst %,%.d,$(filter-out %.o,$(BENCH_BINS))) $(filter %.o,$(BENCH_BINS)))
