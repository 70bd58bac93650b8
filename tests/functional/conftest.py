# SPDX-License-Identifier: Apache-2.0
"""Fixtures driving real DPDK: a test-owned network namespace the whole
session runs in, hugepages mounted for the session, one in-process data
plane (the EAL starts once per process) and dpdk-testpmd virtio-user VMs.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Callable, Iterator

import pytest

from vio4wd_agent.conf.settings import online_cpus
from vio4wd_agent.demo import hugepages, netns, rawport, testpmd
from vio4wd_agent.relay import eal
from vio4wd_agent.relay.engine import RelayEngine
from vio4wd_agent.relay.model import RelaySpec
from tests.functional import util

VM_MAC = "02:00:00:00:aa:01"
KERNEL_MAC = "02:00:00:00:bb:01"


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    if os.geteuid() != 0:
        raise pytest.UsageError("the functional tests need root (DPDK, "
                                "namespaces); run them through `make test`")
    if shutil.which("dpdk-testpmd") is None:
        raise pytest.UsageError("dpdk-testpmd missing; run `make install`")


@pytest.fixture(autouse=True)
def no_agent_outlives_its_test() -> Iterator[None]:
    """An agent a failing test did not stop is killed (by the PID we
    started), so it cannot disturb the tests after it."""
    from tests.functional import agentproc
    mark = len(agentproc.STARTED)       # module fixtures' agents stay
    yield
    while len(agentproc.STARTED) > mark:
        a = agentproc.STARTED.pop()
        if a.proc is not None and a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait(30)


@pytest.fixture(scope="session")
def workdir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="v4wtest-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def test_netns() -> Iterator[netns.NetNamespace]:
    """The session runs inside its own namespace: veths, af_packet ports
    and every process the tests start stay away from the host's network."""
    ns = netns.NetNamespace.of_this_process("v4wtest").create()
    ns.enter()
    yield ns
    ns.delete()


@pytest.fixture(scope="session")
def hugepage_dir(workdir: str) -> Iterator[str | None]:
    huge = hugepages.Hugepages(os.path.join(workdir, "huge"), 1024)
    path = huge.setup()
    if path is None:
        print("no hugepages (%s): tests run with --no-huge" % huge.reason)
    yield path
    huge.teardown()


@pytest.fixture(scope="session")
def cpus() -> dict[str, int]:
    """Where things run: the relay's worker on the last CPU, the test VMs'
    forwarding lcore elsewhere, so neither starves the other."""
    online = online_cpus()
    if len(online) < 2:
        pytest.skip("needs 2 CPUs")
    worker = online[-1]
    return {"main": online[0], "worker": worker,
            "vm": online[-2] if len(online) > 2 else online[0]}


@pytest.fixture(scope="session")
def session_engine(hugepage_dir: str | None, cpus: dict[str, int],
                   test_netns: netns.NetNamespace) -> Iterator[RelayEngine]:
    memory = eal.MemoryPlan(hugepage_dir, 768, "test session")
    args = eal.build_eal_args(main_lcore=cpus["main"],
                              worker_cpus=[cpus["worker"]],
                              file_prefix="v4wtest-%d" % os.getpid(),
                              memory=memory, log_level=4)
    engine = RelayEngine()
    engine.start(args)
    yield engine
    engine.shutdown()


@pytest.fixture(scope="session")
def multi_worker_engine(hugepage_dir: str | None, cpus: dict[str, int],
                        test_netns: netns.NetNamespace) -> Iterator[object]:
    """A second data plane, in a child process, with three worker lcores
    (1-3) sharing the last CPU: enough workers to test placement and live
    moves on a 2-CPU machine (correctness, not speed)."""
    from tests.functional.engine_host import RemoteEngine
    memory = eal.MemoryPlan(hugepage_dir, 512, "multi-worker host")
    args = eal.build_eal_args(main_lcore=cpus["main"], worker_cpus=[],
                              file_prefix="v4wmulti-%d" % os.getpid(),
                              memory=memory, log_level=4)
    # -l cannot put several lcores on one CPU; --lcores can.
    i = args.index("-l")
    args[i:i + 2] = ["--lcores", "0@%d,(1-3)@%d" % (cpus["main"],
                                                    cpus["worker"])]
    remote = RemoteEngine(args)
    yield remote
    remote.close()


@pytest.fixture
def engine(session_engine: RelayEngine) -> Iterator[RelayEngine]:
    """The data plane, checked to be empty and leak-free after each test."""
    yield session_engine
    for relay_id in session_engine.relay_ids():
        session_engine.remove_relay(relay_id)
    res = session_engine.resources()
    assert (res.relays, res.ports, res.mempools) == (0, 0, 0), res


@pytest.fixture
def sockdir(workdir: str) -> str:
    path = os.path.join(workdir, util.unique("sock"))
    os.makedirs(path)
    return path


@pytest.fixture
def veth(test_netns: netns.NetNamespace) -> Callable[[], tuple[str, str]]:
    """Factory: a fresh veth pair (DPDK end, kernel end) in the session
    namespace."""
    def make() -> tuple[str, str]:
        name = util.unique("v4t")
        test_netns.add_veth(name + "a", name + "b")
        return name + "a", name + "b"
    return make


def start_vm(socket_path: str | list[str], hugepage_dir: str | None,
             cpus: dict[str, int], workdir: str, *, server: bool = False,
             mac: str = VM_MAC, mbufs: int = 8192, queues: int = 1,
             extra: list[str] | None = None) -> testpmd.TestPmd:
    """A dpdk-testpmd virtio-user VM with a port on each socket; the
    caller stops it."""
    paths = [socket_path] if isinstance(socket_path, str) else socket_path
    vdevs = [testpmd.virtio_user_vdev(p, server=server, mac=mac,
                                      queues=queues, index=i)
             for i, p in enumerate(paths)]
    # Both VM lcores on the VM's CPU: a main lcore parked on the relay's
    # worker CPU can be starved there for seconds, which shows up as a VM
    # that takes forever to quit.
    vm = testpmd.TestPmd(
        vdevs, lcores="0@%d,1@%d" % (cpus["vm"], cpus["vm"]),
        file_prefix=util.unique("v4wvm%d-" % os.getpid()),
        hugepage_dir=hugepage_dir, mbufs=mbufs, extra_args=extra,
        log_path=os.path.join(workdir, "testpmd.log"))
    try:
        return vm.start()
    except BaseException:
        vm.stop()
        raise


@pytest.fixture
def vm_factory(hugepage_dir: str | None, cpus: dict[str, int],
               workdir: str) -> Iterator[Callable[..., testpmd.TestPmd]]:
    """Factory: a dpdk-testpmd virtio-user VM on a socket, stopped after."""
    started: list[testpmd.TestPmd] = []

    def make(socket_path: str | list[str], **kw: Any) -> testpmd.TestPmd:
        vm = start_vm(socket_path, hugepage_dir, cpus, workdir, **kw)
        started.append(vm)
        return vm

    yield make
    for vm in started:
        vm.stop()


def relay_spec(relay_id: int, sockdir: str, vf: str,
               **kw: object) -> RelaySpec:
    return RelaySpec(relay_id=relay_id,
                     vhost_path=os.path.join(sockdir, "r%d.sock" % relay_id),
                     vf=vf, **kw)  # type: ignore[arg-type]


def connected(engine: RelayEngine, relay_id: int) -> Callable[[], bool]:
    return lambda: engine.relay(relay_id).vm_connected


@pytest.fixture
def kernel_port() -> Iterator[Callable[[str], rawport.RawPort]]:
    ports: list[rawport.RawPort] = []

    def make(ifname: str) -> rawport.RawPort:
        port = rawport.RawPort(ifname)
        ports.append(port)
        return port
    yield make
    for p in ports:
        p.close()
