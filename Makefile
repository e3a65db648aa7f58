# SPDX-License-Identifier: BSD-3-Clause
#
# vfio-dext: the commands a newcomer and CI run. Meson + ninja do the work.
#
#   make deps        install missing build dependencies (Debian 12, as root)
#   make build       configure build/ if needed, then compile
#   make build-asan  the same in build-asan/ with AddressSanitizer + UBSan
#   make test        deps, both builds, every test tier in both, one summary
#   make run         boot QEMU + the test guest on a passed-through sim:nvme
#   make probe       start a dext with sim:testdev, probe it, stop it
#   make bench       benchmark the dext (bench/run-dext-bench.sh)
#   make bench-guest fio in the test guest: sim:nvme over vfio-user vs QEMU's nvme
#                    (bench/run-guest-bench.sh; BENCH_GUEST_ARGS, e.g. --boots 3)
#   make clean       remove both build directories

MESON ?= meson
NINJA ?= ninja
BUILD ?= build
BUILD_ASAN ?= build-asan
VFIO_DEXT = $(BUILD)/src/cli/vfio-dext
RUN_TIMEOUT ?= 900

.PHONY: all deps build build-asan test run probe bench bench-guest clean
# deps before builds before tests, even under make -j
.NOTPARALLEL:

# A comma, for passing one inside $(call ...) arguments.
, := ,

all: build

deps:
	@scripts/setup-deps.sh

# Configure DIR with OPTIONS unless it already is; then compile.
# $(call meson_build,DIR,OPTIONS)
define meson_build
	@if [ ! -f $(1)/build.ninja ]; then \
		if [ -d $(1)/meson-private ]; then \
			$(MESON) setup --reconfigure $(1) $(2) || \
				{ echo "$(1) is broken: starting it afresh"; rm -rf $(1); $(MESON) setup $(1) $(2); }; \
		else \
			$(MESON) setup $(1) $(2); \
		fi; \
	fi
	$(NINJA) -C $(1)
endef

build:
	$(call meson_build,$(BUILD),)

build-asan:
	$(call meson_build,$(BUILD_ASAN),-Db_sanitize=address$(,)undefined -Db_lundef=false)

# Counts from meson's testlog.json: "passed failed skipped".
# Passed: OK and EXPECTEDFAIL; skipped: SKIP; failed: everything else.
define count_results
	f=$(1)/meson-logs/testlog.json; \
	if [ -f $$f ]; then \
		all=$$(grep -c '"result": "' $$f); \
		ok=$$(grep -cE '"result": "(OK|EXPECTEDFAIL)"' $$f); \
		skip=$$(grep -c '"result": "SKIP"' $$f); \
		echo "$$ok $$((all - ok - skip)) $$skip"; \
	else \
		echo "0 1 0"; \
	fi
endef

test: deps build build-asan
	@rc=0; \
	$(MESON) test -C $(BUILD) --print-errorlogs || rc=1; \
	$(MESON) test -C $(BUILD_ASAN) --print-errorlogs || rc=1; \
	set -- $$($(call count_results,$(BUILD))); p1=$$1 f1=$$2 s1=$$3; \
	set -- $$($(call count_results,$(BUILD_ASAN))); p2=$$1 f2=$$2 s2=$$3; \
	echo; \
	echo "$(BUILD):      $$p1 passed, $$f1 failed, $$s1 skipped"; \
	echo "$(BUILD_ASAN): $$p2 passed, $$f2 failed, $$s2 skipped"; \
	echo "$$((p1 + p2)) passed, $$((f1 + f2)) failed"; \
	if [ $$((f1 + f2)) -ne 0 ]; then rc=1; fi; \
	exit $$rc

# The main job: QEMU 11.1 and the test guest (set up and cached by the
# scripts), then `vfio-dext run`: sim:nvme passed through over vfio-user; the
# guest's stock nvme driver, a file system, verified files, fio, a summary.
# Exits with run's status: 0 only if the guest verified its data.
run: deps build
	@q=$$(scripts/setup-qemu.sh) && g=$$(scripts/setup-guest.sh) && \
	echo "$$ vfio-dext run --qemu $$q --guest $$g --timeout $(RUN_TIMEOUT)" && \
	$(VFIO_DEXT) run --qemu "$$q" --guest "$$g" --timeout $(RUN_TIMEOUT)

# A dext on a temporary runtime dir, its devices, a probe of sim:testdev;
# exits with the probe's status. The dext's own log (it warns about the
# refusals the probe provokes on purpose) is shown only if the probe fails.
probe: deps build
	@dir=$$(mktemp -d /tmp/vfio-dext-probe.XXXXXX); log=$$dir/dext.log; \
	$(VFIO_DEXT) dext --device sim:testdev --runtime-dir $$dir/rt >$$log 2>&1 & pid=$$!; \
	trap 'kill -TERM $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf $$dir' EXIT; \
	for i in $$(seq 1 200); do \
		[ -S $$dir/rt/dext.sock ] && break; \
		kill -0 $$pid 2>/dev/null || { cat $$log; exit 3; }; \
		sleep 0.05; \
	done; \
	echo "$$ vfio-dext dext --device sim:testdev --runtime-dir $$dir/rt &"; \
	head -1 $$log; \
	echo "$$ vfio-dext list-devices --dext unix:$$dir/rt"; \
	$(VFIO_DEXT) list-devices --dext unix:$$dir/rt; \
	echo "$$ vfio-dext probe 0000:00:01.0 --dext unix:$$dir/rt"; \
	$(VFIO_DEXT) probe 0000:00:01.0 --dext unix:$$dir/rt; rc=$$?; \
	if [ $$rc -ne 0 ]; then echo "dext log:"; cat $$log; fi; \
	exit $$rc

bench:
	@BUILD=$(BUILD) bench/run-dext-bench.sh

bench-guest: build
	@BUILD=$(BUILD) bench/run-guest-bench.sh $(BENCH_GUEST_ARGS)

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
