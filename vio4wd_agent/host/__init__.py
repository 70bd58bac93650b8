# SPDX-License-Identifier: Apache-2.0
"""The host under the agent: what sysfs says about its devices, and
binding VFs to vfio-pci at start."""
