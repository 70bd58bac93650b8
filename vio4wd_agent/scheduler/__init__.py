# SPDX-License-Identifier: Apache-2.0
"""Core load balancer: a pure planner (balance) and the agent's thread
that samples loads and moves relay directions (daemon)."""
