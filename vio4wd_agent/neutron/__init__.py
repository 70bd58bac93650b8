# SPDX-License-Identifier: Apache-2.0
"""vio4wd's presence in Neutron: the agent side on oslo.messaging (state
reports, port status, notifications, a per-host RPC server; see
:mod:`.bus`) and the ML2 mechanism driver that binds virtio-forwarder
ports to hosts with a live agent (:mod:`.mech_driver`, loaded by
neutron-server only)."""
