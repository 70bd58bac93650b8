# SPDX-License-Identifier: Apache-2.0
"""The checked-in config sample matches the options (regenerate with
`.venv/bin/oslo-config-generator --config-file
etc/vio4wd/vio4wd-config-generator.conf`)."""
from __future__ import annotations

import os
import subprocess
import sys

from vio4wd_agent import opts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_every_group_has_help_on_every_option():
    from vio4wd_agent.osvif import opts as osvif_opts
    for group, options in opts.list_opts() + osvif_opts.list_opts():
        assert options, group.name
        for opt in options:
            assert opt.help, "%s.%s" % (group.name, opt.name)


def test_sample_is_current(tmp_path):
    out = tmp_path / "sample"
    gen = os.path.join(os.path.dirname(sys.executable),
                       "oslo-config-generator")
    # as etc/vio4wd/vio4wd-config-generator.conf asks
    subprocess.run([gen, "--namespace", "vio4wd", "--namespace",
                    "vio4wd.os_vif", "--namespace", "oslo.messaging",
                    "--wrap-width", "79",
                    "--output-file", str(out)], check=True)
    with open(os.path.join(ROOT, "etc/vio4wd/vio4wd.conf.sample")) as f:
        assert out.read_text() == f.read(), "regenerate the sample"


def test_legacy_sample_parses():
    from vio4wd_agent.conf import legacy
    old = legacy.read(os.path.join(ROOT, "etc/vio4wd/virtioforwarder"))
    assert not old.unknown
