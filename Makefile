# Entry points for people and CI; CMake does the real work.
#   make run    build, then start a node on the embedded default config
#   make test   build, then run every test
# The first build installs the dependencies (scripts/setup: apt and npm).

BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
# ccache keys on absolute paths unless told the tree's root; with it, a fresh
# clone elsewhere (as in CI) reuses the objects an earlier build cached.
export CCACHE_BASEDIR := $(CURDIR)
# A config file for `make run`; empty runs on the embedded default.
CONFIG ?=

.PHONY: setup build run test bench clean

build: setup
	@if [ ! -f "$(BUILD_DIR)/CMakeCache.txt" ]; then \
	  cmake -S . -B "$(BUILD_DIR)" -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE); \
	fi
	cmake --build "$(BUILD_DIR)" -j $(JOBS)

setup:
	@scripts/setup

run: build
	"$(BUILD_DIR)/ferry" node $(if $(CONFIG),--config "$(CONFIG)")

test: build
	ctest --test-dir "$(BUILD_DIR)" --output-on-failure -j $(JOBS)

bench: build
	bench/run.sh "$(BUILD_DIR)"

clean:
	rm -rf "$(BUILD_DIR)"
