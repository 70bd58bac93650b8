# vio4wd: the two README commands are `make demo` and `make test`.
PYTHON ?= /usr/bin/python3
VENV ?= .venv
DEMO_SECONDS ?= 30
PYTEST_ARGS ?=

STAMP := $(VENV)/.installed
SOURCES := setup.py setup.cfg pyproject.toml requirements.txt \
	test-requirements.txt $(wildcard dpdk_ext/*.c dpdk_ext/*.h dpdk_ext/*.py)

.PHONY: install demo test bench clean

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

bench: install
	tools/install-host.sh --bench
	$(VENV)/bin/python bench/relay_throughput.py --peers testpmd,ovs --sizes 64,1518
	$(VENV)/bin/python bench/idle_wakeup.py
	$(VENV)/bin/python bench/memory_per_relay.py
	$(VENV)/bin/python bench/control_latency.py
	$(VENV)/bin/python bench/watch_latency.py

clean:
	rm -rf $(VENV) build *.egg-info vio4wd_agent/relay/_dpdk.*
