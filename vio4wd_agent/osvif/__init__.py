# SPDX-License-Identifier: Apache-2.0
"""The os-vif plugin through which unmodified Nova plugs vnic_type
``virtio-forwarder`` ports into vio4wd (see :mod:`.plugin`)."""
