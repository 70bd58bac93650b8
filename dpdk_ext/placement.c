/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * Placement policy: which NUMA node a relay's memory goes to and which
 * worker runs a direction.  Pure functions, so the policy is unit-tested
 * without an EAL and used unchanged by the data plane.
 */
#include <stdint.h>

#include "vio4wd.h"

int32_t
v4w_pick_node(int32_t hint, int32_t vf_node, int32_t main_node)
{
	if (hint >= 0)
		return hint;
	if (vf_node >= 0)
		return vf_node;
	return main_node >= 0 ? main_node : 0;
}

int32_t
v4w_move_target(int32_t pool_node, int32_t vm_node)
{
	return vm_node >= 0 && vm_node != pool_node ? vm_node : V4W_NONE;
}

int32_t
v4w_pick_worker(const int32_t *worker_node, const uint32_t *load,
		uint32_t n, int32_t node)
{
	int32_t best = V4W_NONE;
	uint32_t i;
	int pass;

	for (pass = 0; pass < 2 && best == V4W_NONE; pass++)
		for (i = 0; i < n; i++) {
			if (pass == 0 && node >= 0 && worker_node[i] != node)
				continue;
			if (best == V4W_NONE || load[i] < load[best])
				best = i;
		}
	return best;
}
