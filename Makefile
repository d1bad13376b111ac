# Entry points for people and CI; CMake does the real work.
#   make run    build, then start a node on the embedded default config
#   make test   build, then run every test (the fuzzers too, briefly, when
#               clang is installed)
#   make test SANITIZE=address,undefined
#               the same with every target built under those sanitizers, in
#               build-asan
#   make test-node SANITIZE=address,undefined
#               only the node binary sanitized, under the normal build's
#               integration, interop and app tests (much quicker)
#   make package
#               build the .deb (binary, /etc/ferry/ferry.toml, systemd unit)
#   make fuzz   run each fuzzer for FUZZ_SECONDS; new inputs go to
#               build-fuzz/corpus, crashes to build-fuzz/crashes
# The first build installs the dependencies (scripts/setup: apt and npm).

SANITIZE ?=
BUILD_DIR ?= $(if $(SANITIZE),build-asan,build)
# Sanitizer reports want line numbers; -O1 with line tables only keeps the
# instrumented build of the whole tree within reach of a 2-core machine.
BUILD_TYPE ?= $(if $(SANITIZE),RelWithDebInfo,Release)
SANITIZE_OPT ?= -O1 -g1
JOBS ?= $(shell nproc)
# ccache keys on absolute paths unless told the tree's root; with it, a fresh
# clone elsewhere (as in CI) reuses the objects an earlier build cached.
export CCACHE_BASEDIR := $(CURDIR)
# A config file for `make run`; empty runs on the embedded default.
CONFIG ?=

.PHONY: setup build run test test-node bench package fuzz clean

build: setup
	@if [ ! -f "$(BUILD_DIR)/CMakeCache.txt" ] || [ -n "$(SANITIZE)" ]; then \
	  cmake -S . -B "$(BUILD_DIR)" -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	    $(if $(SANITIZE),-DFERRY_SANITIZE=$(SANITIZE) "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$(SANITIZE_OPT)"); \
	fi
	cmake --build "$(BUILD_DIR)" -j $(JOBS)

setup:
	@scripts/setup

run: build
	"$(BUILD_DIR)/ferry" node $(if $(CONFIG),--config "$(CONFIG)")

# Under sanitizers the first finding fails its test. Leaks count too (every
# test process exits cleanly, so what is left allocated is a leak);
# scripts/lsan.supp names the few leaks of libraries we cannot fix.
test: export ASAN_OPTIONS = detect_leaks=1:check_initialization_order=1:strict_init_order=1
test: export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
test: export LSAN_OPTIONS = suppressions=$(CURDIR)/scripts/lsan.supp:print_suppressions=0
test: build
	ctest --test-dir "$(BUILD_DIR)" --output-on-failure -j $(JOBS)

# The sanitized node under the normal build's tests that run it (integration,
# interop, app): only the `ferry` binary is built with SANITIZE, a fraction of
# the full sanitized build.
test-node: export ASAN_OPTIONS = detect_leaks=1:check_initialization_order=1:strict_init_order=1
test-node: export UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1
test-node: export LSAN_OPTIONS = suppressions=$(CURDIR)/scripts/lsan.supp:print_suppressions=0
test-node: export FERRY_TEST_BINARY = $(CURDIR)/build-asan/ferry
test-node: setup
	@test -n "$(SANITIZE)" || { echo "make test-node needs SANITIZE=address,undefined (or another list)" >&2; exit 2; }
	$(MAKE) build SANITIZE= BUILD_DIR=build
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DFERRY_SANITIZE=$(SANITIZE) "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$(SANITIZE_OPT)"
	cmake --build build-asan --target ferry -j $(JOBS)
	ctest --test-dir build --output-on-failure -j $(JOBS) -R '^(integration|interop|app)\.'

bench: build
	bench/run.sh "$(BUILD_DIR)"

package: build
	cd "$(BUILD_DIR)" && cpack -G DEB
	@ls "$(BUILD_DIR)"/ferry_*.deb

# Each fuzzer runs FUZZ_SECONDS on its committed seeds (fuzz/corpus/<name>)
# plus what earlier runs found (build-fuzz/corpus/<name>, where new inputs
# go); a crash stops the run and leaves its input in build-fuzz/crashes.
FUZZ_SECONDS ?= 60
FUZZ_DIR ?= build-fuzz
fuzz: setup
	@if [ ! -f "$(FUZZ_DIR)/CMakeCache.txt" ]; then \
	  CXX=clang++ cmake -S . -B "$(FUZZ_DIR)" -G Ninja \
	    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFERRY_FUZZ=ON; \
	fi
	cmake --build "$(FUZZ_DIR)" -j $(JOBS)
	fuzz/run.sh "$(FUZZ_DIR)" $(FUZZ_SECONDS)

clean:
	rm -rf "$(BUILD_DIR)" "$(FUZZ_DIR)"
