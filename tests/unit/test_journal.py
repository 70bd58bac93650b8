# SPDX-License-Identifier: Apache-2.0
from __future__ import annotations

import json

from vio4wd_agent.journal import Journal, spec_from_dict, spec_to_dict
from vio4wd_agent.relay.model import RelaySpec

import pytest


def test_round_trip(tmp_path):
    j = Journal(str(tmp_path / "state" / "journal"))
    specs = [(RelaySpec(3, "/run/a.sock", vf="net_null0", cpus=(1, None),
                        bond_members=("a", "b"), bond_mode=2, client=True),
              "zmq"), (RelaySpec(4, "/run/b.sock"), "ipc")]
    j.save(specs, {3: (1, 2)})
    assert j.load() == (specs, {3: (1, 2)})
    assert not list((tmp_path / "state").glob("*.tmp.*"))


def test_missing_journal_is_empty(tmp_path):
    assert Journal(str(tmp_path / "none")).load() == ([], {})


def test_damaged_lines_are_skipped_and_the_file_kept(tmp_path, caplog):
    path = tmp_path / "journal"
    good = json.dumps({"relay": spec_to_dict(RelaySpec(1, "/x.sock")),
                       "source": "zmq"})
    path.write_text("\n".join([
        json.dumps({"version": 1}), good, "{not json",
        json.dumps({"relay": {"relay_id": -1, "vhost_path": "/y"}}),
        json.dumps({"relay": {"relay_id": 2, "vhost_path": "/z",
                              "cpus": "nope"}}),
        json.dumps({"pin": 1, "cpus": [1]}),
        json.dumps({"surprise": True}), "\xff"]) + "\n")
    relays, pins = Journal(str(path)).load()
    assert [s.relay_id for s, _ in relays] == [1] and pins == {}
    copies = list(tmp_path.glob("journal.damaged-*"))
    assert len(copies) == 1
    assert "is damaged" in caplog.text and str(copies[0]) in caplog.text


@pytest.mark.parametrize("record,text", [
    ({"vhost_path": "/a"}, "no relay_id"),
    ({"relay_id": 1, "vhost_path": "/a", "colour": 1}, "unknown fields"),
    ({"relay_id": 1, "vhost_path": ""}, "bad vhost_path"),
    ({"relay_id": 1, "vhost_path": "/a", "client": "yes"}, "bad client"),
    ({"relay_id": 1, "vhost_path": "/a", "bond_members": [1]},
     "bad bond_members"),
])
def test_bad_records(record, text):
    with pytest.raises(ValueError, match=text):
        spec_from_dict(record)
