/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * A relay's memory: the mbuf pool, sized for its VF rings and the bursts
 * in flight, made on a NUMA node and moved to the VM's when that differs;
 * pools replaced while mbufs were still out wait here until they are back.
 */
#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>
#include <rte_vhost.h>

#include "v4w_priv.h"

/* Pools replaced while mbufs were still out; freed once they are back. */
static struct rte_mempool *retired[RTE_MAX_VHOST_DEVICE];
static uint32_t nretired;

/*
 * VF descriptors per relay and direction, over all its VF queues: 512 per
 * queue for one or two queues, fewer each beyond.  With 2 KB mbufs that
 * keeps a relay under 10 MB of hugepage memory however many queues.
 */
#define V4W_DESC_PER_QUEUE 512
#define V4W_DESC_BUDGET 1024
#define V4W_DESC_MIN 64
#define V4W_POOL_CACHE 128

/* ---- sizing and making pools --------------------------------------- */

/*
 * Enough mbufs to fill every VF ring, plus bursts in flight, plus what the
 * per-lcore caches can hold: every lcore that ever ran one of the relay's
 * directions (moves spread them over any worker) or called into it (the
 * main lcore) keeps up to 1.5 cache sizes of them.
 */
#define V4W_CACHE_HOLDS (V4W_POOL_CACHE * 3 / 2)
uint16_t
v4w_desc_for(uint32_t vf_nq)
{
	return RTE_MAX(RTE_MIN((uint32_t)V4W_DESC_PER_QUEUE,
			       (uint32_t)V4W_DESC_BUDGET / vf_nq),
		       (uint32_t)V4W_DESC_MIN);
}

uint32_t
v4w_mbufs_for(int has_port, uint32_t vf_nq, uint32_t lcores)
{
	uint32_t n = 4 * V4W_BURST + V4W_CACHE_HOLDS * lcores + 256;

	if (has_port)
		n += 2 * vf_nq * v4w_desc_for(vf_nq);
	return n;
}

static uint32_t
pool_size(const struct v4w_relay *r)
{
	return v4w_mbufs_for(r->has_port, r->vf_nq, rte_lcore_count());
}

/* Data room of an mbuf for frames of `mtu` (all in one unless scatter). */
uint16_t
v4w_room_for(uint32_t mtu, int scatter)
{
	uint16_t room = RTE_MBUF_DEFAULT_BUF_SIZE;

	if (!scatter && mtu + V4W_FRAME_OVERHEAD + RTE_PKTMBUF_HEADROOM > room)
		room = RTE_ALIGN_CEIL(mtu + V4W_FRAME_OVERHEAD +
				      RTE_PKTMBUF_HEADROOM, 1024);
	return room;
}

/*
 * What DPDK keeps per relay besides its pool: the port's data and the
 * driver's state (net_null's is 80 kB), the relay, the vhost-user device
 * and its virtqueues (with a VM connected).  Measured on 22.11 at under
 * 400 kB; rounded up.
 */
#define V4W_RELAY_FIXED_BYTES (512 * 1024)

uint64_t
v4w_relay_heap_bytes(uint32_t jumbo, uint32_t vf_queues, uint32_t lcores)
{
	uint32_t nq = vf_queues ? vf_queues : V4W_AUTO_VF_QUEUES;
	uint32_t n = v4w_mbufs_for(1, RTE_MIN(nq, (uint32_t)V4W_MAX_QUEUES),
			       lcores);
	/* The mbuf, its data room, the pool's header, a cache line of
	 * spread padding. */
	uint64_t obj = RTE_ALIGN_CEIL(sizeof(struct rte_mbuf) +
				      v4w_room_for(jumbo ? V4W_JUMBO_MTU : V4W_MTU,
					       0) + 2 * RTE_CACHE_LINE_SIZE,
				      RTE_CACHE_LINE_SIZE);
	uint64_t pool = n * obj +
			/* the ring of free mbufs */
			(uint64_t)rte_align32pow2(n + 1) * sizeof(void *) +
			/* the pool with a cache for every possible lcore */
			sizeof(struct rte_mempool) +
			RTE_MAX_LCORE * sizeof(struct rte_mempool_cache);

	return pool + V4W_RELAY_FIXED_BYTES;
}

/*
 * An mbuf pool, as rte_pktmbuf_pool_create() makes one, except that where
 * IO addresses are virtual addresses its objects may cross page
 * boundaries: a 2.3 kB mbuf is IO-contiguous wherever it is contiguous in
 * the address space.  Without hugepages (4 kB pages) that packs the pool
 * densely instead of one mbuf per page, nearly halving its memory.
 */
static struct rte_mempool *
pktmbuf_pool(const char *name, uint32_t n, uint16_t room, int node)
{
	struct rte_pktmbuf_pool_private priv;
	struct rte_mempool *mp;
	unsigned int flags = rte_eal_iova_mode() == RTE_IOVA_VA ?
			     RTE_MEMPOOL_F_NO_IOVA_CONTIG : 0;
	int ret;

	memset(&priv, 0, sizeof(priv));
	priv.mbuf_data_room_size = room;
	mp = rte_mempool_create_empty(name, n, sizeof(struct rte_mbuf) + room,
				      V4W_POOL_CACHE, sizeof(priv), node,
				      flags);
	if (mp == NULL)
		return NULL;
	ret = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(),
					 NULL);
	if (ret == 0) {
		rte_pktmbuf_pool_init(mp, &priv);
		ret = rte_mempool_populate_default(mp);
	}
	if (ret < 0) {
		rte_mempool_free(mp);
		rte_errno = -ret;
		return NULL;
	}
	rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
	return mp;
}

struct rte_mempool *
v4w_pool_create(struct v4w_relay *r, int node)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	/* Frames larger than an mbuf span several where the VF can gather
	 * and scatter them; else each mbuf must hold a whole frame. */
	uint16_t room = v4w_room_for(r->mtu, r->scatter);
	struct rte_mempool *mp;

	snprintf(name, sizeof(name), "v4w_%u_%u", r->id, r->pool_gen++);
	mp = pktmbuf_pool(name, pool_size(r), room, node);
	if (mp == NULL)
		v4w_fail(rte_errno, "relay %u: cannot create a mempool of %u "
			 "mbufs on NUMA node %d: %s (not enough hugepage "
			 "memory?)", r->id, pool_size(r), node,
			 rte_strerror(rte_errno));
	return mp;
}

void
v4w_pool_release(struct rte_mempool *mp)
{
	if (rte_mempool_full(mp) || nretired == RTE_DIM(retired))
		rte_mempool_free(mp);
	else
		retired[nretired++] = mp;
}

void
v4w_pool_reap_retired(bool force)
{
	uint32_t i = 0;

	while (i < nretired) {
		if (force || rte_mempool_full(retired[i])) {
			rte_mempool_free(retired[i]);
			retired[i] = retired[--nretired];
		} else {
			i++;
		}
	}
}

/* ---- moving to the VM's NUMA node ---------------------------------- */

/*
 * Re-make the pool on `node` and restart the VF on it.  When the VF will
 * not start on the new pool it goes back to the old one (and the error is
 * returned); when it will not start at all, the watch thread keeps trying,
 * and the relay says "VF not started" meanwhile.
 */
int
v4w_relay_move_pool(struct v4w_relay *r, int node)
{
	struct rte_mempool *old = r->pool, *mp;
	int old_node = r->pool_node, ret = 0, err;

	mp = v4w_pool_create(r, node);
	if (mp == NULL)
		return -rte_errno;
	v4w_unplace(r);
	r->pool = mp;
	r->pool_node = node;
	if (r->has_port) {
		__atomic_store_n(&r->vf_ready, 0, __ATOMIC_RELEASE);
		err = rte_eth_dev_stop(r->port_id);
		if (err < 0)
			V4W_LOG(WARNING, "relay %u: VF '%s' did not stop "
				"cleanly: %s", r->id, r->vf_name,
				rte_strerror(-err));
		/* Re-creating the queues hands their mbufs back to `old`. */
		ret = v4w_vf_queues_setup(r, node);
		if (ret < 0) {
			V4W_LOG(ERR, "relay %u: VF '%s' cannot run on a mempool "
				"on NUMA node %d (%s); it stays on node %d",
				r->id, r->vf_name, node, v4w_last_error(),
				old_node);
			r->pool = old;
			r->pool_node = old_node;
			rte_eth_dev_stop(r->port_id);
			if (v4w_vf_queues_setup(r, old_node) < 0) {
				r->vf_restart = 1;
				V4W_LOG(ERR, "relay %u: VF '%s' cannot be "
					"restarted: %s; retrying", r->id,
					r->vf_name, v4w_last_error());
			}
			v4w_pool_release(mp);
			v4w_place(r);
			return ret;
		}
	}
	v4w_pool_release(old);
	r->pool_moves++;
	v4w_place(r);
	V4W_LOG(INFO, "relay %u: mempool moved to NUMA node %d", r->id, node);
	return 0;
}

static int
relay_set_numa_locked(uint32_t id, int32_t node)
{
	struct v4w_relay *r = v4w_relay_lookup(id);

	if (r == NULL)
		return -ENOENT;
	if (node < 0 || node >= RTE_MAX_NUMA_NODES)
		return v4w_fail(EINVAL, "relay %u: bad NUMA node %d", id, node);
	r->numa_hint = node;
	return v4w_relay_move_pool(r, node);
}

int
v4w_relay_set_numa(uint32_t id, int32_t node)
{
	return V4W_CTL_CALL(relay_set_numa_locked(id, node));
}

