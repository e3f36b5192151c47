# tandem: `make serve` and `make test` are the Quickstart; both install what they need first.
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# The CUDA backend is built when nvcc is found (TANDEM_CUDA=AUTO); under CI=true it is required, so CI proves it
# compiles (the CUDA 13 toolkit is installed on every machine of this project) instead of skipping it silently.
CUDA_FLAGS = $(if $(filter true,$(CI)),-DTANDEM_CUDA=ON,)
# Sanitizer builds: optimised (the suite runs real models) with line tables for the reports; like Release, no
# NDEBUG. docs/reliability.md.
SAN_CMAKE_FLAGS = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1" -DTANDEM_CUDA=OFF

.PHONY: setup build build-asan build-tsan test test-asan test-tsan test-release serve bench clean format

setup:
	@scripts/setup

$(BUILD)/build.ninja $(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CUDA_FLAGS) $(CMAKE_FLAGS)

build: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

# Everything (library, tandem, tests) with ASan + UBSan.
build-asan: setup
	cmake -S . -B $(ASAN_BUILD) $(SAN_CMAKE_FLAGS) -DTANDEM_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# tandem and the concurrency tests (ctest label "concurrency") with TSan.
build-tsan: setup
	cmake -S . -B $(TSAN_BUILD) $(SAN_CMAKE_FLAGS) -DTANDEM_TSAN=ON $(CMAKE_FLAGS)
	cmake --build $(TSAN_BUILD) -j $(JOBS) --target concurrency_tests

# CI (.ci/run): the whole suite on the Release build (model, spec, engine and server tests also on the
# fake-device backend). The sanitizer runs (test-asan, test-tsan) are not in CI yet: their time on the CI
# machine has not been measured (docs/reliability.md).
test: test-release

test-asan: build-asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

test-tsan: build-tsan
	cd $(TSAN_BUILD) && ctest -L concurrency --output-on-failure -j $(JOBS)

# The suite on the Release build: faster, no sanitizers.
test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

serve: build
	$(BUILD)/bin/tandem serve --speculative-algorithm NEXTN

bench: build
	$(BUILD)/bin/tandem bench --model models/tandem-tiny

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
