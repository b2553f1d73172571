# etcd-recovery build. Non-recursive; sources are found by convention so that adding a
# file needs no edit here:
#   common/*.c (+ generated protobuf-c code)   -> libcommon.a
#   init/*.c  except main.c                      -> libinit.a,  init/main.c  -> reset-member
#   agent/*.c except main.c                      -> libagent.a, agent/main.c -> etcd-agent
#   tests/unit/test_*.c, tests/integration/test_*.c -> one cmocka binary each
#   tests/fuzz/fuzz_*.c                          -> one libFuzzer binary each (make fuzz)
# `make asan` builds the same tree into build/asan with ASan+UBSan.

SHELL      := /bin/bash
ifeq ($(MAKELEVEL),0)
MAKEFLAGS  += --jobs=$(shell nproc 2>/dev/null || echo 2)
# Several goals (`make deps static`, `make demo test`): one after another, never two builds into
# one tree at once; each goal's own build (its sub-make) still runs in parallel.
ifneq ($(words $(MAKECMDGOALS)),1)
.NOTPARALLEL:
endif
endif
BUILD      ?= build
V          ?= 0
Q          := $(if $(filter 1,$(V)),,@)
VERSION    := $(shell git describe --always --dirty 2>/dev/null || echo 0.0.0)

PKGS       := openssl libnghttp2 libcjson liburing libprotobuf-c libzstd
# libcurl: headers only; init/restore.c dlopens it for a --restore-from URL (not linked: its
# ~25 libraries would cost every reset-member start). `make static` bundles it explicitly.
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) libcurl 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC         ?= gcc
WARN       := -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wmissing-prototypes -Wcast-qual
OPT        ?= -O2 -g
CFLAGS_ALL := -std=c17 -D_GNU_SOURCE $(OPT) $(WARN) -iquote common -I$(BUILD)/gen $(PKG_CFLAGS) \
              -DETCD_RECOVERY_VERSION='"$(VERSION)"' $(EXTRA_CFLAGS)
LDFLAGS_ALL:= $(EXTRA_LDFLAGS)
LIBS       := $(PKG_LIBS) -lhttp_parser -lpthread -lm
# reset-member runs at every pod start: OpenSSL, nghttp2 and protobuf-c from their static
# archives spare the loader libcrypto's ~4,000 symbol relocations (it calls itself through the
# PLT) and ~50 page faults each start (-3.3 M instructions). Debian has no static libcjson.
RM_STATIC  := -lssl -lcrypto -lnghttp2 -lprotobuf-c
RM_LIBS    := -Wl,-Bstatic $(RM_STATIC) -Wl,-Bdynamic $(filter-out $(RM_STATIC),$(LIBS))
# etcd-agent links the libraries that Debian ships as archives statically: only the code it
# uses ends up in its image (no relocation of their symbol tables at start), which keeps its
# idle RSS under 8 MiB. cJSON has no archive; libcurl is not used by the agent at all.
AGENT_STATIC := $(RM_STATIC) -luring -lzstd -lhttp_parser
AGENT_LIBS := -Wl,-Bstatic $(AGENT_STATIC) -Wl,-Bdynamic $(filter-out $(AGENT_STATIC),$(LIBS)) -ldl
TEST_LIBS  := -lcmocka

COMMON_SRC := $(sort $(wildcard common/*.c))
INIT_SRC   := $(sort $(filter-out init/main.c,$(wildcard init/*.c)))
AGENT_SRC  := $(sort $(filter-out agent/main.c,$(wildcard agent/*.c)))
PROTO      := $(sort $(wildcard common/*.proto))
PROTO_C    := $(PROTO:common/%.proto=$(BUILD)/gen/%.pb-c.c)
PROTO_H    := $(PROTO:common/%.proto=$(BUILD)/gen/%.pb-c.h)

COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o) $(PROTO_C:%.c=%.o)
INIT_OBJ   := $(INIT_SRC:%.c=$(BUILD)/%.o)
AGENT_OBJ  := $(AGENT_SRC:%.c=$(BUILD)/%.o)

UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
INTEG_SRC  := $(sort $(wildcard tests/integration/test_*.c))
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)
INTEG_BIN  := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/integration/%)
BENCH_SRC  := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BIN  := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/tests/bench/%)
TESTLIB_SRC:= $(sort $(wildcard tests/lib/*.c))
TESTLIB_OBJ:= $(TESTLIB_SRC:%.c=$(BUILD)/%.o)

# The e2e scripts' reset-member: act.c and main.c recompiled with the test hooks
# (RESET_MEMBER_CRASH_AT, see init/act.h), the rest shared with the release build. Only
# `make tests` builds it; `make`/`make all`/`make static` never define RESET_MEMBER_TEST_HOOKS.
HOOK_DIR   := $(BUILD)/e2e
HOOK_SRC   := init/act.c init/main.c
HOOK_OBJ   := $(HOOK_SRC:%.c=$(HOOK_DIR)/%.o)
HOOK_RM    := $(if $(wildcard init/main.c),$(HOOK_DIR)/reset-member)

PROGS      := $(BUILD)/reset-member $(BUILD)/etcd-agent
PROG_DEPS  := $(if $(wildcard init/main.c),$(BUILD)/reset-member) \
              $(if $(wildcard agent/main.c),$(BUILD)/etcd-agent)

.PHONY: all deps etcd35 fuzz-build test unit integration e2e asan valgrind fuzz fuzz-short lint format bench demo \
        static clean tests analyze
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BUILD)/libcommon.a $(PROG_DEPS)
tests: all $(UNIT_BIN) $(INTEG_BIN) $(BENCH_BIN) $(HOOK_RM)

# ---- dependencies (Debian 12, as root; idempotent) -------------------------------------------
DEB_PKGS := build-essential pkg-config libssl-dev libnghttp2-dev libcjson-dev liburing-dev \
            libcmocka-dev libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libzstd-dev libhttp-parser-dev \
            etcd-server etcd-client openssl curl wrk clang libclang-rt-14-dev valgrind procps zstd time \
            iproute2 python3 python3-yaml strace cppcheck clang-tidy prometheus nginx
DEB_PKGS += debootstrap debian-archive-keyring # tests/fresh (a fresh Debian 12 root), tests/etcd35.sh
DEB_PKGS += python3-azure-storage python3-botocore # Azure signer/Azurite harness and AWS creds checks
DEB_PKGS += age # the reference age/age-keygen: interop tests of common/age.c (issue 11)
DEB_PKGS += awscli # S3 tests: AWS CLI interop (python3-botocore above: tests/s3's SigV4 reference)
DEB_PKGS += $(if $(shell command -v node),,nodejs npm) # s3rver (tests/s3: npm ci from its lock file)
DEB_PKGS += bindfs fuse # tests/faults/hung_volume.sh: a FUSE volume whose server is stopped
# Targets that build on a fresh machine: `deps` first as a prerequisite, then the build in a
# sub-make, which parses this file again and so evaluates pkg-config only once the libraries
# exist. Never `target: deps all` (under --jobs both prerequisites run at once).
deps:
	$(Q)installed=" $$(dpkg-query -W -f='$${Package} $${Status}\n' $(DEB_PKGS) 2>/dev/null | \
	    awk '/ install ok installed$$/ {printf "%s ", $$1}')"; \
	missing=$$(for p in $(DEB_PKGS); do case "$$installed" in *" $$p "*) ;; *) echo $$p ;; esac; done); \
	if [ -n "$$missing" ]; then \
	    echo "deps: installing $$missing"; \
	    if [ "$$(id -u)" != 0 ]; then echo "deps: need root to install: $$missing" >&2; exit 1; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "deps: all present"; fi
	$(Q)[ -f tests/s3/node_modules/s3rver/bin/s3rver.js ] || { echo "deps: npm ci in tests/s3 (s3rver)"; \
	    (cd tests/s3 && npm ci --no-audit --no-fund --silent) || \
	    echo "deps: npm ci in tests/s3 failed; tests/s3/server.sh retries when it starts" >&2; }

# etcd 3.5 beside the system's 3.4 (never installed): build/etcd-3.5/bin, for the test matrix.
etcd35: deps
	$(Q)tests/etcd35.sh build/etcd-3.5 >/dev/null

# ---- compile ----------------------------------------------------------------------------------
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: common/%.proto
	@mkdir -p $(BUILD)/gen
	$(Q)protoc-c --proto_path=common --c_out=$(BUILD)/gen $(notdir $<)

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	@mkdir -p $(@D)
	$(Q)$(CC) -std=c17 $(OPT) $(PKG_CFLAGS) $(EXTRA_CFLAGS) -I$(BUILD)/gen -c $< -o $@

$(BUILD)/%.o: %.c $(PROTO_H)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC $<")
	$(Q)$(CC) $(CFLAGS_ALL) -iquote init -iquote agent -iquote tests/lib -MMD -MP -c $< -o $@

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
$(BUILD)/libinit.a: $(INIT_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^
$(BUILD)/libagent.a: $(AGENT_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/reset-member: $(BUILD)/init/main.o $(BUILD)/libinit.a $(BUILD)/libcommon.a
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS_ALL) $^ $(RM_LIBS) -o $@
$(HOOK_OBJ): $(HOOK_DIR)/%.o: %.c $(PROTO_H)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC $< (test hooks)")
	$(Q)$(CC) $(CFLAGS_ALL) -DRESET_MEMBER_TEST_HOOKS -iquote init -MMD -MP -c $< -o $@
$(HOOK_DIR)/reset-member: $(HOOK_OBJ) $(filter-out $(HOOK_SRC:%.c=$(BUILD)/%.o),$(INIT_OBJ)) \
                          $(BUILD)/libcommon.a
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS_ALL) $^ $(RM_LIBS) -o $@
$(BUILD)/etcd-agent: $(BUILD)/agent/main.o $(BUILD)/libagent.a $(BUILD)/libcommon.a
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS_ALL) $^ $(AGENT_LIBS) -o $@

# Per-test link flags: TEST_LDFLAGS_<name> for tests/unit/test_<name>.c.
TEST_LDFLAGS_proto := -Wl,--wrap=malloc,--wrap=calloc # allocation-failure injection
$(BUILD)/tests/unit/test_%: $(BUILD)/tests/unit/test_%.o $(TESTLIB_OBJ) $(BUILD)/libinit.a \
                            $(BUILD)/libagent.a $(BUILD)/libcommon.a
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS_ALL) $^ $(LIBS) $(TEST_LIBS) $(TEST_LDFLAGS_$*) -o $@
$(BUILD)/tests/integration/test_%: $(BUILD)/tests/integration/test_%.o $(TESTLIB_OBJ) \
                                   $(BUILD)/libinit.a $(BUILD)/libagent.a $(BUILD)/libcommon.a
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS_ALL) $^ $(LIBS) $(TEST_LIBS) -o $@

$(BUILD)/tests/bench/bench_%: $(BUILD)/tests/bench/bench_%.o $(TESTLIB_OBJ) \
                             $(BUILD)/libinit.a $(BUILD)/libagent.a $(BUILD)/libcommon.a
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(LDFLAGS_ALL) $^ $(LIBS) -o $@

# libFuzzer targets: the libraries rebuilt with clang and sanitizers into build/fuzz.
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/tests/fuzz/%)
FUZZ_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
fuzz-build: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang OPT='-O1 -g' \
	    EXTRA_CFLAGS='$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link' EXTRA_LDFLAGS='$(FUZZ_FLAGS)' \
	    build/fuzz/libcommon.a build/fuzz/libinit.a build/fuzz/libagent.a $(FUZZ_BIN)
build/fuzz/tests/fuzz/fuzz_%: build/fuzz/tests/fuzz/fuzz_%.o build/fuzz/libinit.a \
                              build/fuzz/libagent.a build/fuzz/libcommon.a
	$(Q)$(CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ $(LIBS) -o $@
fuzz: fuzz-build
	$(Q)tests/fuzz/run.sh --seconds $${FUZZ_SECONDS:-60}
fuzz-short: fuzz-build
	$(Q)tests/fuzz/run.sh --seconds $${FUZZ_SECONDS:-10}

-include $(shell find $(BUILD) -path '$(BUILD)/etcd-*' -prune -o -type f -name '*.d' -print 2>/dev/null)

# ---- tests ------------------------------------------------------------------------------------
# test: the whole suite (unit, integration, e2e against real etcd; then unit+integration under
# ASan+UBSan, unit under valgrind, short fuzz pass). Ends with "N passed, N failed".
test: deps
	$(Q)tests/etcd35.sh build/etcd-3.5 >/dev/null
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan OPT='-O1 -g -fno-omit-frame-pointer' \
	    EXTRA_CFLAGS='-fsanitize=address,undefined -fno-sanitize-recover=all' \
	    EXTRA_LDFLAGS='-fsanitize=address,undefined' tests
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)tests/run.sh --build build --asan-build build/asan --etcd "PATH build/etcd-3.5/bin"

# One suite each (against the etcd in ETCD_BIN_DIR, else PATH's).
unit integration e2e valgrind: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)tests/run.sh --build $(BUILD) --only $@

asan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan OPT='-O1 -g -fno-omit-frame-pointer' \
	    EXTRA_CFLAGS='-fsanitize=address,undefined -fno-sanitize-recover=all' \
	    EXTRA_LDFLAGS='-fsanitize=address,undefined' tests

# bench-only packages (not the tests'): tests/bench/backup.sh's Azure comparison
BENCH_DEB_PKGS := azure-cli
bench: deps
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS='$(BENCH_DEB_PKGS)'
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)tests/bench/run.sh --build $(BUILD)

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/demo.sh --build $(BUILD)

# ---- static: a self-contained bundle for distroless images ------------------------------------
# Debian has no static libcjson and no static deps for libcurl, so a fully static link is not
# possible; instead the programs are relinked (hardened) with their ELF interpreter and RPATH
# pointing into BUNDLE_DIR, and that dir receives the dynamic loader and every shared library
# they need, plus libcurl.so.4 and its libraries (reset-member dlopens it, via the RPATH, for a
# --restore-from URL). $(STATIC_ROOT) mirrors the image's filesystem (usr/bin/*,
# $(BUNDLE_DIR)/*) and runs in an image without libc (tests/e2e/packaging.sh proves it in an
# empty chroot).
BUNDLE_DIR   := /usr/lib/etcd-recovery
STATIC_DIR   := $(BUILD)/static
STATIC_ROOT  := $(STATIC_DIR)/rootfs
# Recursive (=): expanded when the recipe runs, i.e. after `make deps static` installed binutils.
HOST_LOADER   = $(shell readelf -l /bin/true 2>/dev/null | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
STATIC_LOADER = $(notdir $(HOST_LOADER))
STATIC_CFLAGS:= -D_FORTIFY_SOURCE=2 -fstack-protector-strong
STATIC_LDFLAGS = -Wl,--dynamic-linker=$(BUNDLE_DIR)/$(STATIC_LOADER) -Wl,-rpath,$(BUNDLE_DIR) \
                 -Wl,--disable-new-dtags -Wl,-z,relro,-z,now
static: deps
	$(Q)test -n "$(STATIC_LOADER)" || { echo "static: cannot find the dynamic loader" >&2; exit 1; }
	$(Q)$(MAKE) --no-print-directory BUILD=$(STATIC_DIR)/obj OPT='-O2 -g' \
	    EXTRA_CFLAGS='$(STATIC_CFLAGS)' EXTRA_LDFLAGS='$(STATIC_LDFLAGS)' all
	$(Q)set -eo pipefail; rm -rf $(STATIC_ROOT); mkdir -p $(STATIC_ROOT)/usr/bin $(STATIC_ROOT)$(BUNDLE_DIR); \
	progs=$$(ls $(STATIC_DIR)/obj/reset-member $(STATIC_DIR)/obj/etcd-agent 2>/dev/null || true); \
	if [ -z "$$progs" ]; then echo "static: no program to bundle yet" >&2; exit 1; fi; \
	curl=$$($(CC) -print-file-name=libcurl.so.4); \
	case $$curl in /*) ;; *) echo "static: cannot find libcurl.so.4" >&2; exit 1 ;; esac; \
	for p in $$progs $$curl; do \
	    case $$p in */libcurl.so.4) echo "$$p" ;; \
	    *) objcopy --strip-unneeded $$p $(STATIC_ROOT)/usr/bin/$$(basename $$p) ;; esac; \
	    ldd $$p > $(STATIC_DIR)/ldd.out; \
	    if grep 'not found' $(STATIC_DIR)/ldd.out >&2; then echo "static: $$p: missing library" >&2; exit 1; fi; \
	    awk '$$2 == "=>" && $$3 ~ /^\// {print $$3}' $(STATIC_DIR)/ldd.out; \
	done | sort -u > $(STATIC_DIR)/libs; \
	echo "$(HOST_LOADER)" >> $(STATIC_DIR)/libs; \
	echo "$$($(CC) -print-file-name=libgcc_s.so.1)" >> $(STATIC_DIR)/libs; \
	while read -r l; do cp -L "$$l" $(STATIC_ROOT)$(BUNDLE_DIR)/; done < $(STATIC_DIR)/libs; \
	chmod 0755 $(STATIC_ROOT)/usr/bin/* $(STATIC_ROOT)$(BUNDLE_DIR)/$(STATIC_LOADER); \
	chmod 0644 $$(ls $(STATIC_ROOT)$(BUNDLE_DIR)/* | grep -v '/$(STATIC_LOADER)$$'); \
	(cd $(STATIC_ROOT) && find . -type f | sort) > $(STATIC_DIR)/files; \
	echo "static: $(STATIC_ROOT) ($$(du -sk $(STATIC_ROOT) | cut -f1) KiB):"; \
	sed 's/^/  /' $(STATIC_DIR)/files

format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h')

lint:
	$(Q)! grep -nE '\b(sprintf|strcpy|strcat|strtok|atoi|atol|gets)\s*\(' \
	    $$(git ls-files '*.c' '*.h') || { echo "lint: banned function" >&2; exit 1; }
	$(Q)clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')
	$(Q)/usr/bin/python3 tests/lint/include_graph.py

# analyze: clang-tidy (config: .clang-tidy) and cppcheck over the program sources with the
# compile flags; both must be clean (findings fixed, or suppressed inline with a reason).
ANALYZE_SRC   := $(COMMON_SRC) $(INIT_SRC) $(AGENT_SRC) $(wildcard init/main.c agent/main.c)
ANALYZE_FLAGS := -std=c17 -D_GNU_SOURCE -DETCD_RECOVERY_VERSION='"analyze"' -iquote common \
                 -iquote init -iquote agent -I$(BUILD)/gen $(PKG_CFLAGS)
# clang-tidy runs one file per process, ANALYZE_JOBS at a time (each file's findings printed together).
ANALYZE_JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
analyze: $(PROTO_H)
	$(Q)printf '%s\n' $(ANALYZE_SRC) | xargs -P $(ANALYZE_JOBS) -I{} bash -c 'out=$$(clang-tidy --quiet "$$1" \
	    -- "$${@:2}" 2>/dev/null); rc=$$?; [ -z "$$out" ] || grep -v "^[0-9]* warnings\? generated" <<<"$$out"; exit $$((rc != 0))' \
	    _ {} $(ANALYZE_FLAGS) || { echo "analyze: clang-tidy findings" >&2; exit 1; }
	$(Q)cppcheck -j $(ANALYZE_JOBS) --quiet --enable=warning,performance,portability --error-exitcode=1 --inline-suppr \
	    --std=c11 -D_GNU_SOURCE -D__GNUC__ -DETCD_RECOVERY_VERSION='"analyze"' -DPROTOBUF_C_VERSION_NUMBER=1004001 \
	    -DPROTOBUF_C_MIN_COMPILER_VERSION=1000000 -I common -I init -I agent \
	    -I $(BUILD)/gen --suppress=missingIncludeSystem $(ANALYZE_SRC)
	@echo "analyze: clean"

clean:
	rm -rf build reset-member etcd-agent
