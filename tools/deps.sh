#!/bin/sh
# Checks the system packages libgem needs to build and test; installs the missing ones with
# apt-get when run as root on Debian/Ubuntu, otherwise names them and fails.
# Usage: sh tools/deps.sh [--quiet]
set -u
missing=""
need() { # need PACKAGE PROBE...
    pkg=$1; shift
    if ! "$@" >/dev/null 2>&1; then missing="$missing $pkg"; fi
}
have() { command -v "$1"; }
pc() { pkg-config --exists "$1"; }

need build-essential have cc
need build-essential have make
need g++ have c++
need pkg-config have pkg-config
need libjansson-dev pc jansson
need libcmocka-dev pc cmocka
need libhwloc-dev pc hwloc
need libopenmpi-dev have mpicc
need openmpi-bin have mpirun
need python3 have python3
need cargo have cargo
need valgrind have valgrind
need abigail-tools have abidiff
need clang have clang
need libclang-rt-dev sh -c 'ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a'
need binutils have readelf

missing=$(echo "$missing" | tr ' ' '\n' | sort -u | tr '\n' ' ' | sed 's/^ *//; s/ *$//')
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null \
        || { echo "deps: apt-get install $missing failed" >&2; exit 1; }
    exit 0
fi
echo "deps: missing packages: $missing" >&2
echo "deps: install them with: sudo apt-get install $missing" >&2
exit 1
