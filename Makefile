# Entry points for people and CI. `make` builds build/prebuilds; `make test` runs the
# whole suite twice (plain, then under ASan+UBSan), PostgreSQL included; `make demo`
# shows a reconcile on a small SQLite database. Missing Debian packages are installed
# with apt-get when run as root.
BUILD      ?= build
ASAN_BUILD ?= build-asan
DEMO_DB    ?= $(BUILD)/demo.db
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_OPTS ?=

# Debian packages the build, the tests and the demo need.
DEPS = gcc make cmake pkg-config libpq-dev libsqlite3-dev libjansson-dev libcmocka-dev \
       postgresql postgresql-contrib sqlite3 jq \
       libmicrohttpd-dev libsystemd-dev prometheus scdoc curl socat systemd man-db \
       pgbouncer

PREBUILDS = $(BUILD)/prebuilds

.PHONY: all build deps test test-plain test-asan demo clean format format-check \
        install uninstall package package-check

all: build

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)" >&2; \
	    exit 1; \
	  fi; \
	fi

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPB_WERROR=ON -DPB_TESTS=ON $(CMAKE_OPTS)
	cmake --build $(BUILD) -j $(JOBS)

test: test-plain test-asan

test-plain: build
	cd $(BUILD) && ctest --output-on-failure

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPB_SANITIZE=ON -DPB_WERROR=ON -DPB_TESTS=ON $(CMAKE_OPTS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure

demo: build
	@rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	@echo "== prebuilds init"
	@$(PREBUILDS) --db sqlite:$(DEMO_DB) init
	@echo "== prebuilds seed: 12 organizations, half with prebuilds, half of those drifted"
	@$(PREBUILDS) --db sqlite:$(DEMO_DB) seed --orgs 12 --templates-per-org 2 \
	  --versions-per-template 2 --presets-per-version 2 --prebuilds-fraction 0.5 --drift-fraction 0.5
	@echo "== prebuilds status (before)"
	@$(PREBUILDS) --db sqlite:$(DEMO_DB) status
	@echo "== prebuilds reconcile"
	@$(PREBUILDS) --db sqlite:$(DEMO_DB) reconcile
	@echo "== prebuilds status (after)"
	@$(PREBUILDS) --db sqlite:$(DEMO_DB) status
	@echo "== prebuilds reconcile (converged: one statement)"
	@$(PREBUILDS) --db sqlite:$(DEMO_DB) reconcile

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# ---- installing and packaging ----
# `make install` installs build/ under PREFIX with `cmake --install` (DESTDIR stages it
# elsewhere): binary, libprebuilds.so.0 and .a, headers, prebuilds.pc, man pages, the
# systemd unit (PB_SYSTEMD_UNITDIR, default lib/systemd/system under PREFIX, via
# CMAKE_OPTS) and the example configuration. `make uninstall` removes what every
# `make install` since the last uninstall put there.
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALLED = $(abspath $(BUILD))/installed-files.txt
PACKAGE_DEPS = build-essential debhelper dpkg-dev fakeroot lintian systemd

install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"
	@sed 's|^|$(DESTDIR)|' $(BUILD)/install_manifest.txt >> $(INSTALLED) && \
	  sort -u -o $(INSTALLED) $(INSTALLED)

uninstall:
	cmake -DMANIFEST=$(INSTALLED) -P cmake/uninstall.cmake

# The Debian packages (debian/), built in a copy of the tree; the .debs land in
# $(BUILD)/deb. `make package-check` also runs lintian, installs them on this machine
# (root), checks them and purges them again, as CI does.
package: deps
	@$(MAKE) --no-print-directory deps DEPS="$(PACKAGE_DEPS)"
	tests/package/build_and_check.sh --build-only --out $(abspath $(BUILD))/deb

package-check: deps
	@$(MAKE) --no-print-directory deps DEPS="$(PACKAGE_DEPS)"
	tests/package/build_and_check.sh --out $(abspath $(BUILD))/deb

# ---- reliability: fuzzing (clang + libFuzzer) and the long race stress ----
FUZZ_BUILD   ?= build-fuzz
FUZZ_TARGETS  = dburl uuid names escape duration config
FUZZ_SECONDS ?= 60
STRESS_SECONDS ?= 60

.PHONY: fuzz stress
fuzz: deps
	@command -v clang >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq clang libclang-rt-14-dev; }
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPB_FUZZ=ON -DPB_TESTS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) $(addprefix --target fuzz_,$(FUZZ_TARGETS))

# Each fuzzer for FUZZ_SECONDS on a copy of its committed corpus, valgrind over 1,000
# daemon passes, then the race stress with 8 reconcilers for STRESS_SECONDS on SQLite and
# on a PostgreSQL server of its own.
stress: fuzz build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t && cp fuzz/corpus/$$t/* $(FUZZ_BUILD)/corpus/$$t/ && \
	  echo "== fuzz_$$t for $(FUZZ_SECONDS) s" && \
	  $(FUZZ_BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(FUZZ_BUILD)/corpus/$$t 2>&1 | grep -E "^(stat::number_of_executed_units|Done|==|SUMMARY)" || exit 1; \
	done
	@command -v valgrind >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq valgrind; }
	@echo "== valgrind memcheck: the daemon for 1,000 passes"
	tests/daemon/valgrind_daemon.sh $(CURDIR)/$(BUILD)/prebuilds $(CURDIR)/tests/pg_harness.sh 1000
	@rm -f $(BUILD)/stress.db*
	@echo "== stress on SQLite, $(STRESS_SECONDS) s"
	$(BUILD)/tests/stress --db sqlite:$(BUILD)/stress.db --reconcilers 8 --seconds $(STRESS_SECONDS) --orgs 2000
	@echo "== stress on PostgreSQL, $(STRESS_SECONDS) s"
	@tests/pg_harness.sh stop $(CURDIR)/$(BUILD)/pgstress >/dev/null 2>&1 || true
	@tests/pg_harness.sh start $(CURDIR)/$(BUILD)/pgstress >/dev/null
	$(BUILD)/tests/stress --db "$$(cat $(BUILD)/pgstress/conninfo)" --reconcilers 8 \
	  --seconds $(STRESS_SECONDS) --orgs 2000; rc=$$?; \
	  tests/pg_harness.sh stop $(CURDIR)/$(BUILD)/pgstress; exit $$rc

# The benchmark (bench/). `make bench` builds build/bench/pb_bench; `make bench-run` measures
# the converged status statement against the reference's on the shapes of issue 12 and along a
# growth curve to 3M presets, on both backends, plus a pass repairing 100% drift at 100k
# organizations, and regenerates docs/BENCHMARKS.md and docs/bench/ (about half an hour on
# 2 cores; needs gnuplot, installed as gnuplot-nox when run as root and missing).
.PHONY: bench bench-run

bench: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPB_WERROR=ON -DPB_BENCH=ON $(CMAKE_OPTS)
	cmake --build $(BUILD) -j $(JOBS) --target pb_bench

bench-run: bench
	@if ! command -v gnuplot >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: gnuplot-nox"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox; \
	  else \
	    echo "gnuplot missing (run as root, or: sudo apt-get install gnuplot-nox)" >&2; exit 1; \
	  fi; \
	fi
	BUILD=$(abspath $(BUILD)) bench/run.sh
