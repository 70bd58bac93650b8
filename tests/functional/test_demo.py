# SPDX-License-Identifier: Apache-2.0
"""The README's demo: runs, shows traffic both ways, cleans up."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

DEMO = os.path.join(os.path.dirname(sys.executable), "vio4wd-demo")


def test_demo_runs_and_cleans_up():
    proc = subprocess.run([DEMO, "--duration", "4", "--rate", "5000"],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    rows = [line for line in out.splitlines() if re.match(r"\s+\d+s \|", line)]
    assert len(rows) >= 2, out
    m = re.search(r"kernel side: sent (\d+) frames, got (\d+) back", out)
    assert m, out
    sent, back = int(m.group(1)), int(m.group(2))
    assert sent > 5000 and back > sent * 0.9, out
    m = re.search(r"VF->VM: received (\d+), sent (\d+), dropped (\d+)", out)
    assert m and int(m.group(1)) == sent, out
    assert int(m.group(2)) + int(m.group(3)) <= sent

    pid = re.search(r"namespace vio4wd-demo-(\d+)", out).group(1)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True,
                                text=True).stdout
    assert "vio4wd-demo-%s" % pid not in namespaces
    with open("/proc/mounts") as f:
        assert "vio4wd-demo-" not in f.read()


def test_demo_stops_on_sigterm_and_cleans_up():
    proc = subprocess.Popen([DEMO, "--duration", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if re.match(r"\s+\d+s \|", line):  # traffic is flowing
            break
    proc.send_signal(signal.SIGTERM)
    out = "".join(lines) + proc.stdout.read()
    assert proc.wait(60) == 0, out
    assert "demo stopped; namespace, sockets and hugepages removed" in out
    pid = re.search(r"namespace vio4wd-demo-(\d+)", out).group(1)
    assert "vio4wd-demo-%s" % pid not in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True).stdout
