# tandem: `make serve` and `make test` are the Quickstart; both install what they need first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: setup build build-asan test serve bench clean format

setup:
	@scripts/setup

$(BUILD)/build.ninja $(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: setup $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

build-asan: setup
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTANDEM_SANITIZE=ON
	cmake --build build-asan -j $(JOBS) --target tandem

test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

serve: build
	$(BUILD)/bin/tandem serve --speculative-algorithm NEXTN

bench: build
	$(BUILD)/bin/tandem bench --model models/tandem-tiny

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) build-asan
