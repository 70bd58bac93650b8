# SPDX-License-Identifier: Apache-2.0
"""vio4wd's devstack plugin, phase by phase, under stand-ins for
devstack's helpers (tests/functional/devstack_standins.sh, each records
its call): the commands it runs, the agent, Nova and Neutron config files
it writes, and an actual agent started with the written config, stopped
by unstack, its state removed by clean."""
from __future__ import annotations

import configparser
import os
import signal
import subprocess

from tests.functional import util

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
STANDINS = os.path.join(ROOT, "tests", "functional", "devstack_standins.sh")
PHASES = [("stack", "pre-install"), ("stack", "install"),
          ("stack", "post-config"), ("stack", "extra"),
          ("stack", "test-config")]


def ini(path) -> configparser.RawConfigParser:  # type: ignore
    c = configparser.RawConfigParser(strict=False, interpolation=None)
    c.optionxform = str  # type: ignore[assignment,method-assign]
    c.read(path)
    return c


def devstack(env: dict[str, str], *modes: tuple[str, str]) -> str:
    """Source the plugin as stack.sh does, for each (mode, phase)."""
    script = ["set -eu", "source %s" % STANDINS,
              "source %s/devstack/settings" % ROOT]
    for mode, phase in modes:
        script.append("source %s/devstack/plugin.sh %s %s"
                      % (ROOT, mode, phase))
    out = subprocess.run(["bash", "-c", "\n".join(script)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_plugin_phases(tmp_path, cpus, hugepage_dir):
    calls = tmp_path / "calls"
    logs = tmp_path / "logs"
    logs.mkdir()
    nova_conf = tmp_path / "nova.conf"
    nova_conf.write_text("[filter_scheduler]\n"
                         "enabled_filters = ComputeFilter,ImagePropertiesFilter\n")
    nova_cpu = tmp_path / "nova-cpu.conf"
    ml2 = tmp_path / "ml2_conf.ini"
    ml2.write_text("[ml2]\nmechanism_drivers = ovn\n")
    run = tmp_path / "run"
    nr_hugepages = tmp_path / "nr_hugepages"       # sysfs, stood in for
    nr_hugepages.write_text("0\n")
    env = dict(os.environ, CALLS=str(calls), LOGDIR=str(logs),
               DEST=str(tmp_path / "opt"), VIO4WD_DIR=ROOT,
               STACK_USER="root", ENABLED_SERVICES="n-cpu,n-api,q-svc",
               TEST_TRANSPORT_URL="fake://",
               VIO4WD_CONF_DIR=str(tmp_path / "etc"),
               VIO4WD_STATE_DIR=str(tmp_path / "state"),
               VIO4WD_RUN_DIR=str(run),
               VIO4WD_ZMQ_DIR="ipc://%s/zmq" % run,
               # with no hugetlbfs here the agent runs --no-huge, and
               # nothing is reserved or mounted by the test
               VIO4WD_HUGEPAGES="16" if hugepage_dir else "0",
               VIO4WD_NR_HUGEPAGES_FILE=str(nr_hugepages),
               VIO4WD_HUGEPAGE_DIR=hugepage_dir or "/nonexistent/huge",
               VIO4WD_WORKER_CPUS=str(cpus["worker"]),
               VIO4WD_LIBVIRT_URI="test:///default",
               VIO4WD_METRICS_PORT="0",
               VIO4WD_HOST="compute-7",
               VIO4WD_PCI_DEVICE_SPEC='{"address": "0000:05:08.*", '
                                      '"physical_network": "physnet1"}',
               NOVA_CONF=str(nova_conf), NOVA_CPU_CONF=str(nova_cpu),
               NEUTRON_CORE_PLUGIN_CONF=str(ml2),
               PATH=os.path.dirname(os.sys.executable) + ":" +
               os.environ["PATH"])
    devstack(env, *PHASES)
    lines = calls.read_text().splitlines()
    # hugepages reserved (the mount is there already: not mounted again)
    assert nr_hugepages.read_text().strip() == (
        "16" if hugepage_dir else "0")
    assert not any(l.startswith("sudo mount") for l in lines), lines
    assert "define_plugin vio4wd" in lines
    assert "enable_service vio4wd-agent" in lines
    assert any(l.startswith("install_package dpdk ") for l in lines), lines
    assert "setup_develop %s" % ROOT in lines
    [started] = [l for l in lines if l.startswith("run_process ")]
    assert started.startswith("run_process vio4wd-agent ") and \
        started.endswith(" root root"), started
    assert "openstack flavor show m1.tiny" in lines

    agent_conf = ini(tmp_path / "etc" / "vio4wd.conf")
    assert agent_conf.get("DEFAULT", "transport_url") == "fake://"
    assert agent_conf.get("DEFAULT", "host") == "compute-7"
    assert agent_conf.get("vhost", "socket_dir") == str(run / "vhost")
    assert agent_conf.get("neutron", "vhostuser_mode") == "client"
    assert agent_conf.get("dataplane", "worker_cpus") == str(cpus["worker"])
    cpu = ini(nova_cpu)
    assert cpu.get("os_vif_agilio_ovs", "port_control_endpoint") == \
        "ipc://%s/zmq/port_control" % run
    assert "0000:05:08.*" in cpu.get("pci", "device_spec")
    assert ini(nova_conf).get("filter_scheduler", "enabled_filters") == (
        "ComputeFilter,ImagePropertiesFilter,PciPassthroughFilter,"
        "NUMATopologyFilter")
    assert ini(ml2).get("ml2", "mechanism_drivers") == "vio4wd,ovn"

    # The agent the extra phase started, with the config it wrote.
    pid = int((logs / "vio4wd-agent.pid").read_text())
    log = logs / "vio4wd-agent.log"
    try:
        util.wait_for(lambda: "vio4wd agent running" in log.read_text(),
                      what="the agent started by the plugin")
        assert os.path.exists(str(run / "zmq" / "port_control"))
        assert os.path.isdir(str(run / "vhost"))

        # post-config again (a re-stack): nothing doubled
        devstack(env, ("stack", "post-config"))
        assert ini(ml2).get("ml2", "mechanism_drivers") == "vio4wd,ovn"
        assert ini(nova_conf).get("filter_scheduler", "enabled_filters") \
            .count("PciPassthroughFilter") == 1

        devstack(env, ("unstack", ""))
        util.wait_for(lambda: not _alive(pid), what="the agent stopped")
        assert "vio4wd agent stopped" in log.read_text()
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    devstack(env, ("clean", ""))
    assert not (tmp_path / "state").exists() and not run.exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours is gone as far as the test cares
    with open("/proc/%d/stat" % pid) as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_shell_files_pass_shellcheck():
    files = [os.path.join(ROOT, "devstack", f)
             for f in ("plugin.sh", "settings", os.path.join("lib",
                                                             "vio4wd"))]
    files += [os.path.join(ROOT, "tools", f)
              for f in sorted(os.listdir(os.path.join(ROOT, "tools")))
              if f.endswith(".sh")]
    files.append(STANDINS)
    out = subprocess.run(["shellcheck", "-x", *files], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_systemd_units_verify(tmp_path):
    unit_dir = os.path.join(ROOT, "etc", "vio4wd", "systemd")
    units = [os.path.join(unit_dir, u) for u in sorted(os.listdir(unit_dir))]
    assert units
    out = subprocess.run(["systemd-analyze", "verify", *units],
                         capture_output=True, text=True, timeout=120)
    # Only our units' own lines count (the host's units may warn).
    ours = [l for l in (out.stdout + out.stderr).splitlines()
            if any(os.path.basename(u) in l for u in units)]
    assert out.returncode == 0 and not ours, out.stdout + out.stderr

