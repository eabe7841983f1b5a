# tests/fuzz/fuzz.mk: the libFuzzer harness, included by the Makefile.
#   make fuzz FUZZ_SECONDS=N   fuzz for N seconds (default 60) from the seeds
#   make fuzz-replay           run every regression and seed input once
# Needs clang with libFuzzer (Debian: clang).  Uses the Makefile's CPPFLAGS,
# WARN and LDLIBS.

FUZZ_SECONDS ?= 60
FUZZ_DIR = build/fuzz
FUZZ_CC = clang
FUZZ_CFLAGS = -g -O1 -std=c11 $(WARN) -fno-strict-aliasing \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
# The request path without the process machinery (worker.c's loop is
# mirrored in fuzz_request.c); the echo handler is linked in.
FUZZ_SRCS = $(filter-out server/main.c server/master.c server/worker.c server/tmpl.c,\
	$(wildcard server/*.c)) app/echo.c

.PHONY: fuzz fuzz-replay

$(FUZZ_DIR)/fuzz_request: tests/fuzz/fuzz_request.c $(FUZZ_SRCS) \
		$(wildcard server/*.h) app/forkd.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS) $(LDLIBS)

fuzz: $(FUZZ_DIR)/fuzz_request
	@mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	cp tests/fuzz/corpus/* $(FUZZ_DIR)/corpus/
	$(FUZZ_DIR)/fuzz_request -max_total_time=$(FUZZ_SECONDS) \
		-max_len=65536 -timeout=10 -dict=tests/fuzz/http.dict \
		-artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_DIR)/corpus

# Each input once, no fuzzing; the log is shown only when one fails.
fuzz-replay: $(FUZZ_DIR)/fuzz_request
	@mkdir -p $(FUZZ_DIR)/artifacts
	@$(FUZZ_DIR)/fuzz_request -runs=0 -artifact_prefix=$(FUZZ_DIR)/artifacts/ \
		tests/fuzz/regressions tests/fuzz/corpus \
		>$(FUZZ_DIR)/replay.log 2>&1 || \
		{ tail -40 $(FUZZ_DIR)/replay.log; exit 1; }
	@echo "fuzz-replay: $$(ls tests/fuzz/regressions tests/fuzz/corpus | \
		grep -vc ':$$\|^$$') inputs, no failure"
