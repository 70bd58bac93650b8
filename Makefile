# vio4wd: the two README commands are `make demo` and `make test`.
PYTHON ?= /usr/bin/python3
VENV ?= .venv
DEMO_SECONDS ?= 30
PYTEST_ARGS ?=

STAMP := $(VENV)/.installed
SOURCES := setup.py setup.cfg pyproject.toml requirements.txt \
	test-requirements.txt $(wildcard dpdk_ext/*.c dpdk_ext/*.h dpdk_ext/*.py)

.PHONY: install demo test test-asan bench clean

install: $(STAMP)

$(STAMP): $(SOURCES) tools/install-host.sh
	tools/install-host.sh
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt -r test-requirements.txt
	$(VENV)/bin/pip install -q -e .
	$(VENV)/bin/python -c "import vio4wd_agent.relay.engine"
	touch $@

demo: install
	$(VENV)/bin/vio4wd-demo --duration $(DEMO_SECONDS)

GUEST_DIR ?= /var/cache/vio4wd/guest

test: install
	tools/install-host.sh
	tools/build-guest.sh $(GUEST_DIR)
	VIO4WD_GUEST_DIR=$(GUEST_DIR) $(VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests
	$(MAKE) test-asan

# The data plane built with AddressSanitizer and UndefinedBehaviorSanitizer
# (into build/asan, beside the normal build), and the data-plane functional
# tests run against it: any finding aborts the test process, its report on
# stderr (captured only at the Python level, so C's reports get through).
ASAN_DIR := build/asan
DATAPLANE_TESTS := $(addprefix tests/functional/,test_relay_traffic.py \
	test_multiqueue.py test_bonds.py test_live_moves.py \
	test_vm_connection.py test_memory.py test_relay_features.py \
	test_bad_requests.py test_scale.py test_jumbo.py test_link_state.py \
	test_core_scheduler.py test_idle.py)

test-asan: install
	rm -rf $(ASAN_DIR)
	mkdir -p $(ASAN_DIR)/vio4wd_agent/relay
	cp -r dpdk_ext $(ASAN_DIR)/
	cd $(ASAN_DIR) && V4W_SANITIZE=1 $(abspath $(VENV))/bin/python dpdk_ext/build_ffi.py >build.log 2>&1 || { cat build.log; exit 1; }
	VIO4WD_DPDK_EXT=$$(ls $(abspath $(ASAN_DIR))/vio4wd_agent/relay/_dpdk*.so) \
	LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1 \
	$(VENV)/bin/python -m pytest -p no:cacheprovider --capture=sys $(PYTEST_ARGS) $(DATAPLANE_TESTS)

bench: install
	tools/install-host.sh --bench
	$(VENV)/bin/python bench/relay_throughput.py --peers testpmd,ovs --sizes 64,1518
	$(VENV)/bin/python bench/idle_wakeup.py
	$(VENV)/bin/python bench/many_relays.py
	$(VENV)/bin/python bench/memory_per_relay.py
	$(VENV)/bin/python bench/control_latency.py
	$(VENV)/bin/python bench/watch_latency.py

clean:
	rm -rf $(VENV) build *.egg-info vio4wd_agent/relay/_dpdk.*
