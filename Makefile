# libgem - top-level build. Out-of-tree into build/ (BUILD=...).
#
#   make            library (shared + static), gem CLI, pkg-config file
#   make demo       set-up check, build, and the main job on an emulated 4-GPU node
#   make check      set-up check, build, the whole test suite (also under ASan+UBSan)
#   make install    PREFIX=/usr/local DESTDIR=
#
# Backends found at build time: CUDA and NCCL (CUDA_HOME, default /usr/local/cuda) and hwloc
# (pkg-config). Missing ones are left out; their entry points return GEM_ERR_NOT_SUPPORTED.

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
CXX      ?= c++
PKG_CONFIG ?= pkg-config

VERSION      := 1.0.0
SOVERSION    := 1

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT      ?= -O2 -g
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -Ilibgem
LIB_CFLAGS  := -fPIC -fvisibility=hidden
DEPFLAGS     = -MMD -MP

JANSSON_CFLAGS := $(shell $(PKG_CONFIG) --cflags jansson 2>/dev/null)
JANSSON_LIBS   := $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null || echo -ljansson)
CMOCKA_LIBS    := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

BACKEND_CFLAGS :=
BACKEND_LIBS   :=
LIB_SRCS := $(sort $(wildcard libgem/*.c))
LIB_EXTRA_OBJS :=

# Optional parts add themselves here (CUDA/NCCL/hwloc/MPI, bindings, hardening).
-include mk/*.mk

CFLAGS_ALL := $(BASE_CFLAGS) $(JANSSON_CFLAGS) $(BACKEND_CFLAGS) $(OPT) $(CFLAGS)
LIBS_ALL   := $(JANSSON_LIBS) $(BACKEND_LIBS) -lpthread -lm

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB_EXTRA_OBJS)
SONAME    := libgem.so.$(SOVERSION)
SHLIB     := $(BUILD)/libgem.so.$(VERSION)
STLIB     := $(BUILD)/libgem.a
GEM_BIN   := $(BUILD)/gem
TOOL_SRCS := $(sort $(wildcard tools/*.c))
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/obj/%.o)

TEST_SRCS := $(sort $(wildcard test/test_*.c))
TEST_BINS := $(TEST_SRCS:test/%.c=$(BUILD)/test/%)
TEST_UTIL := test/testutil.c

# Sanitizer build of the library and tests: a separate tree under $(BUILD)/asan.
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/asan/obj/%.o)
ASAN_STLIB := $(BUILD)/asan/libgem.a
ASAN_TESTS := $(TEST_SRCS:test/%.c=$(BUILD)/asan/test/%)

.PHONY: all lib demo check test test-asan deps install uninstall clean headercheck symcheck \
        check-extra bench
.DEFAULT_GOAL := all

all: lib $(GEM_BIN) $(BUILD)/libgem.pc

lib: $(SHLIB) $(STLIB)

deps:
	@sh tools/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LIB_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(SHLIB): $(LIB_OBJS) libgem/libgem.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=libgem/libgem.map \
	    -Wl,--no-undefined -o $@ $(LIB_OBJS) $(LIBS_ALL) $(LDFLAGS)
	ln -sf libgem.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libgem.so

$(STLIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(GEM_BIN): $(TOOL_OBJS) $(SHLIB)
	$(CC) -o $@ $(TOOL_OBJS) -L$(BUILD) -lgem -Wl,-rpath,'$$ORIGIN:$$ORIGIN/../lib' $(JANSSON_LIBS) $(TOOL_LIBS) -lm $(LDFLAGS)

$(BUILD)/libgem.pc: libgem.pc.in Makefile
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@PRIVATE_LIBS@|$(strip $(LIBS_ALL))|g' $< > $@

# ---- tests ----------------------------------------------------------------------------------

$(BUILD)/test/%: test/%.c $(TEST_UTIL) test/testutil.h $(STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itest -o $@ $< $(TEST_UTIL) $(STLIB) $(CMOCKA_LIBS) $(LIBS_ALL)

$(BUILD)/asan/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LIB_CFLAGS) $(ASAN_FLAGS) $(DEPFLAGS) -c $< -o $@

$(ASAN_STLIB): $(ASAN_OBJS) $(LIB_EXTRA_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/asan/test/%: test/%.c $(TEST_UTIL) test/testutil.h $(ASAN_STLIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(ASAN_FLAGS) -Itest -o $@ $< $(TEST_UTIL) $(ASAN_STLIB) $(CMOCKA_LIBS) $(LIBS_ALL)

test: $(TEST_BINS) $(GEM_BIN)
	@sh test/run_tests.sh $(TEST_BINS)

test-asan: $(ASAN_TESTS) $(GEM_BIN)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    sh test/run_tests.sh $(ASAN_TESTS)

# The header compiles alone as C99 and as C++.
headercheck:
	@mkdir -p $(BUILD)/headercheck
	printf '#include "gem.h"\nint main(void) { return gem_version() == 0; }\n' > $(BUILD)/headercheck/c99.c
	$(CC) -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude -c $(BUILD)/headercheck/c99.c -o $(BUILD)/headercheck/c99.o
	printf '#define GEM_EXPERIMENTAL\n#include "gem.h"\nint main() { return gem_version() == 0; }\n' > $(BUILD)/headercheck/cxx.cpp
	$(CXX) -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude -c $(BUILD)/headercheck/cxx.cpp -o $(BUILD)/headercheck/cxx.o
	@echo "headercheck: gem.h compiles alone as C99 and C++11"

# Only gem_* symbols are exported, and the soname is right.
symcheck: $(SHLIB)
	@bad=$$(nm -D --defined-only $(SHLIB) | awk '$$2 != "A" {print $$3}' | grep -v '^gem_' || true); \
	if [ -n "$$bad" ]; then echo "symcheck: non-gem symbols exported:"; echo "$$bad"; exit 1; fi; \
	readelf -d $(SHLIB) | grep -q 'SONAME.*\[$(SONAME)\]' || { echo "symcheck: soname is not $(SONAME)"; exit 1; }; \
	echo "symcheck: $$(nm -D --defined-only $(SHLIB) | grep -c ' T gem_') gem_* functions exported, soname $(SONAME)"

# CHECK_EXTRA collects the checks that optional parts add (CLI, bindings, examples, ...).
check: deps
	@$(MAKE) --no-print-directory all headercheck symcheck $(TEST_BINS) $(ASAN_TESTS)
	@$(MAKE) --no-print-directory check-extra
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test

check-extra: all
	@for t in $(CHECK_EXTRA); do $(MAKE) --no-print-directory $$t || exit 1; done

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh $(BUILD)

# ---- install --------------------------------------------------------------------------------

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/gem.h $(DESTDIR)$(PREFIX)/include/gem.h
	install -m 755 $(SHLIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libgem.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libgem.so
	install -m 644 $(STLIB) $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@PRIVATE_LIBS@|$(strip $(LIBS_ALL))|g' libgem.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/libgem.pc
	install -m 755 $(GEM_BIN) $(DESTDIR)$(PREFIX)/bin/gem

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libgem.so* $(DESTDIR)$(PREFIX)/lib/libgem.a \
	    $(DESTDIR)$(PREFIX)/include/gem.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/libgem.pc \
	    $(DESTDIR)$(PREFIX)/bin/gem

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(TOOL_OBJS:.o=.d)
