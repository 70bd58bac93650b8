# SPDX-License-Identifier: Apache-2.0
"""cffi build of the data plane into ``vio4wd_agent.relay._dpdk``.

The cdef is read from the public header (between its CDEF markers), so the
header is the single description of the C API.
"""
from __future__ import annotations

import os
import shlex
import subprocess

import cffi

HERE = os.path.dirname(os.path.abspath(__file__))
# Sources relative to the project root, as setuptools wants them.
SOURCES = ["dpdk_ext/" + name for name in (
    "eal.c",        # EAL start and stop, the housekeeping thread, info
    "worker.c",     # the forwarding loop of a worker lcore
    "relay.c",      # the relay table: add, remove, VF later, housekeeping
    "vhost.c",      # vhost-user: callbacks, features, the socket
    "vf.c",         # VF and bond ports: probe, queues, link watch
    "mempool.c",    # mbuf pools: sizing, NUMA moves, retired pools
    "placement.c",  # NUMA and worker choice; directions on workers
    "query.c",      # state and counters for the control plane
)]


def read_cdef() -> str:
    with open(os.path.join(HERE, "vio4wd.h"), encoding="utf-8") as f:
        text = f.read()
    return text.split("/* V4W_CDEF_BEGIN */")[1].split("/* V4W_CDEF_END */")[0]


def pkg_config(flag: str) -> list[str]:
    try:
        out = subprocess.check_output(["pkg-config", flag, "libdpdk"], text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(
            "vio4wd: cannot find DPDK through pkg-config (%s); install "
            "libdpdk-dev (Debian: apt-get install libdpdk-dev)" % exc)
    return shlex.split(out)


# V4W_SANITIZE=1: AddressSanitizer and UndefinedBehaviorSanitizer (make
# test-asan); the process must preload gcc's libasan (Python is not built
# with it), and any finding aborts it.
SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
            "-fno-sanitize-recover=all"] \
    if os.environ.get("V4W_SANITIZE") == "1" else []

ffibuilder = cffi.FFI()
ffibuilder.cdef(read_cdef())
ffibuilder.set_source(
    "vio4wd_agent.relay._dpdk",
    '#include "vio4wd.h"',
    sources=SOURCES,
    include_dirs=["dpdk_ext"],
    extra_compile_args=pkg_config("--cflags") + [
        "-O1" if SANITIZE else "-O3", "-g", "-Wall", "-Wextra",
        "-Wno-unused-parameter", "-Wno-missing-field-initializers",
        "-Werror=implicit-function-declaration"] + SANITIZE,
    # The bonding API is a driver's, not in pkg-config's list.
    extra_link_args=pkg_config("--libs") + ["-lrte_net_bond"] + SANITIZE,
)

if __name__ == "__main__":
    os.chdir(os.path.dirname(HERE))
    ffibuilder.compile(verbose=True)
