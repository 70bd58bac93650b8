# SPDX-License-Identifier: Apache-2.0
"""A private libvirtd for the tests: its own mount namespace, with a
fresh tmpfs on /run and /etc/libvirt, /var/lib/libvirt, /var/log/libvirt
and /var/cache/libvirt bound to directories of the test, and its sockets
in a directory of the test; so it neither sees nor disturbs the host's
libvirt (nor needs one ever to have run here), can be restarted at will,
and is stopped by the PID we started.

QEMU runs as libvirt-qemu:kvm (the accounts tools/install-host.sh makes
sure of; no security driver, no per-domain namespaces, serial output to
files); whatever QEMU opens must be reachable by that user.  vio4wd's qemu hook is installed by its own installer, asking the
agent on ``hook_socket``; with no agent there, it lets domains start.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import libvirt

QEMU_USER, QEMU_GROUP = "libvirt-qemu", "kvm"
DIRS = {"run": "/run/libvirt", "etc": "/etc/libvirt",
        "lib": "/var/lib/libvirt", "log": "/var/log/libvirt",
        "cache": "/var/cache/libvirt"}


class Libvirtd:
    def __init__(self, base: str, sock_group: str | None = None) -> None:
        """``sock_group``: members may use the read-write socket (may
        define domains), besides root."""
        self.base = base
        self.sock_dir = os.path.join(base, "sock")
        self.uri = "qemu:///system?socket=%s/libvirt-sock" % self.sock_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        for d in list(DIRS) + ["sock"]:
            os.makedirs(os.path.join(base, d), exist_ok=True)
        os.chmod(base, 0o755)
        etc = os.path.join(base, "etc")
        with open(os.path.join(etc, "libvirtd.conf"), "w") as f:
            f.write('unix_sock_dir = "%s"\nunix_sock_rw_perms = "%s"\n'
                    'auth_unix_rw = "none"\nauth_unix_ro = "none"\n'
                    'log_outputs = "3:stderr"\n' % (
                        self.sock_dir, "0770" if sock_group else "0700"))
            if sock_group:
                f.write('unix_sock_group = "%s"\n' % sock_group)
        with open(os.path.join(etc, "qemu.conf"), "w") as f:
            f.write('stdio_handler = "file"\nsecurity_driver = "none"\n'
                    'namespaces = []\nuser = "%s"\ngroup = "%s"\n'
                    % (QEMU_USER, QEMU_GROUP))
        self.hook_socket = os.path.join(base, "hook.sock")
        subprocess.run([sys.executable, "-m", "vio4wd_agent.cmd.libvirt_hook",
                        "--install", "--hooks-dir",
                        os.path.join(etc, "hooks"), "--socket",
                        self.hook_socket], check=True,
                       stdout=subprocess.DEVNULL)

    def start(self, timeout: float = 30) -> "Libvirtd":
        self.starts += 1
        # /run gets a tmpfs of its own (nothing of the host's runtime state
        # is needed or touched); every other target is made if missing,
        # so a host where libvirtd never ran works the same.
        mounts = " && ".join(
            ["mount -t tmpfs -o mode=0755 tmpfs /run"] +
            ["mkdir -p %s && mount --bind %s %s" % (
                target, os.path.join(self.base, d), target)
             for d, target in DIRS.items()])
        log = open(os.path.join(self.base, "libvirtd.%d.log" % self.starts),
                   "w")
        # exec: the PID we hold is libvirtd's own
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             "%s && exec libvirtd --pid-file %s/libvirtd.pid" % (
                 mounts, self.base)],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("libvirtd exited %d: see %s" % (
                    self.proc.returncode, log.name))
            try:
                libvirt.open(self.uri).close()
                return self
            except libvirt.libvirtError:
                if time.monotonic() > deadline:
                    raise RuntimeError("libvirtd not up after %.0f s"
                                       % timeout) from None
                time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def conn(self) -> Any:
        return libvirt.open(self.uri)

    def cleanup(self) -> None:
        """Destroy and undefine every domain, then stop; QEMUs left by a
        crashed daemon are killed by the PIDs libvirt recorded."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                c = self.conn()
                for d in c.listAllDomains(0):
                    try:
                        if d.isActive():
                            d.destroy()
                        if d.isPersistent():
                            d.undefine()
                    except libvirt.libvirtError:
                        pass
                c.close()
            except libvirt.libvirtError:
                pass
        self.stop()
        qemu = os.path.join(self.base, "run", "qemu")
        for name in os.listdir(qemu) if os.path.isdir(qemu) else []:
            if name.endswith(".pid"):
                try:
                    with open(os.path.join(qemu, name)) as f:
                        os.kill(int(f.read().strip()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass


# Quiet: libvirt prints every failed call to stderr by default.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
