# WebEncode — the two commands of the README are `make up` (run the platform
# locally) and `make test` (run every test). Everything else is a helper.
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all build deps asan up down status demo test test-fast bench clean install-migrate upgrade backup

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/build.ninja: CMakeLists.txt
	CC=clang cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWE_SANITIZE=ON \
	  -DWE_BIN_DIR=$(CURDIR)/$(ASAN_BUILD)/bin -DWE_PLUGIN_OUT_DIR=$(CURDIR)/$(ASAN_BUILD)/plugins >/dev/null

asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) -j $(JOBS)

# The minimal deployment on this machine: PostgreSQL, NATS, kernel, one worker.
up: build
	scripts/stack up

# The platform's main job: a generated sample through the whole pipeline.
demo: build
	scripts/demo

down:
	scripts/stack down

status:
	scripts/stack status

# All tests, in the normal build and again under ASan + UBSan.
test: build asan
	cd $(BUILD) && ctest --output-on-failure -j 2
	cd $(ASAN_BUILD) && ctest --output-on-failure -j 2

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j 2

bench: build
	bench/http.sh

# The runbook's upgrade procedure on the local stack: build, then stop the
# kernel, migrate, start it, restart each worker after draining it
# (scripts/upgrade --help; UPGRADE_ARGS="--new-bin DIR --new-plugins DIR ...").
upgrade: build
	scripts/upgrade $(UPGRADE_ARGS)

# pg_dump -Fc of DATABASE_URL into var/backups/ (scripts/backup --help).
backup:
	scripts/backup $(BACKUP_ARGS)

# The runbook calls `migrate …`: put bin/migrate on PATH under that name.
install-migrate: build
	install -m 755 bin/migrate $(or $(PREFIX),/usr/local)/bin/migrate

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) bin
