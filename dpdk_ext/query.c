/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * What the control plane reads of a relay: its state and counters, as
 * consistent snapshots.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include <rte_eth_bond.h>
#include <rte_ethdev.h>

#include "v4w_priv.h"

/* ---- queries ------------------------------------------------------- */

/*
 * A consistent snapshot of a direction's counters.  The writer's section
 * is a few stores, but its thread may be preempted inside it (workers can
 * share a CPU): after a short spin the reader yields the CPU instead of
 * spinning out its time slice under the control lock.
 */
static void
read_dir(const struct v4w_dir *d, struct v4w_dir_stats *o)
{
	const struct v4w_dir_stats *s = &d->st;
	unsigned int tries = 0;
	uint32_t seq;

again:
	seq = __atomic_load_n(&d->seq, __ATOMIC_ACQUIRE);
	if (seq & 1) {
		if (++tries < 64)
			rte_pause();
		else
			sched_yield();
		goto again;
	}
	rte_smp_rmb();

	o->rx_pkts = __atomic_load_n(&s->rx_pkts, __ATOMIC_RELAXED);
	o->rx_bytes = __atomic_load_n(&s->rx_bytes, __ATOMIC_RELAXED);
	o->tx_pkts = __atomic_load_n(&s->tx_pkts, __ATOMIC_RELAXED);
	o->tx_bytes = __atomic_load_n(&s->tx_bytes, __ATOMIC_RELAXED);
	o->drop_full_pkts = __atomic_load_n(&s->drop_full_pkts,
					    __ATOMIC_RELAXED);
	o->drop_full_bytes = __atomic_load_n(&s->drop_full_bytes,
					     __ATOMIC_RELAXED);
	o->drop_noconn_pkts = __atomic_load_n(&s->drop_noconn_pkts,
					      __ATOMIC_RELAXED);
	o->drop_noconn_bytes = __atomic_load_n(&s->drop_noconn_bytes,
					       __ATOMIC_RELAXED);
	o->drop_bad_pkts = __atomic_load_n(&s->drop_bad_pkts, __ATOMIC_RELAXED);
	o->drop_bad_bytes = __atomic_load_n(&s->drop_bad_bytes,
					    __ATOMIC_RELAXED);
	o->retries = __atomic_load_n(&s->retries, __ATOMIC_RELAXED);
	o->held = __atomic_load_n(&d->held_n, __ATOMIC_RELAXED);
	rte_smp_rmb();
	if (__atomic_load_n(&d->seq, __ATOMIC_ACQUIRE) != seq)
		goto again;
	o->cpu = d->lcore;
}

static int
relay_get_locked(uint32_t id, struct v4w_relay_info *out)
{
	struct v4w_relay *r = v4w_relay_lookup(id);
	uint8_t i;

	if (r == NULL)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	out->id = r->id;
	out->flags = r->flags;
	out->vf_port = r->has_port ? r->port_id : V4W_NONE;
	out->vf_ready = __atomic_load_n(&r->vf_ready, __ATOMIC_ACQUIRE);
	out->vf_link_up = __atomic_load_n(&r->vf_link, __ATOMIC_ACQUIRE);
	out->vm_connected = __atomic_load_n(&r->vid, __ATOMIC_ACQUIRE) >= 0;
	out->vm_socket = out->vm_connected ||
			 __atomic_load_n(&r->vm_sockets, __ATOMIC_ACQUIRE) > 0;
	out->numa_node = r->pool_node;
	out->vm_numa_node = r->vm_node;
	out->numa_hint = r->numa_hint;
	out->mtu = r->mtu;
	out->pool_moves = r->pool_moves;
	out->vm_connects = r->vm_connects;
	out->vm_rxq_mask = __atomic_load_n(&r->rxq_mask, __ATOMIC_ACQUIRE);
	out->vm_txq_mask = __atomic_load_n(&r->txq_mask, __ATOMIC_ACQUIRE);
	out->max_queues = __builtin_popcount(r->queue_limit);
	out->vf_queues = r->has_port ? r->vf_nq : 0;
	out->reason = !r->has_port ? V4W_REASON_NO_VF :
		      !out->vf_ready ? V4W_REASON_VF_NOT_READY :
		      !out->vf_link_up ? V4W_REASON_VF_LINK_DOWN :
		      !out->vm_connected ? V4W_REASON_NO_VM :
		      (out->vm_rxq_mask | out->vm_txq_mask) == 0 ?
		      V4W_REASON_GUEST_QUEUES : V4W_REASON_FORWARDING;
	out->socket_down = r->vhost_down;
	out->n_members = r->n_members;
	for (i = 0; i < r->n_members; i++)
		if (r->member_out[i])
			out->members_out |= 1u << i;
	out->bond_mode = r->n_members ? r->bond_mode : V4W_NONE;
	out->active_member = V4W_NONE;
	if (r->n_members > 0) {
		uint16_t act[RTE_MAX_ETHPORTS];
		int n = rte_eth_bond_active_slaves_get(r->port_id, act,
						       RTE_MAX_ETHPORTS);

		int port = n <= 0 ? -1 : r->bond_mode ==
			   BONDING_MODE_ACTIVE_BACKUP ?
			   rte_eth_bond_primary_get(r->port_id) : act[0];
		uint8_t m;

		for (m = 0; m < r->n_members; m++)
			if (r->member_port[m] == port)
				out->active_member = m;
	}
	snprintf(out->vf_name, sizeof(out->vf_name), "%s", r->vf_name);
	snprintf(out->vhost_path, sizeof(out->vhost_path), "%s", r->path);
	read_dir(&r->d[V4W_VF_TO_VM], &out->dir[V4W_VF_TO_VM]);
	read_dir(&r->d[V4W_VM_TO_VF], &out->dir[V4W_VM_TO_VF]);
	if (r->has_port) {
		struct rte_eth_stats es;

		if (rte_eth_stats_get(r->port_id, &es) == 0) {
			out->vf_rx_missed = es.imissed;
			out->vf_rx_errors = es.ierrors + es.rx_nombuf;
			out->vf_tx_errors = es.oerrors;
		}
	}
	return 0;
}

int
v4w_relay_get(uint32_t id, struct v4w_relay_info *out)
{
	return V4W_CTL_CALL(relay_get_locked(id, out));
}

static int
relay_queue_stats_locked(uint32_t id, int32_t dir,
			 struct v4w_queue_stats *out, uint32_t max)
{
	const struct v4w_queue_stats *qs;
	struct v4w_relay *r;
	uint32_t q;

	if (dir != V4W_VF_TO_VM && dir != V4W_VM_TO_VF)
		return v4w_fail(EINVAL, "relay %u: bad direction %d", id, dir);
	r = v4w_relay_lookup(id);
	if (r == NULL)
		return -ENOENT;
	qs = r->d[dir].q;
	for (q = 0; q < max && q < V4W_MAX_QUEUES; q++) {
		out[q].pkts = __atomic_load_n(&qs[q].pkts, __ATOMIC_RELAXED);
		out[q].bytes = __atomic_load_n(&qs[q].bytes, __ATOMIC_RELAXED);
		out[q].drops = __atomic_load_n(&qs[q].drops, __ATOMIC_RELAXED);
		out[q].vf_pkts = __atomic_load_n(&qs[q].vf_pkts,
						 __ATOMIC_RELAXED);
	}
	return RTE_MAX((uint32_t)__builtin_popcount(r->queue_limit),
		       (uint32_t)r->vf_nq);
}

int
v4w_relay_queue_stats(uint32_t id, int32_t dir, struct v4w_queue_stats *out,
		      uint32_t max)
{
	return V4W_CTL_CALL(relay_queue_stats_locked(id, dir, out, max));
}

