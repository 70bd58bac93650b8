# SPDX-License-Identifier: Apache-2.0
"""vio4wd-libvirt-hook as libvirtd runs it, against a fake agent on a
real unix socket, and its installer."""
from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from vio4wd_agent.cmd import libvirt_hook
from vio4wd_agent.virt.hooklistener import HookListener

XML = "<domain><devices><interface type='vhostuser'/></devices></domain>"


@pytest.fixture
def agent(tmp_path):
    answers = {}
    seen = []

    def handler(op, name, xml):
        seen.append((op, name))
        return answers.get(name, {"ok": True, "served": [], "errors": [],
                                  "warnings": []})
    lst = HookListener(str(tmp_path / "hook.sock"), handler)
    lst.start()
    lst.answers, lst.seen = answers, seen
    yield lst
    lst.stop()


def run(agent_path, *args, xml=XML):
    old = sys.stdin
    sys.stdin = io.StringIO(xml)
    try:
        return libvirt_hook.main(["--socket", agent_path, "--timeout", "5",
                                  "--", *args])
    finally:
        sys.stdin = old


def test_prepare_asks_the_agent(agent):
    assert run(agent.path, "vm1", "prepare", "begin", "-") == 0
    assert agent.seen == [("prepare", "vm1")]


def test_other_ops_and_other_domains_never_ask(agent):
    assert run(agent.path, "vm1", "start", "begin", "-") == 0
    assert run(agent.path, "vm1", "prepare", "begin", "-",
               xml="<domain><devices/></domain>") == 0
    assert agent.seen == []


def test_a_refusal_fails_the_start_with_the_reason(agent, capsys):
    agent.answers["vm2"] = {"ok": False, "errors": ["socket X taken"],
                            "warnings": ["odd name"]}
    assert run(agent.path, "vm2", "prepare", "begin", "-") == 1
    err = capsys.readouterr().err
    assert "domain vm2: socket X taken" in err and "odd name" in err
    # release never fails anything
    assert run(agent.path, "vm2", "release", "end", "-") == 0


def test_no_agent_lets_the_domain_start(tmp_path, capsys):
    assert run(str(tmp_path / "none.sock"), "vm1", "prepare", "begin",
               "-") == 0
    assert "no vio4wd agent on" in capsys.readouterr().err


def test_a_domain_named_like_an_option_is_a_domain(agent):
    assert run(agent.path, "--install", "prepare", "begin", "-") == 0
    assert agent.seen == [("prepare", "--install")]


@pytest.mark.parametrize("argv, says", [
    ([], "DOMAIN OP"),
    (["vm1"], "DOMAIN OP"),
    (["--timeout", "0", "vm1", "prepare"], "--timeout must be positive"),
    (["--install", "vm1", "prepare"], "take no DOMAIN OP"),
])
def test_bad_arguments(argv, says, capsys):
    with pytest.raises(SystemExit) as e:
        libvirt_hook.main(argv)
    assert e.value.code == 2 and says in capsys.readouterr().err


def test_install_writes_a_hook_libvirtd_can_run(tmp_path, agent, capsys):
    hooks = tmp_path / "hooks"
    assert libvirt_hook.main(["--install", "--hooks-dir", str(hooks),
                              "--socket", agent.path]) == 0
    script = hooks / "qemu.d" / "vio4wd"
    assert os.access(script, os.X_OK)
    assert "restart libvirtd" in capsys.readouterr().out
    # as libvirtd runs it: name, op, sub-op, extra; the XML on stdin
    for op in ("prepare", "start", "release"):
        done = subprocess.run([str(script), "vm9", op, "begin", "-"],
                              input=XML, text=True, capture_output=True,
                              cwd="/", timeout=60)
        assert done.returncode == 0, done.stderr
    done = subprocess.run([str(script), "vm8", "prepare", "begin", "-"],
                          input="<domain/>", text=True, timeout=60)
    assert done.returncode == 0
    assert agent.seen == [("prepare", "vm9"), ("release", "vm9")]
    agent.answers["vm7"] = {"ok": False, "errors": ["refused"]}
    done = subprocess.run([str(script), "vm7", "prepare", "begin", "-"],
                          input=XML, text=True, capture_output=True,
                          timeout=60)
    assert done.returncode == 1 and "domain vm7: refused" in done.stderr
    assert libvirt_hook.main(["--uninstall", "--hooks-dir",
                              str(hooks)]) == 0
    assert not script.exists()
    assert libvirt_hook.main(["--uninstall", "--hooks-dir",
                              str(hooks)]) == 0
