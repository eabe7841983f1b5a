# forkd: build, test, run, install, bench.  Everything goes into build/.
# `make SAN=1 BUILD=build/asan` builds the same tree with ASan and UBSan.

CC ?= cc
BUILD ?= build
PYTHON ?= /usr/bin/python3

# The version's one place is debian/changelog's first line.
VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)

# -Werror in a developer's tree (a git checkout) only: a release or
# distribution build (DEVELOPER=0, as debian/rules sets) must not fail on
# a new compiler's new warning.
DEVELOPER ?= $(if $(wildcard .git),1,0)
WARN = -Wall -Wextra $(if $(filter 1,$(DEVELOPER)),-Werror) -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -D_GNU_SOURCE -Iapp -Iserver -DFORKD_VERSION='"$(VERSION)"'
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 $(WARN) -fno-strict-aliasing
LDLIBS = -lhttp_parser -linih -ldl -lpthread
ifeq ($(SAN),1)
CC = clang
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif
# COV=1: gcov counters in server/ (`make coverage`, gcc).  A BUILD ending
# in "cov" implies it, so that a make run with that BUILD (as
# test_install's `make install` does) never relinks it uninstrumented.
# server/ is counted, at -O0 and atomically (handler threads race for the
# counters); the unit tests themselves are not (and gcc's
# -Wformat-truncation misjudges them at -O0).  forkd and the unit tests
# link tests/coverage/gcov_dump.c: counters are written at TERM and _exit
# too.
COV ?= $(if $(filter %cov,$(BUILD)),1,0)
ifeq ($(COV),1)
COV_FLAGS = --coverage -O0 -fprofile-update=atomic
COV_LDFLAGS = --coverage
COV_LIBS = -lgcov
COV_OBJS = $(BUILD)/gcov_dump.o
COV_WRAP = -Wl,--wrap=signal -Wl,--wrap=sigaction -Wl,--wrap=_exit \
	-Wl,--wrap=exit
endif

SERVER_SRCS = $(filter-out server/main.c,$(wildcard server/*.c))
SERVER_OBJS = $(SERVER_SRCS:server/%.c=$(BUILD)/obj/%.o)
APPS = $(patsubst app/%.c,$(BUILD)/app/%.so,$(wildcard app/*.c)) \
	$(BUILD)/app/wsgi.so
UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

.PHONY: all server deps run test unit clean install uninstall fmt fmt-check \
	experiment bench compare coverage
EXPERIMENT_ARGS ?=
BENCH_ARGS ?=
COMPARE_ARGS ?=

all: $(BUILD)/forkd $(APPS) $(UNIT)

# What install needs, without the unit tests (and their check library).
server: $(BUILD)/forkd $(APPS)

deps:
	@scripts/deps.sh test

$(BUILD)/obj/%.o: server/%.c $(wildcard server/*.h) app/forkd.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(COV_FLAGS) -c -o $@ $<

$(BUILD)/obj/main.o: debian/changelog

# -rdynamic: handlers resolve forkd_* calls against the executable.
$(BUILD)/forkd: $(BUILD)/obj/main.o $(SERVER_OBJS) $(COV_OBJS)
	$(CC) $(LDFLAGS) $(COV_LDFLAGS) -rdynamic -o $@ $^ $(COV_WRAP) $(LDLIBS)

$(BUILD)/gcov_dump.o: tests/coverage/gcov_dump.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/app/%.so: app/%.c app/forkd.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -shared -fPIC -o $@ $< -lpthread

# The wsgi handler embeds Debian's CPython (python3-dev), never the python3
# first on PATH: the apps it serves use Debian's python3-* packages.
PY_CONFIG = /usr/bin/python3-config
PY_CFLAGS = $(shell $(PY_CONFIG) --includes 2>/dev/null)
PY_LIBS = $(shell $(PY_CONFIG) --embed --ldflags 2>/dev/null)
WSGI_SRCS = $(wildcard app/wsgi/*.c)
$(BUILD)/app/wsgi.so: $(WSGI_SRCS) app/wsgi/wsgi.h app/forkd.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PY_CFLAGS) $(CFLAGS) $(LDFLAGS) -shared -fPIC -o $@ \
		$(WSGI_SRCS) $(PY_LIBS) -lpthread

$(BUILD)/tests/%: tests/unit/%.c $(SERVER_OBJS) $(COV_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -rdynamic \
		-o $@ $< $(SERVER_OBJS) $(COV_OBJS) $(COV_WRAP) $(LDLIBS) \
		$(CHECK_LIBS) $(COV_LIBS)

run: deps $(BUILD)/forkd $(APPS)
	$(BUILD)/forkd -c conf/forkd.ini

# Unit tests, integration tests, then both again under ASan/UBSan.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 BUILD=build/asan all
	@scripts/test.sh

unit: all
	@for t in $(UNIT); do $$t || exit 1; done

# Line and branch coverage of server/*.c by the unit suites and the
# integration tests (issue 15): build/cov/coverage.txt and coverage.html;
# a complete run rewrites the README's coverage block.  ~4 min; not part of
# `make test`.
coverage: deps all
	@scripts/coverage

# The sync baseline, measured (issue 4): the wall-time table, timelines and
# throughput rows into build/experiment/.  EXPERIMENT_ARGS=--quick: ~10 s.
# A missed target exits 1 (EXPERIMENT_ARGS=--explore: 0); only a complete
# run rewrites the README's experiment parts.
experiment: deps all
	@scripts/deps.sh bench
	FORKD_BIN=$(BUILD)/forkd FORKD_APPS=$(BUILD)/app \
		/usr/bin/python3 scripts/experiment $(EXPERIMENT_ARGS)

# forkd side by side with nginx, uWSGI and gunicorn (issue 7):
# build/bench/results.{json,md} and chart.png, WSGI rows too (issue 12).
# BENCH_ARGS=--quick: ~3 min.  A missed target exits 1 (BENCH_ARGS=--explore:
# 0); only a complete run rewrites the README's Performance tables.
bench: deps all
	@scripts/deps.sh bench
	$(PYTHON) scripts/bench $(BENCH_ARGS)

# Sync against async (issue 8): forkd, gunicorn and uvicorn side by side:
# build/compare/report.md and charts.  A missed target exits 1
# (COMPARE_ARGS=--explore: 0); only a complete run rewrites the README part.
compare: deps all
	@scripts/deps.sh bench
	FORKD_BIN=$(BUILD)/forkd FORKD_APPS=$(BUILD)/app \
		$(PYTHON) scripts/compare $(COMPARE_ARGS)

# Installation (issue 14).  The conf files name the paths of the default
# PREFIX=/usr/local; install rewrites them to the directories below.
# /var/log/forkd and /run/forkd are fixed, as in the units and logrotate.
# BINDIR is accepted for packaging scripts; forkd installs no user command.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
PKGCONFIGDIR ?= $(DATADIR)/pkgconfig
SYSCONFDIR ?= /etc
UNITDIR ?= $(LIBDIR)/systemd/system
TMPFILESDIR ?= $(LIBDIR)/tmpfiles.d
HANDLERDIR = $(LIBDIR)/forkd
CONFDIR = $(SYSCONFDIR)/forkd
LOGDIR = /var/log/forkd
INSTALL_SED = sed -e 's|/usr/local/sbin/|$(SBINDIR)/|g' \
	-e 's|/usr/local/lib/forkd/|$(HANDLERDIR)/|g' \
	-e 's|/etc/forkd/|$(CONFDIR)/|g' -e 's|@PREFIX@|$(PREFIX)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@VERSION@|$(VERSION)|g' \
	-e "s|@API@|$$(sed -n 's/^\#define FORKD_API_VERSION //p' app/forkd.h)|g"
MAN_PAGES = $(wildcard man/*.[1-8])
# Every file install writes, for uninstall to remove (the ini apart).
INSTALLED = $(SBINDIR)/forkd $(INCLUDEDIR)/forkd.h $(PKGCONFIGDIR)/forkd.pc \
	$(addprefix $(HANDLERDIR)/,$(notdir $(APPS))) \
	$(foreach m,$(MAN_PAGES),$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
	$(CONFDIR)/forkd.ini.default $(UNITDIR)/forkd.service \
	$(UNITDIR)/forkd.socket $(SYSCONFDIR)/logrotate.d/forkd \
	$(TMPFILESDIR)/forkd.conf

install: server
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(HANDLERDIR) \
		$(DESTDIR)$(CONFDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(TMPFILESDIR) \
		$(sort $(foreach m,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))))
	install -d -m 0750 $(DESTDIR)$(LOGDIR)
	install -m 755 $(BUILD)/forkd $(DESTDIR)$(SBINDIR)/forkd
	install -m 644 app/forkd.h $(DESTDIR)$(INCLUDEDIR)/forkd.h
	$(INSTALL_SED) conf/forkd.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/forkd.pc
	install -m 644 $(APPS) $(DESTDIR)$(HANDLERDIR)/
	$(foreach m,$(MAN_PAGES),install -m 644 $(m) \
		$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/ &&) true
	$(INSTALL_SED) conf/forkd-production.ini \
		>$(DESTDIR)$(CONFDIR)/forkd.ini.default
	@# An ini that is there already is the operator's: never overwritten.
	test -e $(DESTDIR)$(CONFDIR)/forkd.ini || install -m 644 \
		$(DESTDIR)$(CONFDIR)/forkd.ini.default $(DESTDIR)$(CONFDIR)/forkd.ini
	$(INSTALL_SED) conf/forkd.service >$(DESTDIR)$(UNITDIR)/forkd.service
	$(INSTALL_SED) conf/forkd.socket >$(DESTDIR)$(UNITDIR)/forkd.socket
	$(INSTALL_SED) conf/forkd.logrotate \
		>$(DESTDIR)$(SYSCONFDIR)/logrotate.d/forkd
	install -m 644 conf/forkd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/forkd.conf

# Removes what install wrote; forkd.ini only when it is still the
# installed one, and the directories of forkd's own only when empty (the
# logs stay).
uninstall:
	@if cmp -s $(DESTDIR)$(CONFDIR)/forkd.ini \
		$(DESTDIR)$(CONFDIR)/forkd.ini.default; then \
		rm -f $(DESTDIR)$(CONFDIR)/forkd.ini; \
	elif [ -e $(DESTDIR)$(CONFDIR)/forkd.ini ]; then \
		echo "uninstall: $(DESTDIR)$(CONFDIR)/forkd.ini was changed: kept"; fi
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	rmdir $(DESTDIR)$(HANDLERDIR) $(DESTDIR)$(CONFDIR) $(DESTDIR)$(LOGDIR) \
		2>/dev/null; true

fmt:
	clang-format -i server/*.[ch] app/*.[ch] app/wsgi/*.[ch] tests/unit/*.c

fmt-check:
	clang-format --dry-run -Werror server/*.[ch] app/*.[ch] app/wsgi/*.[ch] \
		tests/unit/*.c

clean:
	rm -rf build

include tests/fuzz/fuzz.mk
