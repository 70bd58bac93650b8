# SPDX-License-Identifier: Apache-2.0
"""The journal: what port control asked for at run time (relays, dynamic
socket registrations, pins), so that a restarted agent -- also after
``kill -9`` -- restores it.

One JSON object per line, written whole and atomically (temporary file,
fsync, rename) after every change.  A damaged journal is copied aside with
a log line that says where, and every line that is still valid is used.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Any

from vio4wd_agent import trusted
from vio4wd_agent.relay.model import MAX_QUEUES, RelaySpec

LOG = logging.getLogger(__name__)

VERSION = 1
# A journal of 1024 relays is ~1 MB; anything far bigger is not ours.
MAX_BYTES = 64 << 20
_FIELDS = {f.name: f for f in dataclasses.fields(RelaySpec)}


def spec_to_dict(spec: RelaySpec) -> dict[str, Any]:
    d = dataclasses.asdict(spec)
    d["cpus"] = list(spec.cpus)
    d["bond_members"] = list(spec.bond_members)
    return d


def spec_from_dict(d: dict[str, Any]) -> RelaySpec:
    """A RelaySpec from a journal record; ValueError names what is bad."""
    if not isinstance(d, dict):
        raise ValueError("not an object")
    unknown = set(d) - set(_FIELDS)
    if unknown:
        raise ValueError("unknown fields %s" % sorted(unknown))
    for key in ("relay_id", "vhost_path"):
        if key not in d:
            raise ValueError("no %s" % key)
    if not isinstance(d["relay_id"], int) or d["relay_id"] < 0:
        raise ValueError("bad relay_id %r" % d["relay_id"])
    if not isinstance(d["vhost_path"], str) or not d["vhost_path"]:
        raise ValueError("bad vhost_path %r" % d["vhost_path"])
    kw = dict(d)
    if "cpus" in kw:
        cpus = kw["cpus"]
        if not (isinstance(cpus, list) and len(cpus) == 2 and all(
                c is None or isinstance(c, int) for c in cpus)):
            raise ValueError("bad cpus %r" % (cpus,))
        kw["cpus"] = tuple(cpus)
    if "bond_members" in kw:
        members = kw["bond_members"]
        if not (isinstance(members, list) and
                all(isinstance(m, str) for m in members)):
            raise ValueError("bad bond_members %r" % (members,))
        kw["bond_members"] = tuple(members)
    for key in ("vf", "vhost_path", "vf_label", "port_id", "mac",
                "instance_uuid"):
        if key in kw and not isinstance(kw[key], str):
            raise ValueError("bad %s %r" % (key, kw[key]))
    for key in ("client", "jumbo", "mrgbuf", "tso", "link_follows_vf"):
        if key in kw and not isinstance(kw[key], bool):
            raise ValueError("bad %s %r" % (key, kw[key]))
    for key in ("max_queues", "vf_queues"):
        if key in kw and (not isinstance(kw[key], int) or
                          not 0 <= kw[key] <= MAX_QUEUES):
            raise ValueError("bad %s %r" % (key, kw[key]))
    for key in ("numa_hint", "bond_mode", "socket_uid", "socket_gid",
                "socket_mode"):
        if key in kw and kw[key] is not None and not isinstance(kw[key], int):
            raise ValueError("bad %s %r" % (key, kw[key]))
    return RelaySpec(**kw)


class Journal:
    def __init__(self, path: str) -> None:
        self.path = path

    def save(self, relays: list[tuple[RelaySpec, str]],
             pins: dict[int, tuple[int | None, int | None]]) -> None:
        lines = [json.dumps({"version": VERSION})]
        for spec, source in relays:
            lines.append(json.dumps({"relay": spec_to_dict(spec),
                                     "source": source}, sort_keys=True))
        for relay_id, cpus in sorted(pins.items()):
            lines.append(json.dumps({"pin": relay_id, "cpus": list(cpus)}))
        # In the state directory (root's alone), written whole or not at
        # all, never through a link someone planted.
        directory = trusted.ensure_dir(os.path.dirname(self.path) or ".",
                                       mode=0o700, what="state directory")
        trusted.write_file(directory, os.path.basename(self.path),
                           ("\n".join(lines) + "\n").encode("utf-8"),
                           mode=0o600, sync=True)

    def load(self) -> tuple[list[tuple[RelaySpec, str]],
                            dict[int, tuple[int | None, int | None]]]:
        relays: list[tuple[RelaySpec, str]] = []
        pins: dict[int, tuple[int | None, int | None]] = {}
        try:
            raw = trusted.read_file(os.path.dirname(self.path) or ".",
                                    os.path.basename(self.path), MAX_BYTES)
        except FileNotFoundError:
            return relays, pins
        except OSError as exc:
            LOG.error("journal %s unreadable (%s): nothing restored",
                      self.path, exc)
            return relays, pins
        bad = []
        for lineno, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
                if not isinstance(record, dict):
                    raise ValueError("not an object")
                if "version" in record:
                    if record["version"] != VERSION:
                        raise ValueError("version %r" % record["version"])
                elif "relay" in record:
                    source = record.get("source", "journal")
                    if not isinstance(source, str):
                        raise ValueError("bad source")
                    relays.append((spec_from_dict(record["relay"]), source))
                elif "pin" in record:
                    cpus = record.get("cpus")
                    if not (isinstance(record["pin"], int) and
                            isinstance(cpus, list) and len(cpus) == 2 and
                            all(c is None or isinstance(c, int)
                                for c in cpus)):
                        raise ValueError("bad pin")
                    pins[record["pin"]] = (cpus[0], cpus[1])
                else:
                    raise ValueError("unknown record")
            except (ValueError, UnicodeDecodeError, TypeError) as exc:
                bad.append((lineno, str(exc)))
        if bad:
            aside = "%s.damaged-%d" % (self.path, int(time.time()))
            trusted.write_file(os.path.dirname(aside) or ".",
                               os.path.basename(aside), raw, mode=0o600)
            LOG.error("journal %s is damaged (%s); a copy is in %s; "
                      "restoring the %d valid relay(s) and %d pin(s)",
                      self.path, "; ".join("line %d: %s" % b
                                           for b in bad[:5]),
                      aside, len(relays), len(pins))
        return relays, pins
