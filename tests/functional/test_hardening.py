# SPDX-License-Identifier: Apache-2.0
"""The agent works under its systemd unit's restrictions: the capability
bounding set, no new privileges, a read-only system but for the paths the
unit lists, and sockets only of the families it allows.

systemd is not PID 1 here, so the restrictions are applied as systemd
would, from the unit file itself: setpriv for the capabilities and
no_new_privs, a private mount namespace with every mount read-only (but
/proc, /sys, /dev) and the unit's writable paths -- and the test's own
directories, standing in for /run/vio4wd and /var/lib/vio4wd -- bound
writable.  The address families are checked on the running agent."""
from __future__ import annotations

import os
import re
import textwrap

from vio4wd_agent.demo import rawport
from tests.functional import util
from tests.functional.agentproc import native_agent
from tests.functional.conftest import KERNEL_MAC, VM_MAC

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
UNIT = os.path.join(ROOT, "etc", "vio4wd", "systemd",
                    "vio4wd-agent.service")

# /proc/net files of the families a socket may be of.
_FAMILY_FILES = {"AF_UNIX": ["unix"], "AF_PACKET": ["packet"],
                 "AF_NETLINK": ["netlink"],
                 "AF_INET": ["tcp", "udp", "raw"],
                 "AF_INET6": ["tcp6", "udp6", "raw6"]}


def unit_service() -> dict[str, list[str]]:
    """The unit's [Service] settings, each key's values in order."""
    out: dict[str, list[str]] = {}
    section = ""
    with open(UNIT, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]" and "=" in line:
                key, value = line.split("=", 1)
                out.setdefault(key, []).append(value)
    return out


def restricted(unit: dict[str, list[str]], writable: list[str]) -> list[str]:
    caps = " ".join(unit["CapabilityBoundingSet"]).split()
    bounding = ",".join(["-all"] + ["+" + c[len("CAP_"):].lower()
                                    for c in caps])
    assert unit["NoNewPrivileges"] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"]
    script = textwrap.dedent("""\
        set -e
        for m in $(awk '{print $5}' /proc/self/mountinfo | sort -r); do
          case $m in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
          mount -o remount,bind,ro "$m" 2>/dev/null || true
        done
        for p in %s; do
          [ -e "$p" ] || continue
          mount --bind "$p" "$p"
          mount -o remount,bind,rw "$p"
        done
        exec setpriv --nnp --bounding-set=%s -- "$@"
        """) % (" ".join(writable), bounding)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script,
            "restricted"]


def writable_paths(unit: dict[str, list[str]], extra: list[str]) -> list[str]:
    paths = [p.lstrip("-") for v in unit.get("ReadWritePaths", [])
             for p in v.split()]
    paths += ["/run/" + d for v in unit.get("RuntimeDirectory", [])
              for d in v.split()]
    paths += ["/var/lib/" + d for v in unit.get("StateDirectory", [])
              for d in v.split()]
    return paths + extra


def socket_families(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", target)
        if m:
            inodes.add(m.group(1))
    found = set()
    for family, files in _FAMILY_FILES.items():
        for name in files:
            try:
                with open("/proc/%d/net/%s" % (pid, name)) as f:
                    text = f.read()
            except OSError:
                continue
            if any(re.search(r"\s%s(\s|$)" % i, text, re.M)
                   for i in inodes):
                found.add(family)
    return found


def test_the_agent_works_under_its_units_restrictions(
        tmp_path, cpus, hugepage_dir, veth, vm_factory, kernel_port):
    unit = unit_service()
    dpdk_if, kernel_if = veth()
    a = native_agent(tmp_path, cpus, hugepage_dir, textwrap.dedent("""\
        [vhost]
        socket_owner = libvirt-qemu
        socket_group = kvm
        [relay]
        static_vfs = net_af_packet60,iface=%s=0
        device_map = 0000:99:00.1=net_null61
        [control]
        endpoint_group = kvm
        """) % dpdk_if, "hardened")
    a.prefix = restricted(unit, writable_paths(
        unit, [str(tmp_path), hugepage_dir or "/tmp"]))
    a.start().wait_ready()
    try:
        status = open("/proc/%d/status" % a.proc.pid).read()
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
        caps = " ".join(unit["CapabilityBoundingSet"]).split()
        bound = int(re.search(r"^CapBnd:\s+(\w+)$", status, re.M).group(1),
                    16)
        assert bin(bound).count("1") == len(caps)
        mounts = {f[4]: f[5] for f in (line.split() for line in open(
            "/proc/%d/mountinfo" % a.proc.pid))}
        assert "ro" in mounts["/"].split(","), mounts["/"]
        assert "rw" in mounts[str(tmp_path)].split(",")

        # A VM on the static relay, traffic both ways.
        sock = a.socket_dir / "virtio-forwarder0.sock"
        st = os.stat(sock)
        assert (st.st_uid, st.st_gid) != (0, 0)      # given to its owner
        vm = vm_factory(str(sock))
        vm.forward("macswap")
        port = kernel_port(kernel_if)
        util.send_paced(lambda i: port.send(rawport.frame(
            VM_MAC, KERNEL_MAC, i)), 200, lambda: vm.port_stats().rx_packets,
            what="the VM")
        assert port.receive(timeout=util.DEADLINE, until=1)
        # Port control, stats, the journal, metrics.
        assert a.ctl("add", "--virtio-id", "1", "--pci-addr",
                     "99:00.1").returncode == 0
        assert (tmp_path / "hardened" / "state" / "journal").exists()
        assert a.tool("vio4wd-stats", "--stats-ep",
                      a.ep("stats")).returncode == 0
        import urllib.request
        with urllib.request.urlopen(a.metrics_url(),
                                    timeout=util.DEADLINE) as r:
            assert b"vio4wd_relay_packets_total" in r.read()

        allowed = set(" ".join(unit["RestrictAddressFamilies"]).split())
        used = socket_families(a.proc.pid)
        assert used and used <= allowed, (used, allowed)
        assert "Traceback" not in a.output()
    finally:
        assert a.stop() == 0, a.output()
