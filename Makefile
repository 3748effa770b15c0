# jabshard build: one plain Makefile, libraries found with pkg-config.
#
#   make                         build the library, programs, unit tests and benchmarks
#   make check                   unit tests, then each fuzz target briefly on its corpus
#   make check SAN=address,undefined   the same suite under ASan/UBSan (own build tree)
#   make check SAN=thread        the same suite under ThreadSanitizer
#   make fuzz                    libFuzzer targets (clang) in build/fuzz/
#   make fuzz-long               the fuzzing campaign: each target FUZZ_LONG_SECONDS (1800), new
#                                coverage merged into fuzz/corpus/ (docs/security.md)
#   make bench                   benchmarks
#   make run                     start the whole system on its embedded default
#   make install PREFIX=/usr/local
#
# WERROR=1 turns warnings into errors (CI sets it).

SAN    ?=
WERROR ?=
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 10
FUZZ_LONG_SECONDS ?= 1800
FUZZ_JOBS ?= 2

comma := ,
VARIANT := $(if $(SAN),san-$(subst $(comma),-,$(SAN)),default)
BUILD   := build/$(VARIANT)

CC      ?= cc
PKGS    := expat openssl libidn ck sqlite3 libpq libmariadb
# pkg-config is only asked once the dependency step has run (see $(DEPS_OK)).
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu17 -D_GNU_SOURCE -pthread $(WARN) $(if $(WERROR),-Werror) $(CFLAGS) \
             $(SAN_CFLAGS) -I. $(PKG_CFLAGS) -MMD -MP
ALL_LDLIBS = $(PKG_LIBS) -ldl -lpthread -lm

ifneq ($(SAN),)
SAN_CFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
# ck's atomics are inline assembly that ThreadSanitizer cannot see: use the compiler builtins.
ifneq ($(findstring thread,$(SAN)),)
SAN_CFLAGS += -DCK_USE_CC_BUILTINS=1
endif
endif

# Everything in the architecture folders is library code except each program's main.c.
MODULES  := core shard smproto sm xdbsql
LIB_SRCS := $(filter-out %/main.c,$(foreach m,$(MODULES),$(wildcard $(m)/*.c $(m)/*/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libjabshard.a

# Programs: name = folder holding its main.c.
PROGRAM_DIRS := $(patsubst %/main.c,%,$(wildcard shard/main.c sm/main.c sm/ctl/main.c))
program_name  = $(if $(filter shard,$(1)),jabshard-c2s,$(if $(filter sm,$(1)),jabshard-sm,jabshardctl))
PROGRAMS     := $(foreach d,$(PROGRAM_DIRS),$(BUILD)/bin/$(call program_name,$(d)))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
STORAGE_SRCS := $(wildcard tests/storage/test_*.c)
STORAGE_BINS := $(STORAGE_SRCS:tests/storage/%.c=$(BUILD)/tests/storage/%)
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)
# The load generator (tests/bench/loadgen/): used by the fault tests and make bench-peers.
LOADGEN_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/bench/loadgen/*.c))
LOADGEN      := $(BUILD)/bench/loadgen

FUZZ_SRCS  := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)
FUZZ_CC    ?= clang
FUZZ_FLAGS := -std=gnu17 -D_GNU_SOURCE -pthread -g -O1 -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -I.

DEPS_OK := build/.deps-ok

.PHONY: all check unit fuzz fuzz-check fuzz-long bench run install clean deps
all: $(LIB) $(PROGRAMS) $(UNIT_BINS) $(STORAGE_BINS) $(BENCH_BINS) $(LOADGEN)

deps: $(DEPS_OK)
$(DEPS_OK): tools/deps.sh
	@sh tools/deps.sh
	@mkdir -p $(@D) && touch $@

$(BUILD)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/%: $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(ALL_LDLIBS)
$(BUILD)/bin/jabshard-c2s: $(BUILD)/shard/main.o
$(BUILD)/bin/jabshard-sm: $(BUILD)/sm/main.o
$(BUILD)/bin/jabshardctl: $(BUILD)/sm/ctl/main.o

# Tests also link GNU SASL: an independent client implementation to check our SASL against.
TEST_LDLIBS = -lcmocka $(shell pkg-config --libs libgsasl 2>/dev/null)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LDLIBS) $(TEST_LDLIBS)

$(BUILD)/tests/storage/%: $(BUILD)/tests/storage/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LDLIBS) $(TEST_LDLIBS)

$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LDLIBS)

$(LOADGEN): $(LOADGEN_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $(LOADGEN_OBJS) $(LIB) $(ALL_LDLIBS)

# Fuzz targets link a clang-instrumented copy of the library.
FUZZ_OBJS := $(LIB_SRCS:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

build/fuzz/%: fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $< $(FUZZ_OBJS) $(PKG_LIBS) -ldl -lm

fuzz: $(FUZZ_BINS)

# Keep the instrumented objects between builds (make would delete them as intermediates).
.SECONDARY: $(FUZZ_OBJS)

# make check: the unit tests, the storage suite on each database (real PostgreSQL and MariaDB
# servers started in temporary directories), the integration tests of the programs, then (outside sanitizer variants, which would only repeat what the
# fuzz build already instruments) every fuzz target for FUZZ_SECONDS on a scratch copy of its corpus.
check: all
	@sh tests/run-unit.sh $(UNIT_BINS)
	@sh tests/storage/run.sh $(STORAGE_BINS)
	@sh tests/run-integration.sh $(BUILD)
ifeq ($(SAN),)
	@$(MAKE) --no-print-directory fuzz-check
endif

fuzz-check: $(FUZZ_BINS)
	@sh tests/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

fuzz-long: $(FUZZ_BINS)
	@sh tests/fuzz-campaign.sh $(FUZZ_LONG_SECONDS) $(FUZZ_JOBS) $(FUZZ_BINS)

bench: all
	@sh tests/bench/run.sh $(BUILD)

run: all
	@sh tools/run.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/etc/jabshard $(DESTDIR)$(PREFIX)/share/doc/jabshard
	$(if $(PROGRAMS),install -m 755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/)
	install -m 644 etc/*.xml $(DESTDIR)$(PREFIX)/etc/jabshard/
	install -m 644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/jabshard/

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d) $(UNIT_BINS:$(BUILD)/tests/%=$(BUILD)/tests/unit/%.d) \
         $(PROGRAM_DIRS:%=$(BUILD)/%/main.d) $(STORAGE_BINS:%=%.d) \
         $(BENCH_BINS:$(BUILD)/bench/%=$(BUILD)/tests/bench/%.d) $(LOADGEN_OBJS:.o=.d)

# jabshard beside Prosody, ejabberd and jabberd2 (docs/performance.md). As root: installs them and
# gnuplot from Debian when missing. BENCH_PEERS_ARGS adds options, e.g.
#   make bench-peers BENCH_PEERS_ARGS="--sessions 500 --rates 1000,2000 --servers jabshard,prosody"
BENCH_PEERS_ARGS ?=
.PHONY: bench-peers
bench-peers: $(PROGRAMS) $(LOADGEN)
	/usr/bin/python3 tests/bench/peers/bench_peers.py --jabshard-build $(BUILD) --loadgen $(LOADGEN) $(BENCH_PEERS_ARGS)
