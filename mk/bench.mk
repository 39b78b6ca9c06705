# Benchmarks: every bench/*.c is a program built against the static library. `make bench`
# builds and runs them all (not part of `make check`); each prints its own tables.
# Prerequisites name the library by its path: this file is read before the Makefile sets
# STLIB, and a rule's prerequisites are expanded as it is read.
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
BENCH_ORDER ?= bench_speed bench_gem bench_real bench_beyond bench_figures

$(BUILD)/bench/%: bench/%.c $(BUILD)/libgem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -O3 -o $@ $< $(STLIB) $(LIBS_ALL)

# bench_figures draws its pictures with the gem tool's SVG writer.
$(BUILD)/bench/bench_figures: bench/bench_figures.c tools/svg.c tools/svg.h $(BUILD)/libgem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itools -O3 -o $@ bench/bench_figures.c tools/svg.c $(STLIB) $(LIBS_ALL)

bench: all $(BENCH_BINS)
	@for b in $(BENCH_ORDER); do \
	    if [ -x $(BUILD)/bench/$$b ]; then echo "==== $$b"; $(BUILD)/bench/$$b || exit 1; fi; \
	done
