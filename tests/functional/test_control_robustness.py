# SPDX-License-Identifier: Apache-2.0
"""Bad input on every ZeroMQ server: garbage, truncated and oversized
messages, unknown enum values, missing required fields, and 1000 generated
malformed requests, and a flood of delayed stats requests.  Each is
answered (or, beyond 4 MB, dropped by ZeroMQ), the agent stays up, and no
relay is lost."""
from __future__ import annotations

import zmq
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import pytest

from vio4wd_agent.control import client, protocol
from tests.functional import util
from tests.functional.agentproc import native_agent
from tests.functional.conftest import start_vm

R = protocol.PortControlRequest


@pytest.fixture(scope="module")
def agent(tmp_path_factory, cpus, hugepage_dir, workdir):
    # Generated requests name only device-map entries (vdevs) or
    # addresses that are not PCI addresses at all, and the PCI bus is off
    # besides: fuzzing never hot-plugs a device of the host.
    a = native_agent(tmp_path_factory.mktemp("robust"), cpus, hugepage_dir,
                     "[relay]\nstatic_vfs = net_null90=0\n"
                     "%s"
                     "[vhost]\ndynamic_sockets = true\n"
                     "[dataplane]\nextra_eal_args = --no-pci\n"
                     % "".join("device_map = 0000:99:00.%d=net_null%d\n"
                               % (f, 91 + f) for f in range(4)), "robust")
    a.start().wait_ready()
    # A VM on the static relay: its VF (net_null floods it) is polled only
    # while one is there, and it must keep forwarding through every bad
    # request.  The VM does not forward (no CPU spent on it): the relay
    # takes a burst every few ms, holds it, and drops it as "VM queue
    # full", which counts as taken from the VF.
    vm = start_vm(str(a.socket_dir / "virtio-forwarder0.sock"), hugepage_dir,
                  cpus, workdir)
    try:
        util.wait_for(lambda: client.request(
            a.ep("stats"), protocol.StatsRequest(relay=[0]),
            protocol.StatsResponse).relay[0].active, what="VM on relay 0")
        yield a
    finally:
        vm.stop()
        a.stop()


def send(agent, endpoint: str, data: bytes | list[bytes],
         timeout: int = 5000) -> bytes | None:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.RCVTIMEO, timeout)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(agent.ep(endpoint))
    try:
        if isinstance(data, list):
            sock.send_multipart(data)
        else:
            sock.send(data)
        return sock.recv()
    except zmq.Again:
        return None
    finally:
        sock.close()


def relay_counters(agent):  # type: ignore[no-untyped-def]
    answer = client.request(agent.ep("stats"), protocol.StatsRequest(),
                            protocol.StatsResponse)
    return {r.id: r.vf_to_vm.pkts_rx_from_vf for r in answer.relay}


def assert_healthy(agent, before: dict[int, int]) -> None:
    assert agent.proc.poll() is None, agent.output()
    now = relay_counters(agent)
    assert sorted(now) == sorted(before)
    # the static relay keeps forwarding (net_null floods it)
    util.wait_for(lambda: relay_counters(agent)[0] > now[0],
                  what="relay 0 still forwarding")


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


VALID = R(op=R.ADD_SOCK, vhost_path="/tmp/fuzz.sock",
          conditional=True).SerializeToString()

CASES = [
    ("garbage", "port_control", "garbagé".encode()),
    ("empty", "port_control", b""),
    ("truncated", "port_control", VALID[:-3]),
    ("unknown op", "port_control", b"\x08\x09"),
    ("negative op", "port_control", b"\x08" + varint(2**64 - 1)),
    ("pci address missing fields", "port_control",
     b"\x08\x00\x18\x01\x12\x02\x08\x00"),
    ("wrong wire type", "port_control", b"\x0d\x00\x00\x00\x00"),
    ("path not UTF-8", "port_control", b"\x08\x04\x3a\x02/\xff"),
    ("name not UTF-8", "port_control", b"\x08\x00\x18\x01\x2a\x01\xc3"),
    ("path with NUL", "port_control", b"\x08\x04\x3a\x03/a\x00"),
    ("stats garbage", "stats", b"\xff\xff\xff\xff"),
    ("stats unknown relay", "stats", b"\x0a\x01\x63"),
    ("stats huge delay", "stats", b"\x18" + varint(10**9)),
    ("core sched unknown op", "core_sched", b"\x08\x07"),
    ("core sched missing cpus", "core_sched", b"\x08\x00\x12\x02\x08\x00"),
    ("config garbage", "config", b"\x0a\xff"),
]


@pytest.mark.parametrize("what,endpoint,data", CASES,
                         ids=[c[0] for c in CASES])
def test_bad_message_answered(agent, what, endpoint, data):
    before = relay_counters(agent)
    reply = send(agent, endpoint, data)
    assert reply is not None, what
    kinds = {"port_control": protocol.PortControlResponse,
             "stats": protocol.StatsResponse,
             "core_sched": protocol.CoreSchedResponse,
             "config": protocol.ConfigResponse}
    answer = kinds[endpoint]()
    answer.ParseFromString(reply)
    if endpoint in ("port_control", "core_sched"):
        assert answer.status == 0 and answer.error_code < 0  # ERROR
        assert answer.error_code_source
    elif endpoint == "stats":
        assert answer.status != answer.OK and answer.error
    else:
        assert answer.status == answer.EBADR
    assert_healthy(agent, before)


def test_multipart_and_oversized(agent):
    before = relay_counters(agent)
    reply = send(agent, "port_control", [b"\x08\x00", b"\x08\x01"])
    answer = protocol.PortControlResponse.FromString(reply)
    assert answer.status == answer.ERROR and "one message part" in \
        answer.error_code_source
    # Over 64 kB: refused with an answer saying so.
    for endpoint in ("port_control", "stats", "core_sched", "config"):
        reply = send(agent, endpoint, b"\x00" * (200 * 1024))
        assert reply is not None, endpoint
    answer = protocol.PortControlResponse.FromString(
        send(agent, "port_control", b"\x00" * (200 * 1024)))
    assert answer.status == answer.ERROR and \
        "request of 204800 bytes; at most 65536" in \
        answer.error_code_source
    # Over the hard limit ZeroMQ drops the connection unread.
    assert send(agent, "port_control", b"\x00" * (5 << 20),
                timeout=1000) is None
    assert_healthy(agent, before)


def test_relay_ids_fit_every_message(agent):
    """Relay ids travel as int32 in ConfigResponse and CoreSchedRequest:
    an ADD beyond that is refused, saying so (once a relay 4294967295 was
    made, and every config request failed from then on), and the largest
    id that fits is answered everywhere."""
    before = relay_counters(agent)
    pci = dict(domain=0, bus=0x99, slot=0, function=3)
    for bad in (2**31, 2**32 - 1):
        answer = protocol.PortControlResponse.FromString(send(
            agent, "port_control", R(op=R.ADD, virtio_id=bad,
                                     pci_addrs=[R.PciAddress(**pci)])
            .SerializeToString()))
        assert answer.status == answer.ERROR
        assert "virtio_id %d is out of range (0-2147483647)" % bad in \
            answer.error_code_source
    top = 2**31 - 1
    ok = protocol.PortControlResponse.FromString(send(
        agent, "port_control", R(op=R.ADD, virtio_id=top,
                                 pci_addrs=[R.PciAddress(**pci)])
        .SerializeToString()))
    assert ok.status == ok.OK, ok
    try:
        config = client.request(agent.ep("config"), protocol.ConfigRequest(),
                                protocol.ConfigResponse)
        assert config.status == config.OK
        assert top in [r.relay_number for r in config.relay_cpu_map]
    finally:
        gone = protocol.PortControlResponse.FromString(send(
            agent, "port_control", R(op=R.REMOVE, virtio_id=top,
                                     pci_addrs=[R.PciAddress(**pci)])
            .SerializeToString()))
        assert gone.status == gone.OK, gone
    assert_healthy(agent, before)
    assert "Traceback" not in agent.output()


@pytest.fixture
def own_agent(tmp_path, cpus, hugepage_dir):
    """An agent nobody else asks anything (the fuzzers leave requests
    waiting on the module's)."""
    a = native_agent(tmp_path, cpus, hugepage_dir,
                     "[relay]\nstatic_vfs = net_null95=0\n", "flood")
    a.start().wait_ready()
    yield a
    a.stop()


def test_a_flood_of_delayed_stats_requests(own_agent):
    """Thousands of requests that each wait: past the cap they are
    refused, saying why; plain requests are answered meanwhile; the
    waiting ones are answered in the end."""
    from vio4wd_agent.control import stats as stats_server
    agent = own_agent
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(agent.ep("stats"))
    try:
        n = 2000
        counts = {"ok": 0, "refused": 0}

        def take_answer() -> None:
            answer = protocol.StatsResponse.FromString(
                sock.recv_multipart()[-1])
            if answer.status == answer.OK:
                counts["ok"] += 1
            else:
                assert answer.status == answer.ENOMEM, answer
                assert "requests with a delay are waiting already" in \
                    answer.error
                counts["refused"] += 1

        # At most 500 answers are let pile up on the way to us (ZeroMQ
        # drops those beyond its high-water mark of 1000 for a client that
        # does not read, as for anyone); the waiting ones come later.
        for sent in range(1, n + 1):
            sock.send_multipart([b"", protocol.StatsRequest(
                delay=10000).SerializeToString()])
            while sent - counts["ok"] - counts["refused"] > \
                    500 + stats_server.MAX_WAITING:
                assert sock.poll(util.DEADLINE * 1000), counts
                take_answer()
        # Meanwhile a plain request is answered.
        plain = client.request(agent.ep("stats"), protocol.StatsRequest(),
                               protocol.StatsResponse)
        assert plain.status == plain.OK and plain.relay
        # Every request is answered: refused at once past the cap, saying
        # why, or with its rates when its time comes.  (Slots that free
        # while the flood is still being read may take a few more.)
        while counts["ok"] + counts["refused"] < n:
            assert sock.poll(util.DEADLINE * 1000), counts
            take_answer()
        ok, refused = counts["ok"], counts["refused"]
        assert ok >= stats_server.MAX_WAITING and refused > 0
        assert ok + refused == n
    finally:
        sock.close(0)
    ok = client.request(agent.ep("stats"), protocol.StatsRequest(delay=10),
                        protocol.StatsResponse)
    assert ok.status == ok.OK


ops = st.one_of(st.integers(0, 4), st.integers(5, 2**32 - 1))
# PCI addresses of the device map (net_null vdevs), or field values no PCI
# address has: never a device that might exist on this host.
mapped = st.sampled_from([(0, 0x99, 0, f) for f in range(4)])
not_pci = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)
                    ).filter(lambda t: t[0] > 0xFFFF or t[1] > 0xFF or
                             t[2] > 0x1F or t[3] > 7)
pci = st.one_of(mapped, not_pci)


def encode(op: int, pcis: list, virtio_id: int | None, name: str | None,
           mode: int | None, path: str | None, cond: bool | None) -> bytes:
    out = b"\x08" + varint(op)
    for p in pcis:
        body = b"".join(bytes([(i + 1) << 3]) + varint(v)
                        for i, v in enumerate(p))
        out += b"\x12" + varint(len(body)) + body
    if virtio_id is not None:
        out += b"\x18" + varint(virtio_id)
    if cond is not None:
        out += b"\x20" + varint(int(cond))
    if name is not None:
        raw = name.encode("utf-8", "surrogatepass")
        out += b"\x2a" + varint(len(raw)) + raw
    if mode is not None:
        out += b"\x30" + varint(mode)
    if path is not None:
        raw = path.encode("utf-8", "surrogatepass")
        out += b"\x3a" + varint(len(raw)) + raw
    return out


structured = st.builds(
    encode, ops, st.lists(pci, max_size=10),
    st.none() | st.integers(0, 2**32 - 1),
    st.none() | st.text(max_size=40), st.none() | st.integers(0, 2**32 - 1),
    st.none() | st.text(max_size=120), st.none() | st.booleans())
mutated = st.tuples(st.binary(min_size=1, max_size=60),
                    st.integers(0, 60)).map(
    lambda t: VALID[:t[1]] + t[0] + VALID[t[1]:])
requests = st.one_of(st.binary(max_size=300), structured, mutated)


@settings(max_examples=1000, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=requests)
def test_generated_requests(agent, data):
    reply = send(agent, "port_control", data)
    assert reply is not None, data
    answer = protocol.PortControlResponse.FromString(reply)
    if answer.status == answer.ERROR:
        assert answer.error_code < 0 and answer.error_code_source


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(["stats", "core_sched", "config"]),
       data=st.binary(max_size=200))
def test_generated_bytes_on_other_servers(agent, endpoint, data):
    if endpoint == "stats":
        # A well-formed request may ask to wait up to a minute: not the
        # point here.
        delay = 0
        try:
            delay = protocol.StatsRequest.FromString(data).delay
        except Exception:
            pass
        assume(delay < 3000)
    assert send(agent, endpoint, data) is not None


def test_still_healthy_after_fuzzing(agent):
    before = relay_counters(agent)
    assert 0 in before
    assert_healthy(agent, before)
    assert "Traceback" not in agent.output()
