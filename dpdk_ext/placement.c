/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * Placement: which NUMA node a relay's memory goes to and which worker
 * runs a direction.  The policy is pure functions (first), unit-tested
 * without an EAL and used unchanged by the data plane; then putting a
 * relay's directions on workers, taking them off, and moving them.
 */
#include <errno.h>
#include <stdint.h>

#include "v4w_priv.h"

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

/* ---- directions on workers ----------------------------------------- */

static int
place_dir(struct v4w_relay *r, int dir)
{
	struct v4w_dir *d = &r->d[dir];
	int lcore = d->pinned;

	if (lcore == V4W_NONE || !v4w_is_worker(lcore))
		lcore = v4w_least_loaded_worker(r->pool_node);
	return v4w_publish(d, lcore);
}

/* Both directions on their workers.  Fails only with no worker at all,
 * which a running data plane does not have. */
int
v4w_place(struct v4w_relay *r)
{
	int ret = place_dir(r, V4W_VF_TO_VM);

	if (ret == 0)
		ret = place_dir(r, V4W_VM_TO_VF);
	if (ret < 0)
		V4W_LOG(ERR, "relay %u: cannot be put on a worker: %s", r->id,
			v4w_last_error());
	return ret;
}

/* Off the workers; returns once no worker can be in the relay.  Cannot
 * fail (the workers' task lists are changed in place). */
void
v4w_unplace(struct v4w_relay *r)
{
	v4w_unpublish(&r->d[V4W_VF_TO_VM]);
	v4w_unpublish(&r->d[V4W_VM_TO_VF]);
	v4w_dir_release_held(&r->d[V4W_VF_TO_VM]);
	v4w_dir_release_held(&r->d[V4W_VM_TO_VF]);
}

/* ---- moving a direction -------------------------------------------- */

static int
relay_move_dir(struct v4w_relay *r, int dir, int cpu)
{
	struct v4w_dir *d = &r->d[dir];
	int target = cpu;
	int ret;

	if (cpu != V4W_NONE && !v4w_is_worker(cpu))
		return v4w_fail(EINVAL, "relay %u: CPU %d for %s is not one of "
				"the worker CPUs", r->id, cpu, v4w_dir_name[dir]);
	d->pinned = cpu;
	if (target == V4W_NONE && d->lcore != V4W_NONE) {
		/* Not counting ourselves, or a move to "anywhere" could
		 * bounce between equally loaded workers. */
		v4w_workers_tbl[d->lcore].ndirs--;
		target = v4w_least_loaded_worker(r->pool_node);
		v4w_workers_tbl[d->lcore].ndirs++;
	}
	if (target == d->lcore)
		return 0;
	/* Off the old worker first (it may have been mid-burst: the held
	 * packets stay in `d` and the new worker resumes with them). */
	v4w_unpublish(d);
	ret = v4w_publish(d, target);
	if (ret == 0)
		V4W_LOG(DEBUG, "relay %u: %s moved to CPU %d", r->id,
			v4w_dir_name[dir], target);
	return ret;
}

static int
relay_set_cpu_locked(uint32_t id, int32_t dir, int32_t cpu)
{
	struct v4w_relay *r;

	if (dir != V4W_VF_TO_VM && dir != V4W_VM_TO_VF)
		return v4w_fail(EINVAL, "relay %u: bad direction %d", id, dir);
	r = v4w_relay_lookup(id);
	return r == NULL ? -ENOENT : relay_move_dir(r, dir, cpu);
}

int
v4w_relay_set_cpu(uint32_t id, int32_t dir, int32_t cpu)
{
	return V4W_CTL_CALL(relay_set_cpu_locked(id, dir, cpu));
}

