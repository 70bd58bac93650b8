# SPDX-License-Identifier: Apache-2.0
"""vio4wd-libvirt-hook: libvirt's qemu hook, so that the vhost-user
sockets of a transient domain (``virsh create``) or of a migration's
destination exist before its QEMU starts.

libvirtd runs it as ``qemu.d/vio4wd DOMAIN OP SUBOP EXTRA`` with the
domain XML on stdin and waits for it.  At ``prepare`` it hands the XML to
the agent (the ``[libvirt] hook_socket``) and returns once the agent has
made the relays; at ``release`` it tells the agent the domain's QEMU is
gone.  A domain without vhost-user interfaces never waits for the agent,
and a stopped agent never stops a domain from starting: only an agent
that refuses one of the domain's sockets fails the start, with its reason.

``vio4wd-libvirt-hook --install`` writes the hook into libvirt's hooks
directory; libvirtd reads that directory when it starts.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import sys
from typing import Any

DEFAULT_SOCKET = "/run/vio4wd/libvirt-hook.sock"
DEFAULT_HOOKS_DIR = "/etc/libvirt/hooks"
HOOK_NAME = "vio4wd"
OPS = ("prepare", "release")
PROG = "vio4wd-libvirt-hook"


def _say(msg: str) -> None:
    print("%s: %s" % (PROG, msg), file=sys.stderr)


def ask_agent(path: str, request: dict[str, object],
              timeout: float) -> dict[str, Any] | None:
    """The agent's answer, or None when no agent listens on ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        sock.sendall(json.dumps(request).encode())
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    answer = json.loads(data.decode() or "null")
    if not isinstance(answer, dict):
        raise ValueError("the agent's answer is not a JSON object: %r"
                         % data[:200])
    return answer


def run_hook(domain: str, op: str, xml: str, path: str,
             timeout: float) -> int:
    if op not in OPS or "vhostuser" not in xml:
        return 0
    try:
        answer = ask_agent(path, {"op": op, "domain": domain, "xml": xml},
                           timeout)
    except socket.timeout:
        _say("domain %s: the agent on %s did not answer within %.0f s"
             % (domain, path, timeout))
        return 1 if op == "prepare" else 0
    except (OSError, ValueError) as exc:
        _say("domain %s: talking to the agent on %s: %s"
             % (domain, path, exc))
        return 1 if op == "prepare" else 0
    if answer is None:
        _say("domain %s: no vio4wd agent on %s; its sockets are not "
             "prepared" % (domain, path))
        return 0
    for msg in answer.get("warnings") or []:
        _say("domain %s: %s" % (domain, msg))
    errors = answer.get("errors") or []
    for msg in errors:
        _say("domain %s: %s" % (domain, msg))
    if op == "prepare" and (errors or not answer.get("ok")):
        return 1
    return 0


def hook_script(python: str, path: str, timeout: float,
                package_dir: str = "") -> str:
    """The script libvirtd runs.  Python starts without site (-S): the
    hook needs the standard library and this package only, found through
    PYTHONPATH, so a VM start waits ~20 ms less for it."""
    package_dir = package_dir or os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))
    cmd = " ".join(shlex.quote(a) for a in (
        python, "-S", "-m", "vio4wd_agent.cmd.libvirt_hook", "--socket", path,
        "--timeout", "%g" % timeout, "--"))
    cmd = "PYTHONPATH=%s %s" % (shlex.quote(package_dir), cmd)
    # The shell filters first: other operations and domains without
    # vhost-user interfaces cost libvirtd no Python start.
    return ("#!/bin/sh\n"
            "# vio4wd: vhost-user sockets ready before QEMU starts.\n"
            "# Written by %s --install; libvirtd reads hooks at start.\n"
            'case "$2" in\n'
            "    %s) ;;\n"
            "    *) exit 0 ;;\n"
            "esac\n"
            'xml=$(cat)\n'
            'case "$xml" in\n'
            "    *vhostuser*) ;;\n"
            "    *) exit 0 ;;\n"
            "esac\n"
            "printf '%%s\\n' \"$xml\" | %s \"$@\"\n"
            % (PROG, "|".join(OPS), cmd))


def install(hooks_dir: str, path: str, timeout: float) -> str:
    target_dir = os.path.join(hooks_dir, "qemu.d")
    os.makedirs(target_dir, mode=0o755, exist_ok=True)
    target = os.path.join(target_dir, HOOK_NAME)
    tmp = target + ".tmp"
    with open(tmp, "w") as f:
        f.write(hook_script(sys.executable, path, timeout))
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return target


def uninstall(hooks_dir: str) -> str | None:
    target = os.path.join(hooks_dir, "qemu.d", HOOK_NAME)
    try:
        os.unlink(target)
    except FileNotFoundError:
        return None
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog=PROG, description="libvirt qemu hook of the vio4wd agent. "
        "As a hook: DOMAIN OP SUBOP EXTRA, the domain XML on stdin.")
    p.add_argument("--socket", default=DEFAULT_SOCKET,
                   help="the agent's [libvirt] hook_socket (default "
                        "%(default)s)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds to wait for the agent (default "
                        "%(default)s)")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--install", action="store_true",
                     help="write the hook into HOOKS_DIR/qemu.d")
    act.add_argument("--uninstall", action="store_true",
                     help="remove the hook from HOOKS_DIR/qemu.d")
    p.add_argument("--hooks-dir", default=DEFAULT_HOOKS_DIR,
                   help="libvirt's hooks directory (default %(default)s)")
    p.add_argument("args", nargs="*", metavar="DOMAIN OP SUBOP EXTRA")
    a = p.parse_args(argv)
    if a.timeout <= 0:
        p.error("--timeout must be positive, not %g" % a.timeout)
    if a.install or a.uninstall:
        if a.args:
            p.error("--install/--uninstall take no DOMAIN OP arguments")
        try:
            if a.install:
                print("installed %s; restart libvirtd so it reads it"
                      % install(a.hooks_dir, a.socket, a.timeout))
            else:
                done = uninstall(a.hooks_dir)
                print("removed %s" % done if done else
                      "no hook in %s/qemu.d" % a.hooks_dir)
        except OSError as exc:
            _say(str(exc))
            return 1
        return 0
    if len(a.args) < 2:
        p.error("called as a hook: DOMAIN OP [SUBOP EXTRA], the domain XML "
                "on stdin (or --install)")
    domain, op = a.args[0], a.args[1]
    xml = sys.stdin.read() if op in OPS else ""
    return run_hook(domain, op, xml, a.socket, a.timeout)


if __name__ == "__main__":
    sys.exit(main())
