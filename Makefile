# forkd: build, test, run, install, bench.  Everything goes into build/.
# `make SAN=1 BUILD=build/asan` builds the same tree with ASan and UBSan.

CC ?= cc
BUILD ?= build
PREFIX ?= /usr/local
PYTHON ?= /usr/bin/python3

WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -D_GNU_SOURCE -Iapp -Iserver
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 $(WARN) -fno-strict-aliasing
LDLIBS = -lhttp_parser -linih -ldl -lpthread
ifeq ($(SAN),1)
CC = clang
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

SERVER_SRCS = $(filter-out server/main.c,$(wildcard server/*.c))
SERVER_OBJS = $(SERVER_SRCS:server/%.c=$(BUILD)/obj/%.o)
APPS = $(patsubst app/%.c,$(BUILD)/app/%.so,$(wildcard app/*.c)) \
	$(BUILD)/app/wsgi.so
UNIT = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
CHECK_CFLAGS = $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)

.PHONY: all deps run test unit clean install fmt fmt-check experiment bench \
	compare
EXPERIMENT_ARGS ?=
BENCH_ARGS ?=
COMPARE_ARGS ?=

all: $(BUILD)/forkd $(APPS) $(UNIT)

deps:
	@scripts/deps.sh test

$(BUILD)/obj/%.o: server/%.c $(wildcard server/*.h) app/forkd.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# -rdynamic: handlers resolve forkd_* calls against the executable.
$(BUILD)/forkd: $(BUILD)/obj/main.o $(SERVER_OBJS)
	$(CC) $(LDFLAGS) -rdynamic -o $@ $^ $(LDLIBS)

$(BUILD)/app/%.so: app/%.c app/forkd.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -shared -fPIC -o $@ $< -lpthread

# The wsgi handler embeds Debian's CPython (python3-dev), never the python3
# first on PATH: the apps it serves use Debian's python3-* packages.
PY_CONFIG = /usr/bin/python3-config
PY_CFLAGS = $(shell $(PY_CONFIG) --includes 2>/dev/null)
PY_LIBS = $(shell $(PY_CONFIG) --embed --ldflags 2>/dev/null)
WSGI_SRCS = $(wildcard app/wsgi/*.c)
$(BUILD)/app/wsgi.so: $(WSGI_SRCS) app/wsgi/wsgi.h app/forkd.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PY_CFLAGS) $(CFLAGS) -shared -fPIC -o $@ \
		$(WSGI_SRCS) $(PY_LIBS) -lpthread

$(BUILD)/tests/%: tests/unit/%.c $(SERVER_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CHECK_CFLAGS) $(LDFLAGS) -rdynamic \
		-o $@ $< $(SERVER_OBJS) $(LDLIBS) $(CHECK_LIBS)

run: deps $(BUILD)/forkd $(APPS)
	$(BUILD)/forkd -c conf/forkd.ini

# Unit tests, integration tests, then both again under ASan/UBSan.
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=1 BUILD=build/asan all
	@scripts/test.sh

unit: all
	@for t in $(UNIT); do $$t || exit 1; done

# The sync baseline, measured (issue 4): the wall-time table, timelines and
# throughput rows into build/experiment/.  EXPERIMENT_ARGS=--quick: ~10 s.
experiment: deps all
	@scripts/deps.sh bench
	FORKD_BIN=$(BUILD)/forkd FORKD_APPS=$(BUILD)/app \
		/usr/bin/python3 scripts/experiment $(EXPERIMENT_ARGS)

# forkd side by side with nginx, uWSGI and gunicorn (issue 7):
# build/bench/results.{json,md} and chart.png, WSGI rows too (issue 12).
# BENCH_ARGS=--quick: ~2 min.
bench: deps all
	@scripts/deps.sh bench
	$(PYTHON) scripts/bench $(BENCH_ARGS)

# Sync against async (issue 8): forkd, gunicorn and uvicorn side by side:
# build/compare/report.md and charts; a full run rewrites the README part.
compare: deps all
	@scripts/deps.sh bench
	FORKD_BIN=$(BUILD)/forkd FORKD_APPS=$(BUILD)/app \
		$(PYTHON) scripts/compare $(COMPARE_ARGS)

install: $(BUILD)/forkd $(BUILD)/app/wsgi.so
	install -D -m 755 $(BUILD)/forkd $(DESTDIR)$(PREFIX)/sbin/forkd
	install -D -m 644 app/forkd.h $(DESTDIR)$(PREFIX)/include/forkd.h
	install -D -m 644 man/forkd.8 $(DESTDIR)$(PREFIX)/share/man/man8/forkd.8
	install -D -m 644 man/forkd.ini.5 \
		$(DESTDIR)$(PREFIX)/share/man/man5/forkd.ini.5
	install -D -m 644 man/forkd.h.3 $(DESTDIR)$(PREFIX)/share/man/man3/forkd.h.3
	install -D -m 644 man/forkd-wsgi.8 \
		$(DESTDIR)$(PREFIX)/share/man/man8/forkd-wsgi.8
	install -D -m 755 $(BUILD)/app/wsgi.so \
		$(DESTDIR)$(PREFIX)/lib/forkd/wsgi.so

fmt:
	clang-format -i server/*.[ch] app/*.[ch] app/wsgi/*.[ch] tests/unit/*.c

fmt-check:
	clang-format --dry-run -Werror server/*.[ch] app/*.[ch] app/wsgi/*.[ch] \
		tests/unit/*.c

clean:
	rm -rf build

include tests/fuzz/fuzz.mk
