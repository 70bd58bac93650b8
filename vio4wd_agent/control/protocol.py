# SPDX-License-Identifier: Apache-2.0
"""virtio-forwarder's protobuf messages (package ``virtioforwarder``).

The schema is ``virtioforwarder.proto``; protoc compiles it into
``virtioforwarder.desc`` (a serialized FileDescriptorSet), and the message
classes are built from that at import.  Loading a descriptor instead of
generated code keeps this module working with any protobuf runtime from
4.21 on.  Regenerate after editing the .proto:

    python -m grpc_tools.protoc -Ivio4wd_agent/control \\
        --descriptor_set_out=vio4wd_agent/control/virtioforwarder.desc \\
        vio4wd_agent/control/virtioforwarder.proto
"""
from __future__ import annotations

import os
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "virtioforwarder"
DESCRIPTOR_SET = os.path.join(os.path.dirname(__file__),
                              "virtioforwarder.desc")


def _load() -> descriptor_pool.DescriptorPool:
    with open(DESCRIPTOR_SET, "rb") as f:
        files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:
        pool.Add(proto)
    return pool


_POOL = _load()


def message_class(name: str) -> Any:
    desc = _POOL.FindMessageTypeByName("%s.%s" % (PACKAGE, name))
    get = getattr(message_factory, "GetMessageClass", None)
    if get is not None:
        return get(desc)
    return message_factory.MessageFactory(_POOL).GetPrototype(desc)


PortControlRequest: Any = message_class("PortControlRequest")
PortControlResponse: Any = message_class("PortControlResponse")
StatsRequest: Any = message_class("StatsRequest")
StatsResponse: Any = message_class("StatsResponse")
RelayState: Any = message_class("RelayState")
WorkerLoad: Any = message_class("WorkerLoad")
RelayCPU: Any = message_class("RelayCPU")
ConfigRequest: Any = message_class("ConfigRequest")
ConfigResponse: Any = message_class("ConfigResponse")
CoreSchedRequest: Any = message_class("CoreSchedRequest")
CoreSchedResponse: Any = message_class("CoreSchedResponse")
