# The two set-up commands of the README:
#   make run    installs what is missing, builds, starts warden on its embedded defaults
#   make test   installs what is missing, builds and runs every test, normal and ASan+UBSan
SHELL := /bin/bash
BUILD ?= build
BUILD_SAN ?= build-san
JOBS ?= $(shell nproc)
PACKAGES := g++ cmake ninja-build pkg-config git curl sqlite3 libsqlite3-dev libssl-dev \
  libyaml-cpp-dev libre2-dev libcpp-httplib-dev nlohmann-json3-dev libcli11-dev catch2 \
  libbenchmark-dev wrk python3
WARDEN_ARGS ?=

.PHONY: deps build build-san run test test-normal test-san clean

deps:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq $$missing; \
	fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

$(BUILD_SAN)/build.ninja:
	cmake -S . -B $(BUILD_SAN) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWARDEN_SANITIZE=ON -DWARDEN_BENCH=OFF

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

build-san: deps $(BUILD_SAN)/build.ninja
	cmake --build $(BUILD_SAN) -j $(JOBS)

run: build
	$(BUILD)/warden serve $(WARDEN_ARGS)

test-normal: build
	cd $(BUILD) && ctest --output-on-failure -j 2

test-san: build-san
	cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j 2

test: test-normal test-san

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
