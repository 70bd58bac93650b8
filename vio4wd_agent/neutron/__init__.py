# SPDX-License-Identifier: Apache-2.0
"""vio4wd's presence in Neutron: the agent side on oslo.messaging (state
reports, port status, notifications, a per-host RPC server; see
:mod:`.bus`) and the ML2 mechanism driver that binds virtio-forwarder
ports to hosts with a live agent (:mod:`.mech_driver`, loaded by
neutron-server only)."""

import warnings

# oslo.messaging's dependencies import eventlet, which warns that it is
# deprecated; vio4wd does not use eventlet (its bus runs on threads).
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


def register_messaging_opts(conf) -> None:  # type: ignore[no-untyped-def]
    """oslo.messaging's options on ``conf`` (the agent's own ConfigOpts,
    not the global one): those list_opts() names, and the groups that
    oslo.messaging 18 registers on the global object only (metrics,
    tracing) and then reads from whatever object it was given."""
    import importlib
    from oslo_messaging import opts
    for group, options in opts.list_opts():
        conf.register_opts(options, group=group)
    for module, group in (("oslo_messaging._metrics.client",
                           "oslo_messaging_metrics"),
                          ("oslo_messaging._tracing.client",
                           "oslo_messaging_tracing")):
        try:
            options = getattr(importlib.import_module(module), group, None)
        except ImportError:         # an oslo.messaging without it
            continue
        if options:
            conf.register_opts(options, group=group)
