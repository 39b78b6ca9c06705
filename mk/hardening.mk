# mk/hardening.mk - fuzzing, valgrind, ABI check and ThreadSanitizer (included by the Makefile
# before its own rules, so the names it defines later - STLIB, TEST_BINS, CFLAGS_ALL - are
# only used in recipes, which make expands when they run).
#
#   make fuzz                      libFuzzer targets (clang, ASan + UBSan) in $(BUILD)/fuzz
#   make fuzz-run FUZZ_SECONDS=60  runs each on a copy of its seed corpus; fails on any report
#   make valgrind                  every cmocka test binary under valgrind (memcheck)
#   make abicheck                  libgem.so.1 against the committed baseline abi/libgem.abi
#   make abi-baseline              regenerates abi/libgem.abi (deliberate ABI additions)
#   make tsan                      test/test_threads.c built with -fsanitize=thread
#
# All four run in `make check` (CHECK_EXTRA), the fuzzers for FUZZ_SECONDS each (20 by default;
# CI may raise it).

CHECK_EXTRA += fuzz-run valgrind abicheck tsan

.PHONY: fuzz fuzz-run valgrind abicheck abi-baseline tsan

# ---- fuzzing --------------------------------------------------------------------------------
# The library sources are compiled again with clang and the fuzzer's coverage instrumentation
# (the gcc-built libgem.a has none). Backend files build without their GEM_HAVE_* defines, so
# the fuzzers need neither CUDA nor NCCL nor MPI.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 20
# Seconds one input may take before it counts as a hang; libFuzzer's own default is 20 min.
FUZZ_TIMEOUT ?= 25
FUZZ_MAX_LEN ?= 4096
FUZZ_TARGETS := profile_parse trace_parse mapping_parse import_sglang import_wide_csv \
                import_tokens_jsonl
# Library files that cannot build without their toolkits (none so far: backends stub out).
FUZZ_EXCLUDE ?=
FUZZ_LIB_SRCS := $(filter-out $(FUZZ_EXCLUDE),$(sort $(wildcard libgem/*.c)))
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_OBJS    := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -Iinclude -Ilibgem -Ifuzz $(JANSSON_CFLAGS) -g -O1 \
                $(FUZZ_SAN) -Wall -Wextra -Wno-unused-parameter

fuzz: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/libgem.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

# One binary per import format, from the same source.
$(FUZZ_DIR)/fuzz_import_%: fuzz/fuzz_import.c fuzz/fuzz_common.h $(FUZZ_DIR)/libgem.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer \
	    -DFUZZ_IMPORT_FORMAT=GEM_IMPORT_$$(echo $* | tr a-z A-Z) \
	    -o $@ $< $(FUZZ_DIR)/libgem.a $(JANSSON_LIBS) -lpthread -lm

$(FUZZ_DIR)/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h $(FUZZ_DIR)/libgem.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libgem.a \
	    $(JANSSON_LIBS) -lpthread -lm

# New corpus entries go to $(FUZZ_DIR)/work, never into fuzz/corpus.
fuzz-run: $(FUZZ_BINS)
	@FUZZ_TIMEOUT=$(FUZZ_TIMEOUT) FUZZ_MAX_LEN=$(FUZZ_MAX_LEN) \
	    sh fuzz/run_fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# ---- valgrind -------------------------------------------------------------------------------
# The plain (non-ASan) test binaries; definite leaks count as errors, possible ones do not
# (cmocka's longjmp-based failure handling leaves those).

VALGRIND       ?= valgrind
VALGRIND_FLAGS ?= --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 --quiet
HARD_TEST_BINS := $(patsubst test/%.c,$(BUILD)/test/%,$(sort $(wildcard test/test_*.c)))
VALGRIND_SUPP  := $(BUILD)/valgrind.supp

# Known false positive outside libgem: glibc's dynamic loader compares $ORIGIN in an RPATH
# with a word-at-a-time strncmp that valgrind does not replace (seen when the CUDA backend
# dlopens cuBLAS, whose RPATH has $ORIGIN).
$(VALGRIND_SUPP): mk/hardening.mk
	@mkdir -p $(dir $@)
	@printf '%s\n' '{' '   ld.so strncmp over-read in is_dst (glibc, not libgem)' \
	    '   Memcheck:Addr8' '   fun:strncmp' '   fun:is_dst' '}' > $@

valgrind: $(HARD_TEST_BINS) $(VALGRIND_SUPP)
	@failed=""; \
	for t in $(HARD_TEST_BINS); do \
	    start=$$(date +%s); \
	    $(VALGRIND) $(VALGRIND_FLAGS) --suppressions=$(VALGRIND_SUPP) $$t > $$t.valgrind.log 2>&1; \
	    rc=$$?; \
	    secs=$$(( $$(date +%s) - start )); \
	    if [ $$rc -eq 0 ]; then echo "valgrind: $$t ok ($$secs s)"; \
	    else echo "valgrind: $$t FAILED ($$secs s, exit $$rc):"; cat $$t.valgrind.log; \
	         failed="$$failed $$t"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "valgrind: failed:$$failed"; exit 1; fi; \
	echo "valgrind: $(words $(HARD_TEST_BINS)) test binaries clean"

# ---- ABI ------------------------------------------------------------------------------------
# Only exported functions and the types reachable from include/ count. Locations and paths are
# left out of the baseline so that it changes only when the ABI does.

ABIDW        ?= abidw
ABIDIFF      ?= abidiff
ABI_BASELINE := abi/libgem.abi
ABI_SHLIB    := $(BUILD)/libgem.so.$(VERSION)
ABI_HEADERS  := include
# DT_NEEDED is left out too: it depends on which backends the build found, not on the ABI.
ABIDW_FLAGS   = --headers-dir $(ABI_HEADERS) --drop-private-types --no-corpus-path \
                --no-comp-dir-path --no-show-locs --no-elf-needed --type-id-style hash \
                --exported-interfaces-only

# Functions declared under GEM_EXPERIMENTAL may change between minor versions (gem.h), so both
# the baseline and the library's dump leave them out; the list comes from the header itself.
ABI_SUPPR := $(BUILD)/abi/experimental.suppr

$(ABI_SUPPR): $(wildcard $(ABI_HEADERS)/*.h) mk/hardening.mk
	@mkdir -p $(dir $@)
	@names=$$(sed -n '/^#ifdef GEM_EXPERIMENTAL/,/^#endif/p' $(ABI_HEADERS)/*.h | \
	    grep -o 'gem_[a-z0-9_]* *(' | tr -d ' (' | sort -u | paste -sd'|' -); \
	if [ -n "$$names" ]; then \
	    printf '[suppress_function]\n  symbol_name_regexp = ^(%s)$$\n  drop = yes\n' \
	        "$$names" > $@; \
	else : > $@; fi

abicheck: $(ABI_SHLIB) $(ABI_SUPPR)
	$(ABIDW) $(ABIDW_FLAGS) --suppressions $(ABI_SUPPR) --out-file $(BUILD)/abi/libgem.abi \
	    $(ABI_SHLIB)
	@$(ABIDIFF) $(ABI_BASELINE) $(BUILD)/abi/libgem.abi \
	    > $(BUILD)/abi/report.txt 2>&1; rc=$$?; \
	if [ $$((rc & 3)) -ne 0 ]; then \
	    cat $(BUILD)/abi/report.txt; echo "abicheck: abidiff failed (exit $$rc)"; exit 1; fi; \
	bad=$$(grep -E '[1-9][0-9]* (Removed|Changed)' $(BUILD)/abi/report.txt); \
	if [ $$((rc & 8)) -ne 0 ] || [ -n "$$bad" ]; then \
	    cat $(BUILD)/abi/report.txt; \
	    echo "abicheck: incompatible change against $(ABI_BASELINE) (exit $$rc)"; exit 1; fi; \
	if [ $$((rc & 4)) -ne 0 ]; then \
	    grep -E 'summary|Added|^  \[A\]' $(BUILD)/abi/report.txt; \
	    echo "abicheck: additions only, compatible (make abi-baseline records them)"; \
	else echo "abicheck: no ABI change against $(ABI_BASELINE)"; fi

abi-baseline: $(ABI_SHLIB) $(ABI_SUPPR)
	@mkdir -p $(dir $(ABI_BASELINE))
	$(ABIDW) $(ABIDW_FLAGS) --suppressions $(ABI_SUPPR) --out-file $(ABI_BASELINE) $(ABI_SHLIB)
	@echo "abi-baseline: wrote $(ABI_BASELINE) ($$(grep -c '<elf-symbol ' $(ABI_BASELINE)) symbols)"

# ---- ThreadSanitizer ------------------------------------------------------------------------
# Its own tree, like ASan's. gcc's TSan needs the address space layout it expects: where
# the kernel randomises more bits than it handles, the test reruns without ASLR.

TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
TSAN_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/tsan/obj/%.o)
TSAN_TEST  := $(BUILD)/tsan/test/test_threads

$(BUILD)/tsan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LIB_CFLAGS) $(TSAN_FLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/tsan/libgem.a: $(TSAN_OBJS) $(LIB_EXTRA_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(TSAN_TEST): test/test_threads.c test/testutil.c test/testutil.h $(BUILD)/tsan/libgem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(TSAN_FLAGS) -Itest -o $@ $< test/testutil.c $(BUILD)/tsan/libgem.a \
	    $(CMOCKA_LIBS) $(LIBS_ALL)

tsan: $(TSAN_TEST)
	@export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 $(TSAN_OPTIONS)"; \
	$(TSAN_TEST) > $(TSAN_TEST).log 2>&1; rc=$$?; \
	if grep -q 'unexpected memory mapping' $(TSAN_TEST).log && command -v setarch >/dev/null; then \
	    setarch "$$(uname -m)" -R $(TSAN_TEST) > $(TSAN_TEST).log 2>&1; rc=$$?; fi; \
	cat $(TSAN_TEST).log; \
	if [ $$rc -ne 0 ] || grep -q 'WARNING: ThreadSanitizer' $(TSAN_TEST).log; then \
	    echo "tsan: FAILED (exit $$rc)"; exit 1; fi; \
	echo "tsan: no data races reported"

-include $(FUZZ_OBJS:.o=.d) $(TSAN_OBJS:.o=.d)
