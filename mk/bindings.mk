# mk/bindings.mk - Python and Rust bindings and the examples (included by the Makefile).
#
#   make python-test    unittest suite of bindings/python against $(BUILD)/libgem.so.1, and an
#                       offline `pip install` of the package into $(BUILD)/python (when pip exists)
#   make rust-test      cargo test --offline of bindings/rust (gem-sys and gem), target directory
#                       $(BUILD)/rust; with the experimental part (--features experimental)
#                       when the library exports gem_remap (GEM_RUST_FEATURES overrides)
#   make examples-test  builds and runs examples/engine.c (against the build tree, and against a
#                       copy installed with `make install PREFIX=$(BUILD)/prefix` through
#                       pkg-config), examples/pipeline.py and the Rust pipeline example
#
# All three are part of `make check` through CHECK_EXTRA. They need the gem tool too: the
# round-trip tests compare the bindings' SGLang export with `gem import/map/export`.

CHECK_EXTRA += python-test rust-test examples-test

.PHONY: python-test rust-test examples-test

BIND_PYTHON ?= python3
BIND_CARGO  ?= cargo
# Expanded when rust-test runs, after `all` has built the library.
GEM_RUST_FEATURES ?= $(if $(shell nm -D --defined-only $(BUILD)/$(SONAME) 2>/dev/null | \
                         grep -w gem_remap),--features experimental)
BIND_ABS    = $(abspath $(BUILD))
# What the bindings' tests need to find the library under test and the gem tool.
BIND_ENV    = GEM_LIBRARY=$(BIND_ABS)/$(SONAME) GEM_CLI=$(BIND_ABS)/gem

python-test: all
	cd bindings/python && $(BIND_ENV) $(BIND_PYTHON) -m unittest discover -s tests -v
	@if $(BIND_PYTHON) -m pip --version >/dev/null 2>&1; then \
	    rm -rf $(BUILD)/python && \
	    PIP_ROOT_USER_ACTION=ignore $(BIND_PYTHON) -m pip install --quiet --no-index --disable-pip-version-check \
	        --target $(BUILD)/python bindings/python && \
	    cd / && PYTHONPATH=$(BIND_ABS)/python $(BIND_ENV) $(BIND_PYTHON) -c \
	        'import gem, sys; assert gem.__file__.startswith(sys.argv[1]), gem.__file__; print("python-test: pip install bindings/python (offline) works:", gem.__file__, gem.version_string())' \
	        $(BIND_ABS)/python || exit 1; \
	else echo "python-test: no pip for $(BIND_PYTHON); offline install check left out"; fi

# CARGO_TARGET_DIR keeps target/ out of the source tree. gem-sys links $(BUILD)'s library and
# sets an rpath to it; LD_LIBRARY_PATH is there for doc tests, which get no rpath.
BIND_CARGO_ENV = CARGO_TARGET_DIR=$(BIND_ABS)/rust GEM_LIBRARY_DIR=$(BIND_ABS) \
                 LD_LIBRARY_PATH=$(BIND_ABS)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} $(BIND_ENV)

rust-test: all
	cd bindings/rust && $(BIND_CARGO_ENV) $(BIND_CARGO) test --offline $(GEM_RUST_FEATURES)
	@# The experimental part is type-checked even when the library lacks it (nothing links).
	cd bindings/rust && $(BIND_CARGO_ENV) $(BIND_CARGO) check --offline --quiet --all-targets \
	    --features experimental

examples-test: all
	@mkdir -p $(BUILD)/examples
	$(CC) -std=c11 -Wall -Wextra -Werror -Iinclude -o $(BUILD)/examples/engine examples/engine.c \
	    -L$(BUILD) -lgem -Wl,-rpath,$(BIND_ABS)
	$(BUILD)/examples/engine
	@echo "examples-test: engine.c against an installed copy (pkg-config)"
	rm -rf $(BUILD)/prefix
	$(MAKE) --no-print-directory install PREFIX=$(BIND_ABS)/prefix >/dev/null
	@# --define-variable: $(BUILD)/libgem.pc keeps the PREFIX of the `make all` that wrote it.
	PKG_CONFIG_PATH=$(BIND_ABS)/prefix/lib/pkgconfig; export PKG_CONFIG_PATH; \
	flags=$$($(PKG_CONFIG) --define-variable=prefix=$(BIND_ABS)/prefix --cflags --libs libgem) && \
	echo "pkg-config libgem: $$flags" && \
	$(CC) -std=c11 -Wall -Wextra -Werror -o $(BUILD)/examples/engine-installed examples/engine.c $$flags && \
	LD_LIBRARY_PATH=$(BIND_ABS)/prefix/lib $(BUILD)/examples/engine-installed --steps 32 >/dev/null && \
	! ldd $(BUILD)/examples/engine-installed | grep -q '$(BIND_ABS)/libgem' && \
	echo "examples-test: installed engine ran with $(BIND_ABS)/prefix/lib/$(SONAME)"
	PYTHONPATH=bindings/python $(BIND_ENV) $(BIND_PYTHON) examples/pipeline.py \
	    --out $(BUILD)/examples/pipeline-py.json
	cd bindings/rust && $(BIND_CARGO_ENV) $(BIND_CARGO) run --offline --quiet --example pipeline \
	    -- --out $(BIND_ABS)/examples/pipeline-rs.json
	@cmp $(BUILD)/examples/pipeline-py.json $(BUILD)/examples/pipeline-rs.json && \
	    echo "examples-test: the Python and Rust pipelines exported the same SGLang map"
