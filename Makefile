# switchboard - plain Makefile with pkg-config.
#
#   make run     install missing packages, build, start the gateway
#   make test    install, build, run every test (unit, integration, sanitizers, fuzz)
#   make bench   side-by-side benchmark: direct vs nginx vs switchboard
#   make soak    switchboard under steady load for SOAK_DURATION (600 s): RSS start/end
#
# Variants build into their own folder: BUILD=build-asan SAN=1 CC=clang.

CC      ?= cc
BUILD   ?= build
PKGS    := libuv libcurl sqlite3 yaml-0.1 libcrypto libargon2
TPKGS   := cmocka jansson
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
OPT     ?= -O2 -g
CFLAGS  := $(CSTD) $(WARN) $(OPT) -Isrc $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -pthread
# libcurl is compiled against but not linked: src/upstream/curl_load.c loads it
# at its first use (its 28 libraries cost every start 15 ms and 4.5 MB otherwise).
LDLIBS  := $(shell pkg-config --libs $(filter-out libcurl,$(PKGS)) 2>/dev/null) -lhttp_parser -lm \
           -ldl -pthread
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
# ThreadSanitizer variant (make test builds it as BUILD=build-tsan CC=clang TSAN=1):
# the control plane's pool threads, poller and usage writer share state with
# the worker loops. Not combinable with SAN=1 (ASan and TSan exclude each other).
ifeq ($(TSAN),1)
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif
ifeq ($(FUZZ),1)
CFLAGS  += -fsanitize=fuzzer-no-link
endif
VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CFLAGS  += -DSB_VERSION='"$(VERSION)"'

LIB_SRC  := $(filter-out %_test.c src/main.c,$(wildcard src/*/*.c))
TEST_SRC := $(wildcard src/*/*_test.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:src/%.c=$(BUILD)/test/%)
BIN      := $(BUILD)/switchboard
# The web console (web/, Vue + Vite) is built once into web/dist (a stamp shared
# by every variant) and embedded as a generated C table (src/front/ui.h).
WEB_SRC  := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.js \
            web/package.json web/package-lock.json
UI_GEN   := $(BUILD)/gen/ui_assets.c
UI_OBJ   := $(BUILD)/gen/ui_assets.o

.PHONY: fuzzers all run test unit integration asan fuzz bench check format clean bootstrap tools soak

all: $(BIN) tools

bootstrap:
	@scripts/bootstrap.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

web/dist/.built: $(WEB_SRC) scripts/build-web.sh
	@scripts/build-web.sh

$(UI_GEN): web/dist/.built scripts/embed-ui.sh
	@mkdir -p $(dir $@)
	@scripts/embed-ui.sh web/dist $@

$(UI_OBJ): $(UI_GEN) src/front/ui.h
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libsb.a: $(LIB_OBJ) $(UI_OBJ)
	rm -f $@ && ar rcsP $@ $^

$(BIN): $(BUILD)/src/main.o $(BUILD)/libsb.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test/%: src/%.c $(BUILD)/libsb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(shell pkg-config --cflags $(TPKGS)) $(LDFLAGS) -o $@ $< \
	    $(BUILD)/libsb.a $(LDLIBS) $(shell pkg-config --libs $(TPKGS))

# Helper programs used by tests and the benchmark (mock upstreams, load tools).
TOOL_SRC := $(wildcard bench/*.c tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:%.c=$(BUILD)/%)
tools: $(TOOL_BIN)
$(BUILD)/bench/% $(BUILD)/tests/tools/%: CFLAGS += -Wno-error
$(BUILD)/bench/%: bench/%.c $(BUILD)/libsb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(LDFLAGS) -o $@ $< $(BUILD)/libsb.a $(LDLIBS)
$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libsb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(LDFLAGS) -o $@ $< $(BUILD)/libsb.a $(LDLIBS)

# libFuzzer targets: make BUILD=build-fuzz CC=clang SAN=1 FUZZ=1 fuzzers
FUZZ_SRC := $(wildcard fuzz/*_fuzz.c)
FUZZERS  := $(FUZZ_SRC:%.c=$(BUILD)/%)
fuzzers: $(FUZZERS)
$(BUILD)/fuzz/%: fuzz/%.c $(BUILD)/libsb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -MF $@.d $(shell pkg-config --cflags jansson) -fsanitize=fuzzer -o $@ $< \
	    $(BUILD)/libsb.a $(LDLIBS) $(shell pkg-config --libs jansson)

run: bootstrap
	@$(MAKE) --no-print-directory $(BIN)
	@scripts/run.sh

test: bootstrap
	@scripts/test.sh

unit: $(TESTS)
	@scripts/run-unit.sh $(BUILD)

check:
	@scripts/checksrc.sh

format:
	clang-format -i $(wildcard src/*/*.[ch])

bench: bootstrap
	@$(MAKE) --no-print-directory OPT="-O2 -g -DNDEBUG" all
	@bench/run.sh

soak: bootstrap
	@$(MAKE) --no-print-directory OPT="-O2 -g -DNDEBUG" all
	@bench/soak.sh

clean:
	rm -rf build build-*

-include $(LIB_OBJ:.o=.d) $(BUILD)/src/main.d
# Test, tool and fuzz programs compile and link in one step; their .d files
# make them follow the headers they include (test-only ones too).
-include $(TESTS:=.d) $(TOOL_BIN:=.d) $(FUZZERS:=.d)
