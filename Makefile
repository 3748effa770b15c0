# jabshard build: one plain Makefile, libraries found with pkg-config. make builds; it never
# installs anything.
#
#   make                         the programs, unit and storage tests, benchmarks, load generator
#   make deps                    install what the build and the tests need (tools/deps.sh: apt-get
#                                on Debian, through sudo when not root)
#   make check                   unit tests, storage suite, integration tests, then each fuzz
#                                target briefly on its corpus
#   make check SAN=address,undefined   the same suite under ASan/UBSan (own tree: build/san-*/)
#   make check SAN=thread        the same suite under ThreadSanitizer
#   make fuzz                    libFuzzer targets (clang) in build/fuzz/
#   make fuzz-check              each fuzz target for FUZZ_SECONDS (10) on a scratch copy of its
#                                corpus
#   make fuzz-long               the fuzzing campaign: each target FUZZ_LONG_SECONDS (1800), new
#                                coverage merged into fuzz/corpus/ (docs/security.md)
#   make bench                   benchmarks
#   make bench-sm-scale          one SM driven by synthetic fronts at scale (tests/bench/sm_scale/)
#   make bench-peers             jabshard beside Prosody, ejabberd and jabberd2 (docs/performance.md)
#   make run                     start the whole system on its embedded default
#   make run FEDERATION=1        ... with jabshard-s2s, the federation front, as well
#   make programs                the three programs only
#   make man                     the man pages (scdoc) in build/man/
#   make install PREFIX=/usr/local   programs, configs, systemd units, man pages, docs (DESTDIR too)
#   make deb                     the Debian package in build/deb/ (tools/deb.sh)
#   make clean
#
# Every build first checks, installing nothing, that the compiler and each pkg-config package it
# needs are here; tools/missing.sh names what is missing, the Debian package it comes in, and
# says to run sh tools/deps.sh (or make deps). make check and make run set up a fresh Debian
# machine by themselves: they run tools/deps.sh when, and only when, something is missing.
#
# WERROR=1 turns warnings into errors (CI sets it).
# CPPFLAGS, CFLAGS and LDFLAGS from the environment are used (LDFLAGS by the programs: the Debian
# package passes dpkg-buildflags' hardening flags through them).
#
# Layout of build/VARIANT/ (default, or san-* for a sanitizer build): obj/ the objects; a static
# library per layer (libcore.a, libsmproto.a, libfront.a, libxdbsql.a, libsm.a) and the test
# support library (libtestsupport.a); bin/ the programs; tests/ the unit tests and tests/storage/
# the storage suite; bench/ the benchmarks and the load generator. build/fuzz/ holds the fuzz
# targets and their clang-instrumented copy of the layers.

SAN    ?=
WERROR ?=
PREFIX ?= /usr/local
FUZZ_SECONDS ?= 10
FUZZ_LONG_SECONDS ?= 1800
FUZZ_JOBS ?= 2

comma := ,
VARIANT := $(if $(SAN),san-$(subst $(comma),-,$(SAN)),default)
BUILD   := build/$(VARIANT)
OBJ     := $(BUILD)/obj

CC      ?= cc

# What each program links, by pkg-config package: the front only what core needs; the SM and the
# admin tool the database clients too; the tests also cmocka and GNU SASL (an independent client
# implementation to check our SASL against). The two daemons also link libsystemd, for sd_notify
# (core/notify.c, linked into them only).
CORE_PKGS   := expat openssl libidn ck
SM_PKGS     := $(CORE_PKGS) sqlite3 libpq libmariadb
NOTIFY_PKGS := libsystemd
TEST_PKGS   := $(SM_PKGS) cmocka libgsasl
# What deps-check asks for: everything, but only what the programs need when only the programs
# are built (make programs, make install: a package's build needs no test library).
PROGRAM_PKGS := $(SM_PKGS) $(NOTIFY_PKGS)
BUILD_PKGS   := $(TEST_PKGS) $(NOTIFY_PKGS)
# Empty while a package is missing: the build stops at the check (deps-check) before using them.
PKG_CFLAGS  := $(shell pkg-config --cflags $(PROGRAM_PKGS) 2>/dev/null) \
               $(shell pkg-config --cflags cmocka libgsasl 2>/dev/null)
# libunbound (the s2s front's DNS) has a pkg-config file that asks for libevent's, which Debian's
# libunbound-dev does not pull in: it is linked by name, its header checked (tools/missing.sh).
SYS_LDLIBS  := -lhttp_parser -lunbound -ldl -lpthread -lm
CORE_LDLIBS := $(shell pkg-config --libs $(CORE_PKGS) 2>/dev/null) $(SYS_LDLIBS)
SM_LDLIBS   := $(shell pkg-config --libs $(SM_PKGS) 2>/dev/null) $(SYS_LDLIBS)
NOTIFY_LDLIBS := $(shell pkg-config --libs $(NOTIFY_PKGS) 2>/dev/null)
TEST_LDLIBS := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null) $(SYS_LDLIBS)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu17 -D_GNU_SOURCE -pthread $(WARN) $(if $(WERROR),-Werror) $(CPPFLAGS) \
             $(CFLAGS) $(SAN_CFLAGS) -I. $(PKG_CFLAGS) -MMD -MP

ifneq ($(SAN),)
SAN_CFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
# ck's atomics are inline assembly that ThreadSanitizer cannot see: use the compiler builtins.
ifneq ($(findstring thread,$(SAN)),)
SAN_CFLAGS += -DCK_USE_CC_BUILTINS=1
endif
endif

# The layers (docs/architecture.md), one static library each. A layer uses only those named in
# its comment; the link order below (users before what they use) makes a link fail otherwise.
core_SRCS    := $(filter-out core/notify.c,$(wildcard core/*.c))    # nothing of ours
smproto_SRCS := $(wildcard smproto/*.c)                             # core
front_SRCS   := $(filter-out shard/main.c,$(wildcard shard/*.c))    # core smproto
s2s_SRCS     := $(filter-out s2s/main.c,$(wildcard s2s/*.c))        # core smproto
xdbsql_SRCS  := $(wildcard xdbsql/*.c)                              # core
sm_SRCS      := $(filter-out sm/main.c,$(wildcard sm/*.c))          # core smproto xdbsql
LAYERS       := core smproto front s2s xdbsql sm

# $(call layer_objs,OBJDIR,LAYER): a layer's objects; $(call libs,DIR,LAYER...): its archives.
layer_objs = $(patsubst %.c,$(1)/%.o,$($(2)_SRCS))
libs       = $(foreach l,$(2),$(1)/lib$(l).a)

# The test support library (tests/support/): sockets, scratch directories, the SM harness.
SUPPORT_SRCS := $(wildcard tests/support/*.c)
SUPPORT_LIB  := $(BUILD)/libtestsupport.a

FRONT_LIBS := $(call libs,$(BUILD),front smproto core)
S2S_LIBS   := $(call libs,$(BUILD),s2s smproto core)
SM_LIBS    := $(call libs,$(BUILD),sm xdbsql smproto core)
ALL_LIBS   := $(call libs,$(BUILD),sm front s2s xdbsql smproto core)

PROGRAMS := $(BUILD)/bin/jabshard-c2s $(BUILD)/bin/jabshard-s2s $(BUILD)/bin/jabshard-sm \
            $(BUILD)/bin/jabshardctl

UNIT_SRCS    := $(wildcard tests/unit/test_*.c)
UNIT_BINS    := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
STORAGE_SRCS := $(wildcard tests/storage/test_*.c)
STORAGE_BINS := $(STORAGE_SRCS:tests/storage/%.c=$(BUILD)/tests/storage/%)
BENCH_SRCS   := $(wildcard tests/bench/bench_*.c)
BENCH_BINS   := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)
BENCHLIB     := $(OBJ)/tests/bench/benchlib.o
# The load generator (tests/bench/loadgen/): used by the fault tests and make bench-peers.
LOADGEN_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(wildcard tests/bench/loadgen/*.c))
LOADGEN      := $(BUILD)/bench/loadgen
# The synthetic fronts driving one SM at scale (tests/bench/sm_scale/): make bench-sm-scale.
SM_SCALE_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(wildcard tests/bench/sm_scale/*.c))
SM_SCALE      := $(BUILD)/bench/sm_scale

FUZZ_SRCS  := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)
FUZZ_CC    ?= clang
FUZZ_FLAGS := -std=gnu17 -D_GNU_SOURCE -pthread -g -O1 -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=all -I.
FUZZ_LIBS  := $(call libs,build/fuzz,sm front s2s xdbsql smproto core)
FUZZ_OBJS  := $(foreach l,$(LAYERS),$(call layer_objs,build/fuzz/obj,$(l)))

# Every object of this variant (for the header dependencies make includes at the end).
ALL_OBJS := $(foreach l,$(LAYERS),$(call layer_objs,$(OBJ),$(l))) \
            $(patsubst %.c,$(OBJ)/%.o,shard/main.c s2s/main.c sm/main.c sm/ctl/main.c core/notify.c \
                                      $(SUPPORT_SRCS) \
                                      $(UNIT_SRCS) $(STORAGE_SRCS) $(BENCH_SRCS)) \
            $(BENCHLIB) $(LOADGEN_OBJS) $(SM_SCALE_OBJS)

.PHONY: all check fuzz fuzz-check fuzz-long bench run install clean deps deps-check \
        fuzz-deps-check
all: $(PROGRAMS) $(UNIT_BINS) $(STORAGE_BINS) $(BENCH_BINS) $(LOADGEN) $(SM_SCALE)

# ---- dependencies: checked by every build, installed only by tools/deps.sh ------------------

deps:
	@sh tools/deps.sh

deps-check:
	@sh tools/missing.sh --cc "$(CC)" $(BUILD_PKGS)

fuzz-deps-check:
	@sh tools/missing.sh --cc "$(FUZZ_CC)" $(TEST_PKGS)

# ---- the layers and the programs ------------------------------------------------------------

$(OBJ)/%.o: %.c | deps-check
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libcore.a:    $(call layer_objs,$(OBJ),core)
$(BUILD)/libsmproto.a: $(call layer_objs,$(OBJ),smproto)
$(BUILD)/libfront.a:   $(call layer_objs,$(OBJ),front)
$(BUILD)/libs2s.a:     $(call layer_objs,$(OBJ),s2s)
$(BUILD)/libxdbsql.a:  $(call layer_objs,$(OBJ),xdbsql)
$(BUILD)/libsm.a:      $(call layer_objs,$(OBJ),sm)
$(SUPPORT_LIB):        $(patsubst %.c,$(OBJ)/%.o,$(SUPPORT_SRCS))
$(call libs,$(BUILD),$(LAYERS)) $(SUPPORT_LIB):
	rm -f $@ && ar rcs $@ $^

# The daemons: each its main and the service manager's notifications (core/notify.h).
$(BUILD)/bin/jabshard-c2s: $(OBJ)/shard/main.o $(OBJ)/core/notify.o $(FRONT_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(OBJ)/core/notify.o $(FRONT_LIBS) $(CORE_LDLIBS) \
	    $(NOTIFY_LDLIBS)

$(BUILD)/bin/jabshard-s2s: $(OBJ)/s2s/main.o $(OBJ)/core/notify.o $(S2S_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(OBJ)/core/notify.o $(S2S_LIBS) $(CORE_LDLIBS) \
	    $(NOTIFY_LDLIBS)

$(BUILD)/bin/jabshard-sm: $(OBJ)/sm/main.o $(OBJ)/core/notify.o $(SM_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(OBJ)/core/notify.o $(SM_LIBS) $(SM_LDLIBS) \
	    $(NOTIFY_LDLIBS)

# The admin tool reads the SM's configuration (its modules' options) and opens its storage.
$(BUILD)/bin/jabshardctl: $(OBJ)/sm/ctl/main.o $(SM_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(SM_LIBS) $(SM_LDLIBS)

# ---- tests and benchmarks: the test support library and every layer ------------------------

$(UNIT_BINS): $(BUILD)/tests/%: $(OBJ)/tests/unit/%.o $(SUPPORT_LIB) $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(SUPPORT_LIB) $(ALL_LIBS) $(TEST_LDLIBS)

$(STORAGE_BINS): $(BUILD)/tests/storage/%: $(OBJ)/tests/storage/%.o $(SUPPORT_LIB) $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(SUPPORT_LIB) $(ALL_LIBS) $(TEST_LDLIBS)

# Benchmarks: their shared helpers (benchlib), and what needs no cmocka in the support library.
$(BENCH_BINS): $(BUILD)/bench/%: $(OBJ)/tests/bench/%.o $(BENCHLIB) $(SUPPORT_LIB) $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BENCHLIB) $(SUPPORT_LIB) $(ALL_LIBS) $(SM_LDLIBS)

$(SM_SCALE): $(SM_SCALE_OBJS) $(BENCHLIB) $(SUPPORT_LIB) $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $(SM_SCALE_OBJS) $(BENCHLIB) $(SUPPORT_LIB) $(ALL_LIBS) $(SM_LDLIBS)

# The load generator is a program of its own on core.

$(LOADGEN): $(LOADGEN_OBJS) $(call libs,$(BUILD),core)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(CORE_LDLIBS)

# ---- fuzzing: a clang-instrumented copy of the layers in build/fuzz/ ------------------------

build/fuzz/obj/%.o: %.c | fuzz-deps-check
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

build/fuzz/libcore.a:    $(call layer_objs,build/fuzz/obj,core)
build/fuzz/libsmproto.a: $(call layer_objs,build/fuzz/obj,smproto)
build/fuzz/libfront.a:   $(call layer_objs,build/fuzz/obj,front)
build/fuzz/libs2s.a:     $(call layer_objs,build/fuzz/obj,s2s)
build/fuzz/libxdbsql.a:  $(call layer_objs,build/fuzz/obj,xdbsql)
build/fuzz/libsm.a:      $(call layer_objs,build/fuzz/obj,sm)
$(FUZZ_LIBS):
	rm -f $@ && ar rcs $@ $^

$(FUZZ_BINS): build/fuzz/%: fuzz/%.c $(FUZZ_LIBS) | fuzz-deps-check
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -o $@ $< $(FUZZ_LIBS) $(SM_LDLIBS)

fuzz: $(FUZZ_BINS)

# Keep every object between builds (make would delete those it sees as intermediate).
.SECONDARY:

# make check: the unit tests, the storage suite on each database (real PostgreSQL and MariaDB
# servers started in temporary directories), the integration tests of the programs, then (outside
# sanitizer variants, which would only repeat what the fuzz build already instruments) every fuzz
# target for FUZZ_SECONDS on a scratch copy of its corpus. First, on a machine that lacks
# anything it needs, tools/deps.sh installs it.
check:
	@sh tools/missing.sh -q --tests --cc "$(CC)" $(BUILD_PKGS) || sh tools/deps.sh
	@$(MAKE) --no-print-directory all
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

# make run FEDERATION=1: jabshard-s2s too (tools/run.sh, JABSHARD_FEDERATION).
run:
	@sh tools/missing.sh -q --cc "$(CC)" $(BUILD_PKGS) || sh tools/deps.sh
	@$(MAKE) --no-print-directory $(PROGRAMS)
	@$(if $(FEDERATION),JABSHARD_FEDERATION=$(FEDERATION) )sh tools/run.sh $(BUILD)

# ---- installing: the programs, their configuration, units, man pages and documents -------------
#
# make install [DESTDIR=...] [PREFIX=/usr/local] builds only the programs and the man pages (not
# the tests). The daemons and the admin tool go to PREFIX/sbin (they are run by root or the
# service manager); the example configurations to SYSCONFDIR/jabshard (/etc/jabshard when
# PREFIX is /usr), with the paths of an installed system: the database and the admin socket in
# STATEDIR (/var/lib/jabshard), the certificate in SYSCONFDIR/jabshard/server.pem, the log to
# standard error (the journal, under systemd); the systemd units to SYSTEMDUNITDIR
# (/lib/systemd/system when PREFIX is /usr), naming PREFIX/sbin. The Debian package
# (debian/, make deb) is this with PREFIX=/usr. docs/operations.md, "Installing".
usr_prefix     = $(filter /usr,$(PREFIX))
SYSCONFDIR     ?= $(if $(usr_prefix),/etc,$(PREFIX)/etc)
STATEDIR       := /var/lib/jabshard
# STATEDIR is fixed: the units create it (StateDirectory=jabshard).
SYSTEMDUNITDIR ?= $(if $(usr_prefix),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
MANDIR         ?= $(PREFIX)/share/man
DOCDIR         ?= $(PREFIX)/share/doc/jabshard
SBINDIR        := $(PREFIX)/sbin
CONFDIR        := $(SYSCONFDIR)/jabshard

MAN_SRCS  := $(wildcard man/*.scd)
MAN_PAGES := $(MAN_SRCS:man/%.scd=build/man/%)

.PHONY: programs man deb

# The programs alone: what install and the package need (deps-check asks for their libraries only).
programs: BUILD_PKGS := $(PROGRAM_PKGS)
programs: $(PROGRAMS)

man: $(MAN_PAGES)

build/man/%: man/%.scd
	@command -v scdoc >/dev/null 2>&1 || { echo "jabshard: make man needs scdoc (Debian: scdoc)" >&2; exit 1; }
	@mkdir -p $(@D)
	scdoc < $< > $@

# sed expressions turning a source-tree path into an installed one (configs and units).
INSTALL_PATHS = -e 's|<path>./jabshard.db</path>|<path>$(STATEDIR)/jabshard.db</path>|' \
                -e 's|<pemfile>./server.pem</pemfile>|<pemfile>$(CONFDIR)/server.pem</pemfile>|' \
                -e 's|<dir>./upload</dir>|<dir>$(STATEDIR)/upload</dir>|' \
                -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@CONFDIR@|$(CONFDIR)|g' \
                -e 's|@STATEDIR@|$(STATEDIR)|g'

install: programs man
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(CONFDIR) $(DESTDIR)$(SYSTEMDUNITDIR) \
	           $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR)
	install -m 755 $(PROGRAMS) $(DESTDIR)$(SBINDIR)/
	for f in jadc2s.xml sm.xml s2s.xml; do \
	    sed $(INSTALL_PATHS) etc/$$f > $(DESTDIR)$(CONFDIR)/$$f && chmod 640 $(DESTDIR)$(CONFDIR)/$$f; \
	done
	for f in etc/systemd/*.service; do \
	    sed $(INSTALL_PATHS) $$f > $(DESTDIR)$(SYSTEMDUNITDIR)/$${f##*/} && \
	    chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$${f##*/}; \
	done
	install -m 644 $(filter %.5,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man5/
	install -m 644 $(filter %.8,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man8/
	install -m 644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)$(DOCDIR)/examples
	cp -R etc/fail2ban $(DESTDIR)$(DOCDIR)/examples/

# The Debian package from this tree (debian/), into build/deb/: dpkg-buildpackage runs in a
# scratch copy, so the tree and its build/ stay as they are. Needs debhelper and scdoc.
deb:
	@sh tools/deb.sh build/deb

clean:
	rm -rf build

-include $(ALL_OBJS:.o=.d) $(FUZZ_OBJS:.o=.d)

# jabshard beside Prosody, ejabberd and jabberd2 (docs/performance.md). As root: installs them and
# gnuplot from Debian when missing. BENCH_PEERS_ARGS adds options, e.g.
#   make bench-peers BENCH_PEERS_ARGS="--sessions 500 --rates 1000,2000 --servers jabshard,prosody"
BENCH_PEERS_ARGS ?=
.PHONY: bench-peers bench-sm-scale
bench-peers: $(PROGRAMS) $(LOADGEN)
	/usr/bin/python3 tests/bench/peers/bench_peers.py --jabshard-build $(BUILD) --loadgen $(LOADGEN) $(BENCH_PEERS_ARGS)

# One SM driven by 10 synthetic fronts (tests/bench/sm_scale/README.md): 100,000 sessions with
# rosters of 20, their logins, memory, a login with 200 online contacts, 10 s of messages, and an
# SM restart with the fronts' resync. SM_SCALE_ARGS adds options, e.g.
#   make bench-sm-scale SM_SCALE_ARGS="--users 1000000 --rate 100000 --workdir /var/tmp/sm-scale"
SM_SCALE_ARGS ?=
bench-sm-scale: $(PROGRAMS) $(SM_SCALE)
	$(SM_SCALE) --restart $(SM_SCALE_ARGS) $(BUILD)/bin
