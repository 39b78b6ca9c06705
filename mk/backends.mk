# mk/backends.mk - optional profiling backends, found at build time (included by the Makefile).
#
#   CUDA   nvcc, the CUDA runtime and cuBLAS under CUDA_HOME (default /usr/local/cuda; cuBLAS
#          may live elsewhere: CUBLAS_INC, CUBLAS_LIBDIR): libgem/cuda/*.cu are built for
#          GEM_CUDA_ARCHS, and GEM_HAVE_CUDA is defined.
#   NCCL   nccl.h and libnccl (NCCL_HOME/{include,lib} when set, else under CUDA_HOME, or the
#          system's), with CUDA: GEM_HAVE_NCCL.
#   hwloc  pkg-config hwloc: GEM_HAVE_HWLOC (library and `gem topo`).
#   MPI    mpicc --showme (Open MPI): only the gem tool uses MPI (`mpirun -np N gem profile`),
#          so tools/cmd_profile.c alone gets GEM_HAVE_MPI and the gem binary links libmpi.
#
# Leave one out with WITH_CUDA=0, WITH_NCCL=0, WITH_HWLOC=0 or WITH_MPI=0; its entry points
# then return GEM_ERR_NOT_SUPPORTED and say what is missing.
#
# libgem links the CUDA runtime (and NCCL) dynamically (rpath CUDA_HOME/lib64), loads cuBLAS
# with dlopen when it profiles, and never links the driver (libcuda): the runtime loads the
# driver itself when asked, so a libgem built with CUDA still loads, and reports
# GEM_ERR_NO_DEVICE, on a machine without a GPU driver.

CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CUBLAS_INC    ?= $(CUDA_HOME)/include
CUBLAS_LIBDIR ?= $(CUDA_HOME)/lib64
NCCL_HOME ?=
WITH_CUDA ?= auto
WITH_NCCL ?= auto
WITH_HWLOC ?= auto
WITH_MPI  ?= auto
# Ampere (A100), Ada (L40, L4), Hopper (H100, H200): machine code (SASS) for each, and PTX of
# the last for newer GPUs. An H200 (sm_90) runs the sm_90 SASS, no JIT at start-up.
GEM_CUDA_ARCHS ?= 80 89 90
MPICC     ?= mpicc

GEM_BACKENDS_BUILT := sim callback

# ---- CUDA -----------------------------------------------------------------------------------
ifneq ($(WITH_CUDA),0)
# cuBLAS is loaded with dlopen (by soname, then from CUBLAS_LIBDIR), never linked: its headers
# and any libcublas.so* (a runtime-only install has no unversioned link) are enough.
HAVE_CUDA := $(shell test -x '$(NVCC)' && test -f '$(CUDA_HOME)/include/cuda_runtime_api.h' \
    && test -f '$(CUBLAS_INC)/cublas_v2.h' && test -e '$(CUDA_HOME)/lib64/libcudart.so' \
    && ls '$(CUBLAS_LIBDIR)'/libcublas.so* >/dev/null 2>&1 && echo 1)
endif

ifeq ($(HAVE_CUDA),1)
# Keep only the architectures this nvcc knows (nvcc --list-gpu-arch).
CUDA_KNOWN_ARCHS := $(shell '$(NVCC)' --list-gpu-arch 2>/dev/null)
CUDA_ARCHS := $(foreach a,$(GEM_CUDA_ARCHS),$(if $(filter compute_$(a),$(CUDA_KNOWN_ARCHS)),$(a)))
ifeq ($(strip $(CUDA_ARCHS)),)
$(warning mk/backends.mk: $(NVCC) supports none of GEM_CUDA_ARCHS=$(GEM_CUDA_ARCHS); building without CUDA)
HAVE_CUDA :=
endif
endif

ifeq ($(HAVE_CUDA),1)
CUDA_LAST_ARCH := $(lastword $(CUDA_ARCHS))
CUDA_GENCODE := $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_$(CUDA_LAST_ARCH),code=compute_$(CUDA_LAST_ARCH)
NVCC_FLAGS ?= -O2 -g
# Architectures compile in parallel threads (test/gpu/check.sh uses 0: one per core).
NVCC_THREADS ?= 2
CUDA_SRCS := $(sort $(wildcard libgem/cuda/*.cu))
CUBLAS_NVCC_INC := $(if $(filter-out $(CUDA_HOME)/include,$(CUBLAS_INC)),-isystem '$(CUBLAS_INC)')
CUDA_OBJS := $(CUDA_SRCS:%.cu=$(BUILD)/obj/%.o)
# -isystem: the CUDA and NCCL headers do not pass our warnings (nccl.h lacks prototypes).
BACKEND_CFLAGS += -DGEM_HAVE_CUDA -isystem $(CUDA_HOME)/include
# nvcc's kernel stubs use C++ runtime helpers (static guards): libstdc++. cuBLAS is not
# linked: probe.cu loads it with dlopen when a profile is measured (linking it costs every
# libgem program half a second of start-up relocations).
BACKEND_LIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lstdc++ -ldl
LIB_EXTRA_OBJS += $(CUDA_OBJS)
GEM_BACKENDS_BUILT += cuda

# Host code hidden like libgem's C (-fvisibility=hidden) and position-independent; the
# version script keeps everything but gem_* local anyway.
$(BUILD)/obj/libgem/cuda/%.o: libgem/cuda/%.cu $(wildcard libgem/cuda/*.h) libgem/internal.h \
                              include/gem.h
	@mkdir -p $(dir $@)
	'$(NVCC)' -std=c++17 $(NVCC_FLAGS) --threads $(NVCC_THREADS) $(CUDA_GENCODE) \
	    -Iinclude -Ilibgem -Ilibgem/cuda $(CUBLAS_NVCC_INC) \
	    -DGEM_CUDA_LIBDIR='"$(CUBLAS_LIBDIR)"' \
	    -Xcompiler -fPIC,-fvisibility=hidden,-Wall -c $< -o $@
endif

# ---- NCCL -----------------------------------------------------------------------------------
ifeq ($(HAVE_CUDA),1)
ifneq ($(WITH_NCCL),0)
ifneq ($(NCCL_HOME),)
# An NCCL of its own (a pip wheel's has only libnccl.so.2: link that file by name).
HAVE_NCCL := $(shell test -f '$(NCCL_HOME)/include/nccl.h' \
    && ls '$(NCCL_HOME)'/lib/libnccl.so* >/dev/null 2>&1 && echo 1)
NCCL_LINK := $(if $(wildcard $(NCCL_HOME)/lib/libnccl.so),-lnccl,-l:libnccl.so.2)
NCCL_FLAGS := -isystem $(NCCL_HOME)/include
NCCL_LIBS := -L$(NCCL_HOME)/lib -Wl,-rpath,$(NCCL_HOME)/lib $(NCCL_LINK)
else
HAVE_NCCL := $(shell { test -f '$(CUDA_HOME)/include/nccl.h' || test -f /usr/include/nccl.h; } \
    && { test -e '$(CUDA_HOME)/lib64/libnccl.so' || ls /usr/lib/*/libnccl.so >/dev/null 2>&1; } \
    && echo 1)
NCCL_LIBS := -lnccl
endif
endif
endif
ifeq ($(HAVE_NCCL),1)
BACKEND_CFLAGS += -DGEM_HAVE_NCCL $(NCCL_FLAGS)
BACKEND_LIBS   += $(NCCL_LIBS)
GEM_BACKENDS_BUILT += nccl
endif

# ---- hwloc ----------------------------------------------------------------------------------
ifneq ($(WITH_HWLOC),0)
HAVE_HWLOC := $(shell $(PKG_CONFIG) --exists hwloc 2>/dev/null && echo 1)
endif
ifeq ($(HAVE_HWLOC),1)
HWLOC_CFLAGS := $(shell $(PKG_CONFIG) --cflags hwloc)
HWLOC_LIBS   := $(shell $(PKG_CONFIG) --libs hwloc)
BACKEND_CFLAGS += -DGEM_HAVE_HWLOC $(HWLOC_CFLAGS)
BACKEND_LIBS   += $(HWLOC_LIBS)
TOOL_LIBS      += $(HWLOC_LIBS)
GEM_BACKENDS_BUILT += hwloc
endif

# ---- MPI (the gem tool only) ------------------------------------------------------------------
ifneq ($(WITH_MPI),0)
MPI_CFLAGS := $(shell $(MPICC) --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell $(MPICC) --showme:link 2>/dev/null)
HAVE_MPI := $(if $(strip $(MPI_LIBS)),1)
endif
ifeq ($(HAVE_MPI),1)
TOOL_LIBS += $(MPI_LIBS)
GEM_BACKENDS_BUILT += mpi(tool)
# An explicit rule (it wins over the pattern rule) gives this one object MPI's flags.
$(BUILD)/obj/tools/cmd_profile.o: tools/cmd_profile.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(LIB_CFLAGS) $(MPI_CFLAGS) -DGEM_HAVE_MPI $(DEPFLAGS) -c $< -o $@
CHECK_EXTRA += check-mpi
endif

CHECK_EXTRA += check-backends

# ---- checks ---------------------------------------------------------------------------------
.PHONY: check-backends check-mpi gpu-check gpu-check-dry backends

backends:
	@echo "backends built: $(GEM_BACKENDS_BUILT)"

# The CLI side of the backends: the emulated node works with no options, --backend cuda
# fails cleanly here (no GPU: "no CUDA device or driver"; no CUDA: "built without CUDA") and
# writes nothing, and `gem topo` describes this host.
# Prerequisites name $(BUILD)/... themselves: the Makefile includes this file before it sets
# GEM_BIN and STLIB, and a prerequisite list is expanded where it is read (a recipe is not).
check-backends: $(BUILD)/gem
	@set -e; d=$(BUILD)/check-backends; rm -rf $$d; mkdir -p $$d; \
	$(GEM_BIN) profile -o $$d/sim.json; grep -q '"gem-profile"' $$d/sim.json; \
	if $(GEM_BIN) profile --backend cuda -o $$d/cuda.json 2>$$d/cuda.err; then \
	    if [ -s $$d/cuda.json ]; then echo "check-backends: gem profile --backend cuda: a GPU is here, profiled"; \
	    else echo "check-backends: --backend cuda succeeded without writing" >&2; exit 1; fi; \
	else \
	    test ! -e $$d/cuda.json || { echo "check-backends: --backend cuda failed but left a file" >&2; exit 1; }; \
	    grep -Eq 'no CUDA device or driver was found|built without CUDA' $$d/cuda.err \
	        || { echo "check-backends: unexpected message:" >&2; cat $$d/cuda.err >&2; exit 1; }; \
	    echo "check-backends: gem profile --backend cuda: $$(cat $$d/cuda.err)"; \
	fi; \
	if $(GEM_BIN) topo > $$d/topo.txt 2>$$d/topo.err; then grep -q '^host:' $$d/topo.txt; \
	else grep -q 'built without hwloc' $$d/topo.err; fi; \
	echo "check-backends: gem profile (sim), --backend cuda and gem topo behave"

check-mpi: $(BUILD)/gem
	@sh test/mpi/test_mpi.sh $(BUILD)

# The GPU check (test/gpu/check.sh) runs this C program, which reads libgem's internals.
$(BUILD)/test/gpu_check: test/gpu/check_gpu.c test/gpu/model.h $(BUILD)/libgem.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(STLIB) $(LIBS_ALL)

gpu-check:
	@sh test/gpu/check.sh $(BUILD)

# The GPU check's dry run (no GPU: model devices through the same runner, sampler, checks and
# tables; a few seconds, and the same numbers every time) keeps check.sh and check_gpu.c
# working between the rare runs on a GPU.
gpu-check-dry: $(BUILD)/test/gpu_check $(BUILD)/gem
	@CHECK_DRY_RUN=1 sh test/gpu/check.sh $(BUILD) >$(BUILD)/gpu-check-dry.log 2>&1 \
	    || { cat $(BUILD)/gpu-check-dry.log; echo "gpu-check-dry: FAILED" >&2; exit 1; }
	@echo "gpu-check-dry: $$(tail -n 1 $(BUILD)/gpu-check-dry.log) (log in $(BUILD)/gpu-check-dry.log)"
CHECK_EXTRA += gpu-check-dry
