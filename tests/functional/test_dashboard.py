# SPDX-License-Identifier: Apache-2.0
"""The Grafana dashboard (etc/vio4wd/grafana-dashboard.json) asks only for
metrics a running agent really exports: every metric name in its queries
is on the agent's /metrics, with a relay and the core scheduler on."""
from __future__ import annotations

import json
import os
import re
import textwrap
import urllib.request

from tests.functional import util
from tests.functional.agentproc import native_agent

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
DASHBOARD = os.path.join(ROOT, "etc", "vio4wd", "grafana-dashboard.json")


def queried_metrics(dashboard: dict) -> set[str]:
    exprs = [t["expr"] for p in dashboard["panels"]
             for t in p.get("targets", [])]
    exprs += [v["query"] for v in dashboard["templating"]["list"]
              if v.get("type") == "query"]
    return {m for e in exprs for m in re.findall(r"\bvio4wd_[a-z_]+", e)}


def exported_metrics(url: str) -> set[str]:
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen(url, timeout=util.DEADLINE) as r:
        text = r.read().decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        names.update(s.name for s in family.samples)
    return names


def test_dashboard_queries_exported_metrics(tmp_path, cpus, hugepage_dir):
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    wanted = queried_metrics(dashboard)
    assert len(wanted) >= 15, wanted
    # each panel names a data source variable, and ids are unique
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    agent = native_agent(tmp_path, cpus, hugepage_dir, textwrap.dedent("""\
        [relay]
        static_vfs = net_null71=0
        [core_scheduler]
        enabled = true
        poll_interval = 0.5
        """), "dash")
    agent.start().wait_ready()
    try:
        util.wait_for(lambda: "core scheduler: balancing" in agent.output(),
                      what="the core scheduler")
        have = exported_metrics(agent.metrics_url())
        assert wanted <= have, sorted(wanted - have)
    finally:
        assert agent.stop() == 0
