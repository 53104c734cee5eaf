# PgCrab build. `make` builds ./pgcrab; `make check` installs what is missing,
# builds, runs unit and integration tests; `make run` starts a throwaway
# PostgreSQL with PgCrab in front of it (SHARDS=N: a database sharded over N).

CC       ?= gcc
PREFIX   ?= /usr/local
DESTDIR  ?=
PKGS     := liburing inih libssl libcrypto libsystemd libpq libidn
# Headers only: query/ reads libpg_query's protobuf tree through protobuf-c's
# declarations, but links the protobuf-c that libpg_query carries and
# exports, so that the process holds one copy of it, not two.
HDR_PKGS := libprotobuf-c
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS) $(HDR_PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpg_query -lpthread

# SANITIZE=1 builds everything with AddressSanitizer and UBSan into build-san/.
ifeq ($(SANITIZE),1)
BUILD    := build-san
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
else
BUILD    := build
endif

LIB_SRCS := $(wildcard proto/*.c config/*.c auth/*.c stats/*.c core/*.c pool/*.c query/*.c router/*.c relay/*.c session/*.c main/*.c)
LIB_SRCS := $(filter-out main/main.c,$(LIB_SRCS))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
# Helpers the integration tests run (tests/tools/*.c), built beside the unit
# tests so that they find them in UNIT_DIR.
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/%)
BIN      := $(if $(filter 1,$(SANITIZE)),$(BUILD)/pgcrab,pgcrab)

.PHONY: all deps run check unit clean install format format-check fuzz fuzz-build
all: $(BIN)

$(BIN): $(BUILD)/main/main.o $(BUILD)/libpgcrab.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libpgcrab.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libpgcrab.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libpgcrab.a $(LDLIBS) $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)

$(BUILD)/tests/%: tests/tools/%.c $(BUILD)/libpgcrab.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libpgcrab.a $(LDLIBS)

deps:
	@scripts/deps.sh

unit: $(UNIT_BINS) $(TOOL_BINS)

run: deps
	@$(MAKE) --no-print-directory all
	@SHARDS=$(SHARDS) scripts/run.sh

# The fuzzers run in the release pass only (SANITIZE unset): they carry their
# own ASan+UBSan build, so the SANITIZE=1 pass would only repeat them.
check: deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory all unit $(if $(filter 1,$(SANITIZE)),,fuzz-build)
	@SANITIZE=$(SANITIZE) PGCRAB_BIN=$(abspath $(BIN)) UNIT_DIR=$(abspath $(BUILD)/tests) \
		FUZZ_DIR=$(abspath $(FUZZ_BUILD)) scripts/check.sh

# libFuzzer targets (tests/fuzz/fuzz_*.c, see docs/testing.md): clang with
# ASan+UBSan, the library rebuilt with coverage into build-fuzz/. The SCRAM
# iteration cap (and the count of verifiers PgCrab makes at load) is lowered
# there so PBKDF2 does not eat the fuzzing time.
FUZZ_CC     ?= clang
FUZZ_TIME   ?= 60
FUZZ_BUILD  := build-fuzz
FUZZ_CFLAGS := -O1 -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
               -D_GNU_SOURCE -I. -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
               -DAUTH_SCRAM_MAX_ITERATIONS=4096 -DAUTH_SCRAM_DEFAULT_ITERATIONS=16 $(shell pkg-config --cflags $(PKGS) $(HDR_PKGS) 2>/dev/null)
FUZZ_OBJS   := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS   := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libpgcrab.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_BUILD)/libpgcrab.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,address,undefined -MMD -MP -o $@ $< \
		$(FUZZ_BUILD)/libpgcrab.a $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

# make fuzz [FUZZ_TIME=60] [FUZZ_TARGETS="fuzz_proto ..."]: each target in
# turn for FUZZ_TIME seconds; fails on any crash, leak or sanitizer report.
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_TIME=$(FUZZ_TIME) FUZZ_DIR=$(abspath $(FUZZ_BUILD)) scripts/fuzz.sh $(FUZZ_TARGETS)

# make soak [SOAK_TIME=600] [DEPART_ROUNDS=20000]: t_soak (pgbench at 180
# clients while clients are SIGKILLed) for longer than make check's 60 s,
# and t_depart_random (clients leaving in random states and ways) for
# 20,000 rounds instead of make check's 1,000.
SOAK_TIME ?= 600
DEPART_ROUNDS ?= 20000
.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory all
	@SOAK_TIME=$(SOAK_TIME) DEPART_ROUNDS=$(DEPART_ROUNDS) \
		TEST_TIMEOUT=$$(($(SOAK_TIME) + $(DEPART_ROUNDS) / 2 + 600)) PGCRAB_BIN=$(abspath $(BIN)) \
		tests/integration/run.sh t_soak t_depart_random

# make bench [QUICK=1]: PgCrab against PgBouncer and direct PostgreSQL;
# report under bench/results/<timestamp>/ (see docs/performance.md).
.PHONY: bench
bench: deps
	@$(MAKE) --no-print-directory all
	@QUICK=$(QUICK) PGCRAB_BIN=$(abspath $(BIN)) PGCRAB_LIB=$(abspath $(BUILD)/libpgcrab.a) \
		BENCH_LDLIBS='$(LDLIBS)' bench/run.sh

# make conformance: PostgreSQL 15's own regression suite (pg_regress, the
# whole parallel_schedule) directly, through PgCrab in transaction and in
# session mode, and through PgBouncer in transaction mode; prints which
# tests fail only through a pooler (docs/testing.md, "Conformance"). The
# suite's files come from the postgresql-15 source package, fetched once
# into /var/cache/pgcrab (scripts/pg_regress_src.sh). make check runs a
# slice of it (tests/conformance/check_schedule).
.PHONY: conformance
conformance: deps
	@$(MAKE) --no-print-directory all
	@bench/deps.sh
	@PGCRAB_BIN=$(abspath $(BIN)) scripts/conformance.sh

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, the systemd
# units (pointing at that binary), the man pages, the example, and
# /etc/pgcrab/pgcrab.ini made from the example (listening on the service's
# /run/pgcrab too), mode 0640, group pgcrab when that group exists. An
# existing pgcrab.ini is left alone: it is the operator's.
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/pgcrab
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/pgcrab
	install -D -m 0644 pgcrab.ini.example $(DESTDIR)$(DOCDIR)/pgcrab.ini.example
	install -D -m 0644 dist/man/pgcrab.1 $(DESTDIR)$(MANDIR)/man1/pgcrab.1
	install -D -m 0644 dist/man/pgcrab.ini.5 $(DESTDIR)$(MANDIR)/man5/pgcrab.ini.5
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/bin/pgcrab|$(BINDIR)/pgcrab|' -e 's|/etc/pgcrab/|$(SYSCONFDIR)/pgcrab/|' \
		dist/systemd/pgcrab.service >$(DESTDIR)$(UNITDIR)/pgcrab.service
	install -m 0644 dist/systemd/pgcrab.socket $(DESTDIR)$(UNITDIR)/pgcrab.socket
	chmod 0644 $(DESTDIR)$(UNITDIR)/pgcrab.service
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/pgcrab
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/pgcrab/pgcrab.ini ]; then \
		echo "$(DESTDIR)$(SYSCONFDIR)/pgcrab/pgcrab.ini exists: left as it is"; \
	else \
		sed 's|^unix_socket_dir = *;|unix_socket_dir = /run/pgcrab ;|' pgcrab.ini.example \
			>$(DESTDIR)$(SYSCONFDIR)/pgcrab/pgcrab.ini && \
		chmod 0640 $(DESTDIR)$(SYSCONFDIR)/pgcrab/pgcrab.ini && \
		{ ! getent group pgcrab >/dev/null || chgrp pgcrab $(DESTDIR)$(SYSCONFDIR)/pgcrab/pgcrab.ini; } && \
		echo "installed $(DESTDIR)$(SYSCONFDIR)/pgcrab/pgcrab.ini"; \
	fi

# Every C file follows .clang-format: format-check (part of make check) fails
# on any difference, format rewrites them.
FMT_SRCS := $(wildcard */*.c */*.h tests/unit/*.c tests/tools/*.c tests/fuzz/*.c tests/fuzz/*.h)
format-check:
	@clang-format --dry-run --Werror $(FMT_SRCS) && echo "format-check: $(words $(FMT_SRCS)) files follow .clang-format"

format:
	clang-format -i $(FMT_SRCS)

clean:
	rm -rf build build-san build-fuzz pgcrab

-include $(shell find $(BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
