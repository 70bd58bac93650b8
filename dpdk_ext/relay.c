/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * Relays: a VF port (any DPDK device) paired with a vhost-user socket.
 *
 * Locking: every control call holds v4w_ctl_lock.  vhost callbacks run on
 * DPDK's vhost thread (or inside rte_vhost_driver_unregister() on ours),
 * so they take only tbl_lock, which is never held across a vhost API
 * call; that keeps unregister from waiting on a callback that waits on us.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eth_bond.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_mempool.h>
#include <rte_vhost.h>

#include "v4w_priv.h"

pthread_mutex_t v4w_ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t tbl_lock = PTHREAD_MUTEX_INITIALIZER;

static struct v4w_relay *relays[RTE_MAX_VHOST_DEVICE];
static uint32_t nrelays;

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
#define V4W_AUTO_VF_QUEUES 4
#define V4W_MTU 1500
#define V4W_JUMBO_MTU 9000
#define V4W_FRAME_OVERHEAD (RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN + 8)

static const char *const dir_name[2] = { "VF->VM", "VM->VF" };

/* Features with which the guest may leave work on its frames to us. */
#define V4W_VM_TX_OFFLOADS ((1ULL << VIRTIO_NET_F_CSUM) | \
			    (1ULL << VIRTIO_NET_F_HOST_TSO4) | \
			    (1ULL << VIRTIO_NET_F_HOST_TSO6))

uint32_t
v4w_relay_count_locked(void)
{
	return nrelays;
}

static struct v4w_relay *
relay_by_id(uint32_t id)
{
	uint32_t i;

	for (i = 0; i < nrelays; i++)
		if (relays[i]->id == id)
			return relays[i];
	return NULL;
}

static struct v4w_relay *
relay_by_path(const char *path)
{
	uint32_t i;

	for (i = 0; i < nrelays; i++)
		if (strcmp(relays[i]->path, path) == 0)
			return relays[i];
	return NULL;
}

/* The relay whose VF, or one of whose bond members, is `name`. */
static struct v4w_relay *
relay_by_vf(const char *name)
{
	uint32_t i, m;

	for (i = 0; i < nrelays; i++) {
		struct v4w_relay *r = relays[i];

		if (!r->has_port)
			continue;
		if (strcmp(r->vf_name, name) == 0)
			return r;
		for (m = 0; m < r->n_members; m++)
			if (strcmp(r->member_name[m], name) == 0)
				return r;
	}
	return NULL;
}

/* The device name in devargs ("net_tap0" of "net_tap0,iface=x"). */
static void
devargs_name(const char *devargs, char *name, size_t size)
{
	size_t len = strcspn(devargs, ",");

	if (len >= size)
		len = size - 1;
	memcpy(name, devargs, len);
	name[len] = 0;
}

static void
table_insert(struct v4w_relay *r)
{
	pthread_mutex_lock(&tbl_lock);
	relays[nrelays++] = r;
	pthread_mutex_unlock(&tbl_lock);
}

static void
table_delete(struct v4w_relay *r)
{
	uint32_t i;

	pthread_mutex_lock(&tbl_lock);
	for (i = 0; i < nrelays; i++)
		if (relays[i] == r) {
			relays[i] = relays[--nrelays];
			break;
		}
	pthread_mutex_unlock(&tbl_lock);
}

/* ---- vhost-user callbacks ------------------------------------------ */

static int
new_device(int vid)
{
	char path[PATH_MAX];
	struct v4w_relay *r;
	uint16_t q, nq;
	int kick = 0;

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) < 0)
		return -1;
	pthread_mutex_lock(&tbl_lock);
	r = relay_by_path(path);
	if (r == NULL) {
		pthread_mutex_unlock(&tbl_lock);
		V4W_LOG(WARNING, "VM connected on %s, which no relay owns",
			path);
		return -1;
	}
	/* We poll; the guest need not kick us. */
	nq = rte_vhost_get_vring_num(vid);
	for (q = 0; q < nq; q++)
		rte_vhost_enable_guest_notification(vid, q, 0);
	__atomic_store_n(&r->vm_node, rte_vhost_get_numa_node(vid),
			 __ATOMIC_RELEASE);
	/* What the guest may leave to an offload on the frames it sends. */
	{
		uint64_t features = 0;

		rte_vhost_get_negotiated_features(vid, &features);
		__atomic_store_n(&r->vm_offloads, features &
				 (V4W_VM_TX_OFFLOADS), __ATOMIC_RELEASE);
	}
	r->vm_connects++;
	__atomic_store_n(&r->vid, vid, __ATOMIC_RELEASE);
	if (v4w_move_target(r->pool_node, r->vm_node) != V4W_NONE) {
		__atomic_store_n(&r->move_pending, 1, __ATOMIC_RELEASE);
		kick = 1;
	}
	V4W_LOG(INFO, "relay %u: VM connected on %s (NUMA node %d)",
		r->id, path, r->vm_node);
	pthread_mutex_unlock(&tbl_lock);
	if (kick)
		v4w_kick_housekeeper();
	return 0;
}

static void
destroy_device(int vid)
{
	uint32_t i;

	pthread_mutex_lock(&tbl_lock);
	for (i = 0; i < nrelays; i++) {
		struct v4w_relay *r = relays[i];

		if (__atomic_load_n(&r->vid, __ATOMIC_ACQUIRE) != vid)
			continue;
		__atomic_store_n(&r->vid, -1, __ATOMIC_RELEASE);
		__atomic_store_n(&r->rxq_mask, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&r->txq_mask, 0, __ATOMIC_RELEASE);
		/* vhost frees the device when we return: no worker may
		 * still be inside an enqueue or dequeue on it. */
		v4w_sync();
		V4W_LOG(INFO, "relay %u: VM disconnected from %s", r->id,
			r->path);
	}
	pthread_mutex_unlock(&tbl_lock);
}

/*
 * The guest enables and disables vrings (driver load, `ethtool -L`); the
 * workers serve exactly the enabled ones.  May come before new_device, so
 * the relay is found by socket path, not by vid.
 */
static int
vring_state_changed(int vid, uint16_t vring, int enable)
{
	char path[PATH_MAX];
	struct v4w_relay *r;
	uint32_t pair = vring / 2, *mask;

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) < 0)
		return 0;
	pthread_mutex_lock(&tbl_lock);
	r = relay_by_path(path);
	if (r != NULL && pair < 32) {
		mask = (vring & 1) ? &r->txq_mask : &r->rxq_mask;
		if (enable)
			__atomic_fetch_or(mask, 1u << pair, __ATOMIC_RELEASE);
		else
			__atomic_fetch_and(mask, ~(1u << pair),
					   __ATOMIC_RELEASE);
	}
	/* (A pair beyond 31 is one no relay serves.) */
	if (r != NULL && enable && (vring & 1) == 0 &&
	    (pair >= 32 || !(r->queue_limit >> pair & 1)))
		V4W_LOG(WARNING, "relay %u: the guest enabled queue pair %u; "
			"this relay serves %u, so that pair carries nothing",
			r->id, pair, __builtin_popcount(r->queue_limit));
	pthread_mutex_unlock(&tbl_lock);
	return 0;
}

/*
 * A vhost-user peer on the socket, before (and whether or not) its guest
 * driver makes the device ready: QEMU connects at start, while Nova keeps
 * the guest paused until Neutron says the port is up.
 */
static void
count_connection(int vid, int delta)
{
	char path[PATH_MAX];
	struct v4w_relay *r;

	if (rte_vhost_get_ifname(vid, path, sizeof(path)) < 0)
		return;
	pthread_mutex_lock(&tbl_lock);
	r = relay_by_path(path);
	if (r != NULL && (delta > 0 ||
			  __atomic_load_n(&r->vm_sockets, __ATOMIC_ACQUIRE) > 0))
		__atomic_fetch_add(&r->vm_sockets, delta, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&tbl_lock);
}

static int
new_connection(int vid)
{
	count_connection(vid, 1);
	return 0;
}

static void
destroy_connection(int vid)
{
	count_connection(vid, -1);
}

static const struct rte_vhost_device_ops vhost_ops = {
	.new_device = new_device,
	.destroy_device = destroy_device,
	.vring_state_changed = vring_state_changed,
	.new_connection = new_connection,
	.destroy_connection = destroy_connection,
};

/* ---- mempool ------------------------------------------------------- */

/*
 * Enough mbufs to fill every VF ring, plus bursts in flight, plus what the
 * per-lcore caches can hold: every lcore that ever ran one of the relay's
 * directions (moves spread them over any worker) or called into it (the
 * main lcore) keeps up to 1.5 cache sizes of them.
 */
#define V4W_CACHE_HOLDS (V4W_POOL_CACHE * 3 / 2)
static uint16_t
desc_for(uint32_t vf_nq)
{
	return RTE_MAX(RTE_MIN((uint32_t)V4W_DESC_PER_QUEUE,
			       (uint32_t)V4W_DESC_BUDGET / vf_nq),
		       (uint32_t)V4W_DESC_MIN);
}

static uint16_t
desc_per_queue(const struct v4w_relay *r)
{
	return desc_for(r->vf_nq);
}

static uint32_t
mbufs_for(int has_port, uint32_t vf_nq, uint32_t lcores)
{
	uint32_t n = 4 * V4W_BURST + V4W_CACHE_HOLDS * lcores + 256;

	if (has_port)
		n += 2 * vf_nq * desc_for(vf_nq);
	return n;
}

static uint32_t
pool_size(const struct v4w_relay *r)
{
	return mbufs_for(r->has_port, r->vf_nq, rte_lcore_count());
}

/* Data room of an mbuf for frames of `mtu` (all in one unless scatter). */
static uint16_t
room_for(uint32_t mtu, int scatter)
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
	uint32_t n = mbufs_for(1, RTE_MIN(nq, (uint32_t)V4W_MAX_QUEUES),
			       lcores);
	/* The mbuf, its data room, the pool's header, a cache line of
	 * spread padding. */
	uint64_t obj = RTE_ALIGN_CEIL(sizeof(struct rte_mbuf) +
				      room_for(jumbo ? V4W_JUMBO_MTU : V4W_MTU,
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

static struct rte_mempool *
pool_create(struct v4w_relay *r, int node)
{
	char name[RTE_MEMPOOL_NAMESIZE];
	/* Frames larger than an mbuf span several where the VF can gather
	 * and scatter them; else each mbuf must hold a whole frame. */
	uint16_t room = room_for(r->mtu, r->scatter);
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

static void
pool_release(struct rte_mempool *mp)
{
	if (rte_mempool_full(mp) || nretired == RTE_DIM(retired))
		rte_mempool_free(mp);
	else
		retired[nretired++] = mp;
}

static void
pool_reap_retired(bool force)
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

/* ---- VF port ------------------------------------------------------- */

static int
find_port(const char *name, uint16_t *port_id)
{
	struct rte_eth_dev_info info;
	uint16_t pid;

	if (rte_eth_dev_get_port_by_name(name, port_id) == 0)
		return 0;
	RTE_ETH_FOREACH_DEV(pid) {
		if (rte_eth_dev_info_get(pid, &info) == 0 &&
		    info.device != NULL &&
		    strcmp(rte_dev_name(info.device), name) == 0) {
			*port_id = pid;
			return 0;
		}
	}
	return -ENODEV;
}

/* Probe one device and find its port; `what` names it in errors. */
static int
probe_port(struct v4w_relay *r, const char *devargs, const char *name,
	   uint16_t *port, const char *what)
{
	struct v4w_relay *other = relay_by_vf(name);
	int ret;

	if (other != NULL)
		return v4w_fail(EBUSY, "relay %u: %s '%s' is already used by "
				"relay %u", r->id, what, name, other->id);
	v4w_dpdk_said_reset();
	ret = rte_dev_probe(devargs);
	if (ret < 0 && ret != -EEXIST)
		return v4w_fail(ret, "relay %u: cannot attach %s '%s': %s",
				r->id, what, devargs, v4w_dpdk_said()[0] ?
				v4w_dpdk_said() : "no driver matches, the "
				"devargs are wrong or the device is missing");
	if (find_port(name, port) < 0) {
		if (ret == 0)
			rte_eal_hotplug_remove(strchr(name, ':') ? "pci" :
					       "vdev", name);
		return v4w_fail(ENODEV, "relay %u: %s '%s' attached, but no "
				"ethernet port named '%s' appeared", r->id,
				what, devargs, name);
	}
	return 0;
}

/*
 * Hand a stopped port's queues back to its driver, for the drivers that
 * need it.  Closing a port frees ethdev's queue arrays and leaves the
 * queues to the driver's close; DPDK 22.11's net_null frees a queue only
 * when ethdev releases it, so each relay made and removed lost a 64-byte
 * buffer per queue (1.5 kB with 4 queue pairs).  Configuring no rx
 * queues, then no tx queues, releases every one through the driver
 * (ethdev allows either count, not both, to be zero).  Other drivers free
 * their queues in close, and some (net_tap) refuse such a configuration,
 * so only net_null gets it.
 */
static void
port_release_queues(uint16_t port)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf none;

	if (rte_eth_dev_info_get(port, &info) != 0 ||
	    info.driver_name == NULL ||
	    strcmp(info.driver_name, "net_null") != 0)
		return;
	memset(&none, 0, sizeof(none));
	if (rte_eth_dev_configure(port, 0, 1, &none) == 0)
		rte_eth_dev_configure(port, 1, 0, &none);
}

/* Close a port and unplug its device. */
static void
port_release(uint16_t port, const char *name)
{
	struct rte_eth_dev_info info;
	struct rte_device *dev = NULL;

	int ret;

	if (rte_eth_dev_info_get(port, &info) == 0)
		dev = info.device;
	ret = rte_eth_dev_stop(port);
	if (ret < 0)
		V4W_LOG(WARNING, "cannot stop port '%s' cleanly: %s; closing "
			"it anyway", name, rte_strerror(-ret));
	port_release_queues(port);
	ret = rte_eth_dev_close(port);
	if (ret < 0)
		V4W_LOG(WARNING, "cannot close port '%s': %s", name,
			rte_strerror(-ret));
	if (dev != NULL && (ret = rte_dev_remove(dev)) < 0)
		V4W_LOG(WARNING, "cannot detach device '%s': %s", name,
			rte_strerror(-ret));
}

static void
bond_release(struct v4w_relay *r)
{
	uint8_t m;

	if (r->has_port) {
		int ret;

		ret = rte_eth_dev_stop(r->port_id);
		if (ret < 0)
			V4W_LOG(WARNING, "relay %u: cannot stop bond '%s' "
				"cleanly: %s", r->id, r->vf_name,
				rte_strerror(-ret));
		for (m = 0; m < r->n_members; m++) {
			if (r->member_out[m])
				continue;
			ret = rte_eth_bond_slave_remove(r->port_id,
							r->member_port[m]);
			if (ret < 0)
				V4W_LOG(WARNING, "relay %u: cannot take '%s' "
					"out of bond '%s': %s", r->id,
					r->member_name[m], r->vf_name,
					rte_strerror(-ret));
		}
		/* Closed before it is freed: the bond driver frees its
		 * own memory (queues, VLAN filter) in close, which its
		 * remove calls only for a bond still started. */
		ret = rte_eth_dev_close(r->port_id);
		if (ret < 0)
			V4W_LOG(WARNING, "relay %u: cannot close bond '%s': %s",
				r->id, r->vf_name, rte_strerror(-ret));
		ret = rte_eth_bond_free(r->vf_name);
		if (ret < 0)
			V4W_LOG(WARNING, "relay %u: cannot free bond '%s': %s",
				r->id, r->vf_name, rte_strerror(-ret));
	}
	for (m = 0; m < r->n_members; m++) {
		port_release(r->member_port[m], r->member_name[m]);
		r->member_out[m] = 0;
	}
	r->n_members = 0;
}

static int
bond_probe(struct v4w_relay *r, const struct v4w_relay_conf *conf)
{
	uint32_t i, j;
	int ret, mode = conf->bond_mode == V4W_NONE ?
			BONDING_MODE_ACTIVE_BACKUP : conf->bond_mode;

	if (strncmp(r->vf_name, "net_bonding", 11) != 0 ||
	    r->vf_name[11] == 0 ||
	    strspn(r->vf_name + 11, "abcdefghijklmnopqrstuvwxyz"
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
	    strlen(r->vf_name + 11) ||
	    strcmp(r->vf_name, r->vf_devargs) != 0)
		return v4w_fail(EINVAL, "relay %u: a bond's name must be "
				"net_bonding followed by letters, digits or "
				"'_' (no devargs options), not '%s'", r->id,
				r->vf_devargs);
	if (conf->n_members < 2 || conf->n_members > V4W_MAX_BOND)
		return v4w_fail(EINVAL, "relay %u: a bond needs 2 to %d "
				"members, %u given", r->id, V4W_MAX_BOND,
				conf->n_members);
	if (mode < BONDING_MODE_ROUND_ROBIN || mode > BONDING_MODE_ALB)
		return v4w_fail(EINVAL, "relay %u: unknown bond mode %d "
				"(0-6)", r->id, mode);
	for (i = 0; i < conf->n_members; i++) {
		if (memchr(conf->members[i], 0, V4W_DEVARGS_MAX) == NULL ||
		    conf->members[i][0] == 0)
			return v4w_fail(EINVAL, "relay %u: bond member %u is "
					"empty or too long", r->id, i);
		devargs_name(conf->members[i], r->member_name[i],
			     V4W_NAME_MAX);
		for (j = 0; j < i; j++)
			if (strcmp(r->member_name[i], r->member_name[j]) == 0)
				return v4w_fail(EINVAL, "relay %u: bond member "
						"'%s' given twice", r->id,
						r->member_name[i]);
	}
	for (i = 0; i < conf->n_members; i++) {
		ret = probe_port(r, conf->members[i], r->member_name[i],
				 &r->member_port[i], "bond member");
		if (ret < 0)
			goto fail;
		r->n_members++;
	}
	ret = rte_eth_bond_create(r->vf_name, mode,
				  rte_eth_dev_socket_id(r->member_port[0]) < 0 ?
				  0 : rte_eth_dev_socket_id(r->member_port[0]));
	if (ret < 0) {
		ret = v4w_fail(ret, "relay %u: cannot create bond '%s': %s",
			       r->id, r->vf_name, rte_strerror(-ret));
		goto fail;
	}
	r->port_id = ret;
	r->has_port = 1;
	r->bond_mode = mode;
	for (i = 0; i < r->n_members; i++) {
		ret = rte_eth_bond_slave_add(r->port_id, r->member_port[i]);
		if (ret < 0) {
			ret = v4w_fail(ret, "relay %u: cannot add '%s' to bond "
				       "'%s'", r->id, r->member_name[i],
				       r->vf_name);
			goto fail;
		}
	}
	/* The first member is the one an active-backup bond prefers. */
	ret = rte_eth_bond_primary_set(r->port_id, r->member_port[0]);
	if (ret < 0)
		V4W_LOG(WARNING, "relay %u: cannot make '%s' the primary of "
			"bond '%s': %s", r->id, r->member_name[0], r->vf_name,
			rte_strerror(-ret));
	return 0;
fail:
	bond_release(r);
	r->has_port = 0;
	return ret;
}

static int
vf_probe(struct v4w_relay *r, const struct v4w_relay_conf *conf)
{
	int ret;

	if (conf->n_members > 0)
		return bond_probe(r, conf);
	ret = probe_port(r, r->vf_devargs, r->vf_name, &r->port_id, "VF");
	if (ret == 0)
		r->has_port = 1;
	return ret;
}

/* Returns 1 when the link changed. */
static int
vf_poll_link(struct v4w_relay *r)
{
	struct rte_eth_link link;
	int up;

	if (rte_eth_link_get_nowait(r->port_id, &link) < 0)
		return 0;
	up = link.link_status == RTE_ETH_LINK_UP;
	if (up == __atomic_load_n(&r->vf_link, __ATOMIC_RELAXED))
		return 0;
	__atomic_store_n(&r->vf_link, up, __ATOMIC_RELEASE);
	return 1;
}

static int
vf_queues_setup(struct v4w_relay *r, int node)
{
	uint16_t nrxd = desc_per_queue(r), ntxd = desc_per_queue(r);
	int ret;

	uint16_t q;

	v4w_dpdk_said_reset();
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(r->port_id, &nrxd, &ntxd);
	for (q = 0; ret == 0 && q < r->vf_nq; q++) {
		ret = rte_eth_rx_queue_setup(r->port_id, q, nrxd, node, NULL,
					     r->pool);
		if (ret == 0)
			ret = rte_eth_tx_queue_setup(r->port_id, q, ntxd, node,
						     NULL);
	}
	if (ret < 0)
		return v4w_fail(ret, "relay %u: cannot set up the queues of "
				"VF '%s': %s%s%s", r->id, r->vf_name,
				rte_strerror(-ret), v4w_dpdk_said()[0] ?
				"; DPDK: " : "", v4w_dpdk_said());
	ret = rte_eth_dev_start(r->port_id);
	if (ret < 0)
		return v4w_fail(ret, "relay %u: cannot start VF '%s': %s%s%s",
				r->id, r->vf_name, rte_strerror(-ret),
				v4w_dpdk_said()[0] ? "; DPDK: " : "",
				v4w_dpdk_said());
	/* A VF that must not see the VM's MAC is not ours to decide; a
	 * refusal (untrusted VF) is fine. */
	rte_eth_promiscuous_enable(r->port_id);
	rte_eth_allmulticast_enable(r->port_id);
	vf_poll_link(r);
	__atomic_store_n(&r->vf_ready, 1, __ATOMIC_RELEASE);
	return 0;
}

#define V4W_RSS_HF (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP)

/*
 * Decide MTU and queue count before the pool exists: the pool is sized by
 * both.  Several VF queues only where the VF spreads by RSS (auto), or as
 * many as asked for.
 */
static int
vf_inspect(struct v4w_relay *r, uint32_t want_nq)
{
	struct rte_eth_dev_info info;
	uint32_t want = (r->flags & V4W_F_JUMBO) ? V4W_JUMBO_MTU : V4W_MTU;
	uint32_t max;
	int ret;

	uint32_t max_nq;

	r->mtu = want;
	r->vf_nq = 1;
	if (!r->has_port)
		return 0;
	ret = rte_eth_dev_info_get(r->port_id, &info);
	if (ret < 0)
		return v4w_fail(ret, "relay %u: cannot read VF '%s' info: %s",
				r->id, r->vf_name, rte_strerror(-ret));
	r->vf_tx_capa = info.tx_offload_capa;
	r->vf_rss_hf = info.flow_type_rss_offloads & V4W_RSS_HF;
	max_nq = RTE_MIN(info.max_rx_queues, info.max_tx_queues);
	if (want_nq > V4W_MAX_QUEUES)
		return v4w_fail(EINVAL, "relay %u: %u VF queue pairs requested, "
				"a relay uses at most %u", r->id, want_nq,
				V4W_MAX_QUEUES);
	if (want_nq > max_nq)
		return v4w_fail(EINVAL, "relay %u: VF '%s' has at most %u "
				"queue pairs, %u requested", r->id,
				r->vf_name, max_nq, want_nq);
	if (want_nq == 0 && r->n_members > 0)
		want_nq = 1;	/* members' RSS is not the bond's to spread */
	if (want_nq == 0)
		want_nq = r->vf_rss_hf ?
			  RTE_MIN(max_nq, (uint32_t)V4W_AUTO_VF_QUEUES) : 1;
	r->vf_nq = RTE_MAX(want_nq, 1u);
	max = info.max_mtu;
	if (info.max_rx_pktlen > RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN &&
	    info.max_rx_pktlen - RTE_ETHER_HDR_LEN - RTE_ETHER_CRC_LEN < max)
		max = info.max_rx_pktlen - RTE_ETHER_HDR_LEN -
		      RTE_ETHER_CRC_LEN;
	if (want > max) {
		V4W_LOG(WARNING, "relay %u: VF '%s' takes an MTU of at most "
			"%u; using that instead of %u", r->id, r->vf_name,
			max, want);
		r->mtu = max;
	}
	r->scatter = r->mtu + V4W_FRAME_OVERHEAD + RTE_PKTMBUF_HEADROOM >
		     RTE_MBUF_DEFAULT_BUF_SIZE &&
		     (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) &&
		     (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS);
	return 0;
}

/* What the guest may hand us (VM->VF) that the VF must finish in TX. */
#define V4W_TSO_OFFLOADS (RTE_ETH_TX_OFFLOAD_TCP_TSO | \
			  RTE_ETH_TX_OFFLOAD_TCP_CKSUM | \
			  RTE_ETH_TX_OFFLOAD_UDP_CKSUM | \
			  RTE_ETH_TX_OFFLOAD_IPV4_CKSUM)

static int
vf_configure(struct v4w_relay *r, int node)
{
	struct rte_eth_conf conf;
	int ret;

	memset(&conf, 0, sizeof(conf));
	conf.rxmode.mtu = r->mtu;
	/* vhost builds chained mbufs for guest packets larger than one. */
	conf.txmode.offloads = r->vf_tx_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	if (r->flags & V4W_F_TSO)
		conf.txmode.offloads |= r->vf_tx_capa & V4W_TSO_OFFLOADS;
	if (r->scatter)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
	/* A bond learns of member link changes through LSC interrupts. */
	if (r->n_members > 0)
		conf.intr_conf.lsc = 1;
	if (r->vf_nq > 1 && r->vf_rss_hf) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = r->vf_rss_hf;
	}
	r->vf_txoff = conf.txmode.offloads;
	ret = rte_eth_dev_configure(r->port_id, r->vf_nq, r->vf_nq, &conf);
	if (ret < 0)
		return v4w_fail(ret, "relay %u: cannot configure VF '%s' "
				"(MTU %u, %u queue pairs): %s", r->id,
				r->vf_name, r->mtu, r->vf_nq,
				rte_strerror(-ret));
	return vf_queues_setup(r, node);
}

static void
vf_detach(struct v4w_relay *r)
{
	__atomic_store_n(&r->vf_ready, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&r->vf_link, 0, __ATOMIC_RELEASE);
	if (r->n_members > 0)
		bond_release(r);
	else if (r->has_port)
		port_release(r->port_id, r->vf_name);
	r->has_port = 0;
}

/* ---- vhost-user socket --------------------------------------------- */

static int
check_path(const struct v4w_relay_conf *conf)
{
	char dir[V4W_PATH_MAX];
	struct stat st;

	if (conf->vhost_path[0] != '/')
		return v4w_fail(EINVAL, "relay %u: vhost-user socket path "
				"'%s' is not absolute", conf->id,
				conf->vhost_path);
	snprintf(dir, sizeof(dir), "%s", conf->vhost_path);
	dirname(dir);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return v4w_fail(ENOENT, "relay %u: socket directory '%s' does "
				"not exist", conf->id, dir);
	return 0;
}

#define F(x) (1ULL << VIRTIO_NET_F_ ## x)

/* The offloads whose features follow the VF (see vhost_features_off). */
#define V4W_OFFLOAD_FEATURES (F(HOST_TSO4) | F(HOST_TSO6) | F(GUEST_TSO4) | \
			      F(GUEST_TSO6) | F(HOST_ECN) | F(GUEST_ECN) | \
			      F(CSUM) | F(GUEST_CSUM))

/*
 * Features not to offer.  Without TSO nothing is offloaded, so the guest
 * computes every checksum.  With TSO, the guest may leave segmentation and
 * checksums to us, which only works if the VF can finish them in TX: what
 * the VF cannot do is not offered, and neither is anything while no VF is
 * known yet (a socket made before its VF); vhost_features_update() offers
 * them once it is there.
 */
static uint64_t
vhost_features_off(struct v4w_relay *r, bool quiet)
{
	uint64_t off = F(CTRL_RX) | F(HOST_UFO) | F(GUEST_UFO);
	uint64_t csum = RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
			RTE_ETH_TX_OFFLOAD_UDP_CKSUM;

	if (r->queue_limit == 1)
		off |= F(MQ);
	if (!(r->flags & V4W_F_MRGBUF))
		off |= F(MRG_RXBUF);
	if (!(r->flags & V4W_F_TSO))
		return off | V4W_OFFLOAD_FEATURES;
	if (!r->has_port)
		return off | F(CSUM) | F(HOST_TSO4) | F(HOST_TSO6) |
		       F(HOST_ECN);
	if ((r->vf_tx_capa & csum) != csum) {
		if (!quiet)
			V4W_LOG(WARNING, "relay %u: VF '%s' cannot checksum in "
				"TX; not offering checksum offload or TSO to "
				"the guest", r->id, r->vf_name);
		return off | F(CSUM) | F(HOST_TSO4) | F(HOST_TSO6) |
		       F(HOST_ECN);
	}
	if (!(r->vf_tx_capa & RTE_ETH_TX_OFFLOAD_TCP_TSO)) {
		if (!quiet)
			V4W_LOG(WARNING, "relay %u: VF '%s' has no TSO; not "
				"offering TSO to the guest", r->id, r->vf_name);
		off |= F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_ECN);
	}
	return off;
}

/*
 * The VF changed: offer what it can finish from the next time a VM
 * connects (a connected VM keeps what it negotiated; frames it leaves to
 * an offload the new VF lacks are finished in software or dropped and
 * counted, see tx_prepare in worker.c).
 */
static void
vhost_features_update(struct v4w_relay *r)
{
	uint64_t off, on;

	if (!(r->flags & V4W_F_TSO) || r->vhost_down)
		return;
	off = vhost_features_off(r, false) & V4W_OFFLOAD_FEATURES;
	on = V4W_OFFLOAD_FEATURES & ~off;
	if ((on && rte_vhost_driver_enable_features(r->path, on) < 0) ||
	    (off && rte_vhost_driver_disable_features(r->path, off) < 0)) {
		V4W_LOG(ERR, "relay %u: cannot change the offloads offered "
			"on %s", r->id, r->path);
		return;
	}
	if (__atomic_load_n(&r->vid, __ATOMIC_ACQUIRE) >= 0)
		V4W_LOG(INFO, "relay %u: offloads for VF '%s' are offered "
			"from the VM's next connection", r->id,
			r->vf_name[0] ? r->vf_name : "none");
}

/*
 * The socket DPDK just bound becomes the configured owner's, mode.  It is
 * in a trusted directory (the agent checked it: nobody else can rename it
 * or put anything in its place), and it is checked to be the socket just
 * made, identified by its inode, before anything is changed; nothing here
 * follows a symbolic link.
 */
static int
socket_take(struct v4w_relay *r)
{
	struct stat st;

	r->sock_ino = 0;
	if (lstat(r->path, &st) < 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_uid != geteuid())
		return v4w_fail(EPERM, "relay %u: '%s' is not the socket just "
				"made", r->id, r->path);
	r->sock_dev = st.st_dev;
	r->sock_ino = st.st_ino;
	if ((r->sock_uid != V4W_NONE || r->sock_gid != V4W_NONE) &&
	    fchownat(AT_FDCWD, r->path, r->sock_uid, r->sock_gid,
		     AT_SYMLINK_NOFOLLOW) < 0)
		return v4w_fail(errno, "relay %u: cannot give socket '%s' to "
				"uid %d gid %d: %s", r->id, r->path,
				r->sock_uid, r->sock_gid, strerror(errno));
	if (r->sock_mode != V4W_NONE &&
	    fchmodat(AT_FDCWD, r->path, r->sock_mode,
		     AT_SYMLINK_NOFOLLOW) < 0)
		return v4w_fail(errno, "relay %u: cannot chmod socket '%s': %s",
				r->id, r->path, strerror(errno));
	return 0;
}

/* Remove the relay's socket file: only the one it made. */
static void
socket_unlink_ours(struct v4w_relay *r)
{
	struct stat st;

	if (r->sock_ino != 0 && lstat(r->path, &st) == 0 &&
	    S_ISSOCK(st.st_mode) && st.st_dev == r->sock_dev &&
	    st.st_ino == r->sock_ino)
		unlink(r->path);
	r->sock_ino = 0;
}

static int
vhost_attach(struct v4w_relay *r)
{
	uint64_t vflags = 0, off;
	int ret;

	if (r->flags & V4W_F_CLIENT)
		vflags |= RTE_VHOST_USER_CLIENT;
	if (rte_vhost_driver_register(r->path, vflags) < 0)
		return v4w_fail(EINVAL, "relay %u: cannot register vhost-user "
				"socket '%s'", r->id, r->path);

	off = vhost_features_off(r, false);
	ret = rte_vhost_driver_disable_features(r->path, off);
	if (ret == 0)
		ret = rte_vhost_driver_callback_register(r->path, &vhost_ops);
	if (ret == 0)
		ret = rte_vhost_driver_start(r->path);
	if (ret < 0) {
		int err = errno ? errno : EIO;

		rte_vhost_driver_unregister(r->path);
		return v4w_fail(err, "relay %u: cannot %s vhost-user socket "
				"'%s': %s", r->id,
				(r->flags & V4W_F_CLIENT) ? "connect to" :
				"listen on", r->path, strerror(err));
	}
	if (!(r->flags & V4W_F_CLIENT)) {
		ret = socket_take(r);
		if (ret < 0) {
			rte_vhost_driver_unregister(r->path);
			socket_unlink_ours(r);
			return ret;
		}
	}
	return 0;
}

static void
vhost_detach(struct v4w_relay *r)
{
	rte_vhost_driver_unregister(r->path);
	/* A server socket is ours: leave no stale file for the next user. */
	if (!(r->flags & V4W_F_CLIENT))
		socket_unlink_ours(r);
}

/* ---- workers ------------------------------------------------------- */

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
static int
place(struct v4w_relay *r)
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
static void
unplace(struct v4w_relay *r)
{
	v4w_unpublish(&r->d[V4W_VF_TO_VM]);
	v4w_unpublish(&r->d[V4W_VM_TO_VF]);
	v4w_dir_release_held(&r->d[V4W_VF_TO_VM]);
	v4w_dir_release_held(&r->d[V4W_VM_TO_VF]);
}

/* ---- add / remove -------------------------------------------------- */

/* What a VF (or bond) given for relay conf->id must be. */
static int
check_vf_conf(const struct v4w_relay_conf *conf)
{
	if (memchr(conf->vf_devargs, 0, sizeof(conf->vf_devargs)) == NULL)
		return v4w_fail(EINVAL, "relay %u: VF devargs longer than %d "
				"bytes", conf->id, V4W_DEVARGS_MAX - 1);
	/* Per-queue counters exist for V4W_MAX_QUEUES queues. */
	if (conf->vf_queues > V4W_MAX_QUEUES)
		return v4w_fail(EINVAL, "relay %u: %u VF queue pairs requested, "
				"a relay uses at most %u", conf->id,
				conf->vf_queues, V4W_MAX_QUEUES);
	if (conf->n_members > V4W_MAX_BOND)
		return v4w_fail(EINVAL, "relay %u: a bond needs 2 to %d "
				"members, %u given", conf->id, V4W_MAX_BOND,
				conf->n_members);
	return 0;
}

static int
check_conf(const struct v4w_relay_conf *conf)
{
	struct v4w_relay *other;
	int i, ret;

	if (nrelays >= RTE_MAX_VHOST_DEVICE)
		return v4w_fail(ENOSPC, "relay %u: this DPDK build allows at "
				"most %u relays", conf->id,
				RTE_MAX_VHOST_DEVICE);
	if (relay_by_id(conf->id) != NULL)
		return v4w_fail(EEXIST, "relay %u already exists", conf->id);
	if (memchr(conf->vhost_path, 0, sizeof(conf->vhost_path)) == NULL ||
	    conf->vhost_path[0] == 0)
		return v4w_fail(EINVAL, "relay %u: vhost-user socket path is "
				"empty or longer than %d bytes", conf->id,
				V4W_PATH_MAX - 1);
	other = relay_by_path(conf->vhost_path);
	if (other != NULL)
		return v4w_fail(EBUSY, "relay %u: socket '%s' is already used "
				"by relay %u", conf->id, conf->vhost_path,
				other->id);
	ret = check_path(conf);
	if (ret < 0)
		return ret;
	for (i = 0; i < 2; i++)
		if (conf->cpu[i] != V4W_NONE && !v4w_is_worker(conf->cpu[i]))
			return v4w_fail(EINVAL, "relay %u: CPU %d for %s is not "
					"one of the worker CPUs", conf->id,
					conf->cpu[i], dir_name[i]);
	if (conf->max_queues > V4W_MAX_QUEUES)
		return v4w_fail(EINVAL, "relay %u: %u queue pairs requested, a "
				"relay serves at most %u", conf->id,
				conf->max_queues, V4W_MAX_QUEUES);
	ret = check_vf_conf(conf);
	if (ret < 0)
		return ret;
	if (conf->numa_hint != V4W_NONE &&
	    (conf->numa_hint < 0 ||
	     (unsigned int)conf->numa_hint >= RTE_MAX_NUMA_NODES))
		return v4w_fail(EINVAL, "relay %u: bad NUMA node %d",
				conf->id, conf->numa_hint);
	return 0;
}

/*
 * A relay's memory.  In the sanitizer build it comes from the C heap, so
 * that AddressSanitizer sees its bounds and its lifetime (DPDK's heap is
 * invisible to it); nothing in it needs DMA-able memory.
 */
#if defined(__SANITIZE_ADDRESS__)
static struct v4w_relay *
relay_mem_alloc(void)
{
	size_t size = RTE_ALIGN_CEIL(sizeof(struct v4w_relay),
				     RTE_CACHE_LINE_SIZE);
	struct v4w_relay *r = aligned_alloc(RTE_CACHE_LINE_SIZE, size);

	if (r != NULL)
		memset(r, 0, size);
	return r;
}

static void
relay_mem_free(struct v4w_relay *r)
{
	free(r);
}
#else
static struct v4w_relay *
relay_mem_alloc(void)
{
	return rte_zmalloc("v4w_relay", sizeof(struct v4w_relay),
			   RTE_CACHE_LINE_SIZE);
}

static void
relay_mem_free(struct v4w_relay *r)
{
	rte_free(r);
}
#endif

static struct v4w_relay *
relay_alloc(const struct v4w_relay_conf *conf)
{
	struct v4w_relay *r;
	uint32_t nq;
	int i;

	r = relay_mem_alloc();
	if (r == NULL)
		return NULL;
	r->id = conf->id;
	r->flags = conf->flags;
	r->vid = -1;
	r->vm_node = V4W_NONE;
	r->numa_hint = conf->numa_hint;
	r->sock_uid = conf->socket_uid;
	r->sock_gid = conf->socket_gid;
	r->sock_mode = conf->socket_mode;
	r->vf_nq = 1;
	nq = conf->max_queues ? conf->max_queues : V4W_MAX_QUEUES;
	r->queue_limit = nq >= 32 ? UINT32_MAX : (1u << nq) - 1;
	snprintf(r->path, sizeof(r->path), "%s", conf->vhost_path);
	snprintf(r->vf_devargs, sizeof(r->vf_devargs), "%s",
		 conf->vf_devargs);
	devargs_name(r->vf_devargs, r->vf_name, sizeof(r->vf_name));
	for (i = 0; i < 2; i++) {
		r->d[i].relay = r;
		r->d[i].dir = i;
		r->d[i].lcore = V4W_NONE;
		r->d[i].pinned = conf->cpu[i];
	}
	return r;
}

static int
relay_add_locked(const struct v4w_relay_conf *conf)
{
	struct v4w_relay *r;
	int ret, node;

	ret = check_conf(conf);
	if (ret < 0)
		return ret;
	r = relay_alloc(conf);
	if (r == NULL)
		return v4w_fail(ENOMEM, "relay %u: out of memory", conf->id);
	if (conf->n_members > 0 && r->vf_name[0] == 0) {
		ret = v4w_fail(EINVAL, "relay %u: a bond needs a name "
			       "(net_bonding...)", r->id);
		goto fail_free;
	}
	if (r->vf_name[0] != 0) {
		ret = vf_probe(r, conf);
		if (ret < 0)
			goto fail_free;
	}
	ret = vf_inspect(r, conf->vf_queues);
	if (ret < 0)
		goto fail_vf;

	/* vdevs have no node: then the main lcore's */
	node = v4w_pick_node(r->numa_hint, r->has_port ?
			     rte_eth_dev_socket_id(r->port_id) : V4W_NONE,
			     rte_lcore_to_socket_id(rte_get_main_lcore()));
	r->pool = pool_create(r, node);
	if (r->pool == NULL) {
		ret = -rte_errno;
		goto fail_vf;
	}
	r->pool_node = node;
	if (r->has_port) {
		ret = vf_configure(r, node);
		if (ret < 0)
			goto fail_pool;
	}

	table_insert(r);
	ret = vhost_attach(r);
	if (ret < 0)
		goto fail_table;
	ret = place(r);
	if (ret < 0)
		goto fail_vhost;
	V4W_LOG(INFO, "relay %u: VF '%s' <-> %s (%s), NUMA node %d, CPUs "
		"%d/%d, MTU %u", r->id, r->vf_name[0] ? r->vf_name : "none",
		r->path, (r->flags & V4W_F_CLIENT) ? "client" : "server",
		r->pool_node, r->d[0].lcore, r->d[1].lcore, r->mtu);
	return 0;

fail_vhost:
	unplace(r);
	vhost_detach(r);
fail_table:
	table_delete(r);
fail_pool:
	vf_detach(r);
	rte_mempool_free(r->pool);
	relay_mem_free(r);
	return ret;
fail_vf:
	vf_detach(r);
fail_free:
	relay_mem_free(r);
	return ret;
}

int
v4w_relay_add(const struct v4w_relay_conf *conf)
{
	int ret;

	if (!v4w_running())
		return v4w_fail(ENODEV, "the data plane is not running");
	pthread_mutex_lock(&v4w_ctl_lock);
	ret = relay_add_locked(conf);
	pthread_mutex_unlock(&v4w_ctl_lock);
	return ret;
}

/* ---- VF attach / detach on a living relay -------------------------- */

/*
 * Give a relay that has no VF (a socket someone wants before anyone says
 * which VF goes with it) its VF, without touching the vhost-user side: a
 * connected VM stays connected.  The pool is re-made to hold the VF's rings.
 */
static int
relay_set_vf_locked(const struct v4w_relay_conf *conf)
{
	struct v4w_relay *r = relay_by_id(conf->id);
	struct rte_mempool *old, *mp;
	int ret;

	if (r == NULL)
		return v4w_fail(ENOENT, "relay %u does not exist", conf->id);
	if (r->has_port)
		return v4w_fail(EBUSY, "relay %u already has VF '%s'", r->id,
				r->vf_name);
	ret = check_vf_conf(conf);
	if (ret < 0)
		return ret;
	if (conf->vf_devargs[0] == 0)
		return v4w_fail(EINVAL, "relay %u: no VF given", r->id);
	snprintf(r->vf_devargs, sizeof(r->vf_devargs), "%s", conf->vf_devargs);
	devargs_name(r->vf_devargs, r->vf_name, sizeof(r->vf_name));
	ret = vf_probe(r, conf);
	if (ret == 0)
		ret = vf_inspect(r, conf->vf_queues);
	if (ret < 0)
		goto fail;
	mp = pool_create(r, r->pool_node);
	if (mp == NULL) {
		ret = -rte_errno;
		goto fail;
	}
	unplace(r);
	old = r->pool;
	r->pool = mp;
	ret = vf_configure(r, r->pool_node);
	if (ret < 0) {
		/* Back to the socket-only relay it was, on its old pool. */
		r->pool = old;
		rte_mempool_free(mp);
	} else {
		pool_release(old);
	}
	place(r);
	if (ret < 0)
		goto fail;
	vhost_features_update(r);
	V4W_LOG(INFO, "relay %u: VF '%s' attached", r->id, r->vf_name);
	return 0;
fail:
	vf_detach(r);
	r->vf_name[0] = 0;
	r->vf_devargs[0] = 0;
	r->vf_nq = 1;
	return ret;
}

int
v4w_relay_set_vf(const struct v4w_relay_conf *conf)
{
	int ret;

	if (!v4w_running())
		return v4w_fail(ENODEV, "the data plane is not running");
	pthread_mutex_lock(&v4w_ctl_lock);
	ret = relay_set_vf_locked(conf);
	pthread_mutex_unlock(&v4w_ctl_lock);
	return ret;
}

int
v4w_relay_clear_vf(uint32_t id)
{
	struct v4w_relay *r;
	int ret = 0;

	if (!v4w_running())
		return v4w_fail(ENODEV, "the data plane is not running");
	pthread_mutex_lock(&v4w_ctl_lock);
	r = relay_by_id(id);
	if (r == NULL) {
		ret = v4w_fail(ENOENT, "relay %u does not exist", id);
	} else if (r->has_port) {
		unplace(r);
		vf_detach(r);
		V4W_LOG(INFO, "relay %u: VF '%s' detached", r->id, r->vf_name);
		r->vf_name[0] = 0;
		r->vf_devargs[0] = 0;
		r->vf_nq = 1;
		place(r);
		vhost_features_update(r);
	}
	pthread_mutex_unlock(&v4w_ctl_lock);
	return ret;
}

int
v4w_relay_remove_locked(uint32_t id)
{
	struct v4w_relay *r = relay_by_id(id);

	if (r == NULL)
		return v4w_fail(ENOENT, "relay %u does not exist", id);
	unplace(r);
	if (!r->vhost_down)
		vhost_detach(r);
	table_delete(r);
	vf_detach(r);
	pool_release(r->pool);
	V4W_LOG(INFO, "relay %u removed", id);
	relay_mem_free(r);
	return 0;
}

int
v4w_relay_remove(uint32_t id)
{
	int ret;

	if (!v4w_running())
		return v4w_fail(ENODEV, "the data plane is not running");
	pthread_mutex_lock(&v4w_ctl_lock);
	ret = v4w_relay_remove_locked(id);
	pthread_mutex_unlock(&v4w_ctl_lock);
	return ret;
}

int
v4w_relay_remove_all(void)
{
	pthread_mutex_lock(&v4w_ctl_lock);
	while (nrelays > 0)
		v4w_relay_remove_locked(relays[0]->id);
	pool_reap_retired(true);
	pthread_mutex_unlock(&v4w_ctl_lock);
	return 0;
}

/* ---- live moves ---------------------------------------------------- */

static int
relay_move_dir(struct v4w_relay *r, int dir, int cpu)
{
	struct v4w_dir *d = &r->d[dir];
	int target = cpu;
	int ret;

	if (cpu != V4W_NONE && !v4w_is_worker(cpu))
		return v4w_fail(EINVAL, "relay %u: CPU %d for %s is not one of "
				"the worker CPUs", r->id, cpu, dir_name[dir]);
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
			dir_name[dir], target);
	return ret;
}

int
v4w_relay_set_cpu(uint32_t id, int32_t dir, int32_t cpu)
{
	struct v4w_relay *r;
	int ret;

	if (!v4w_running())
		return v4w_fail(ENODEV, "the data plane is not running");
	if (dir != V4W_VF_TO_VM && dir != V4W_VM_TO_VF)
		return v4w_fail(EINVAL, "relay %u: bad direction %d", id, dir);
	pthread_mutex_lock(&v4w_ctl_lock);
	r = relay_by_id(id);
	if (r == NULL)
		ret = v4w_fail(ENOENT, "relay %u does not exist", id);
	else
		ret = relay_move_dir(r, dir, cpu);
	pthread_mutex_unlock(&v4w_ctl_lock);
	return ret;
}

/* ---- NUMA placement ------------------------------------------------ */

/*
 * Re-make the pool on `node` and restart the VF on it.  When the VF will
 * not start on the new pool it goes back to the old one (and the error is
 * returned); when it will not start at all, the housekeeper keeps trying,
 * and the relay says "VF not started" meanwhile.
 */
static int
relay_move_pool(struct v4w_relay *r, int node)
{
	struct rte_mempool *old = r->pool, *mp;
	int old_node = r->pool_node, ret = 0, err;

	mp = pool_create(r, node);
	if (mp == NULL)
		return -rte_errno;
	unplace(r);
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
		ret = vf_queues_setup(r, node);
		if (ret < 0) {
			V4W_LOG(ERR, "relay %u: VF '%s' cannot run on a mempool "
				"on NUMA node %d (%s); it stays on node %d",
				r->id, r->vf_name, node, v4w_last_error(),
				old_node);
			r->pool = old;
			r->pool_node = old_node;
			rte_eth_dev_stop(r->port_id);
			if (vf_queues_setup(r, old_node) < 0) {
				r->vf_restart = 1;
				V4W_LOG(ERR, "relay %u: VF '%s' cannot be "
					"restarted: %s; retrying", r->id,
					r->vf_name, v4w_last_error());
			}
			pool_release(mp);
			place(r);
			return ret;
		}
	}
	pool_release(old);
	r->pool_moves++;
	place(r);
	V4W_LOG(INFO, "relay %u: mempool moved to NUMA node %d", r->id, node);
	return 0;
}

int
v4w_relay_set_numa(uint32_t id, int32_t node)
{
	struct v4w_relay *r;
	int ret;

	if (!v4w_running())
		return v4w_fail(ENODEV, "the data plane is not running");
	pthread_mutex_lock(&v4w_ctl_lock);
	r = relay_by_id(id);
	if (r == NULL)
		ret = v4w_fail(ENOENT, "relay %u does not exist", id);
	else if (node < 0 || node >= RTE_MAX_NUMA_NODES)
		ret = v4w_fail(EINVAL, "relay %u: bad NUMA node %d", id, node);
	else {
		r->numa_hint = node;
		ret = relay_move_pool(r, node);
	}
	pthread_mutex_unlock(&v4w_ctl_lock);
	return ret;
}

/*
 * Member link watch.  A bond hears of member link changes only from
 * members whose LSC interrupts reach it (or that it polls); some PMDs
 * (net_tap here) report a down link when asked but never interrupt.  So
 * members are asked every housekeeping round: one whose link went down is
 * taken out of the bond (the bond fails over as for any removal), and put
 * back when its link returns, as primary again if it was the first.  The
 * relay's directions are off the workers meanwhile (a few microseconds).
 */
static void
bond_watch(struct v4w_relay *r)
{
	struct rte_eth_link link;
	uint8_t m;
	int up, ret;

	for (m = 0; m < r->n_members; m++) {
		if (rte_eth_link_get_nowait(r->member_port[m], &link) < 0)
			continue;
		up = link.link_status == RTE_ETH_LINK_UP;
		if (up == !r->member_out[m])
			continue;
		unplace(r);
		if (up) {
			ret = rte_eth_bond_slave_add(r->port_id,
						     r->member_port[m]);
			if (ret == 0 && m == 0 &&
			    rte_eth_bond_primary_set(r->port_id,
						     r->member_port[0]) < 0)
				V4W_LOG(WARNING, "relay %u: '%s' is back in "
					"bond '%s' but not its primary",
					r->id, r->member_name[0], r->vf_name);
		} else {
			ret = rte_eth_bond_slave_remove(r->port_id,
							r->member_port[m]);
		}
		if (ret == 0)
			r->member_out[m] = !up;
		if (place_dir(r, V4W_VF_TO_VM) < 0 ||
		    place_dir(r, V4W_VM_TO_VF) < 0)
			V4W_LOG(ERR, "relay %u: cannot re-place on workers",
				r->id);
		V4W_LOG(WARNING, "relay %u: bond member '%s' link %s: %s the "
			"bond%s", r->id, r->member_name[m], up ? "up" : "down",
			up ? "back in" : "out of", ret == 0 ? "" : " (failed)");
	}
}

/*
 * VF link changes: logged, and with V4W_F_LINK_FOLLOW passed on to the
 * guest.  vhost-user has no link message: QEMU shows the NIC's link down
 * when its vhost-user connection drops, and up when one is made again.  So
 * the relay withdraws its socket (or stops reconnecting, in client mode)
 * while the VF's link is down.  A guest whose QEMU does not reconnect
 * (server mode needs QEMU's reconnect option) would stay down: off by
 * default.
 */
static void
link_watch(struct v4w_relay *r)
{
	int up;

	if (vf_poll_link(r)) {
		up = __atomic_load_n(&r->vf_link, __ATOMIC_RELAXED);
		V4W_LOG(WARNING, "relay %u: VF '%s' link %s", r->id,
			r->vf_name, up ? "up" : "down");
	}
	if (!(r->flags & V4W_F_LINK_FOLLOW))
		return;
	up = __atomic_load_n(&r->vf_link, __ATOMIC_RELAXED);
	if (!up && !r->vhost_down) {
		vhost_detach(r);
		r->vhost_down = 1;
		V4W_LOG(WARNING, "relay %u: vhost-user link held down with "
			"the VF's", r->id);
	} else if (up && r->vhost_down) {
		if (vhost_attach(r) == 0) {
			r->vhost_down = 0;
			V4W_LOG(WARNING, "relay %u: vhost-user link back up",
				r->id);
		}
	}
}

/* A VF left stopped by a failed restart: try again, backing off from
 * 100 ms to 10 s between tries; say when it works. */
static void
vf_restart(struct v4w_relay *r)
{
	uint64_t now = rte_get_timer_cycles(), hz = rte_get_timer_hz();

	if (now < r->vf_restart_at)
		return;
	unplace(r);
	rte_eth_dev_stop(r->port_id);
	if (vf_queues_setup(r, r->pool_node) == 0) {
		r->vf_restart = 0;
		r->vf_restart_wait = 0;
		V4W_LOG(WARNING, "relay %u: VF '%s' restarted", r->id,
			r->vf_name);
	} else {
		r->vf_restart_wait = RTE_MIN(RTE_MAX(r->vf_restart_wait * 2,
						     hz / 10), 10 * hz);
		r->vf_restart_at = now + r->vf_restart_wait;
	}
	place(r);
}

void
v4w_housekeep(void)
{
	uint32_t i;

	pthread_mutex_lock(&v4w_ctl_lock);
	for (i = 0; i < nrelays; i++) {
		struct v4w_relay *r = relays[i];
		int node = __atomic_load_n(&r->vm_node, __ATOMIC_ACQUIRE);

		if (r->n_members > 0 && r->has_port)
			bond_watch(r);
		if (r->has_port && r->vf_ready)
			link_watch(r);
		if (r->has_port && r->vf_restart)
			vf_restart(r);
		if (!__atomic_exchange_n(&r->move_pending, 0, __ATOMIC_ACQ_REL))
			continue;
		node = v4w_move_target(r->pool_node, node);
		if (node != V4W_NONE && relay_move_pool(r, node) < 0)
			V4W_LOG(ERR, "relay %u: mempool not moved to the VM's "
				"NUMA node %d: %s", r->id, node,
				v4w_last_error());
	}
	pool_reap_retired(false);
	pthread_mutex_unlock(&v4w_ctl_lock);
}

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

int
v4w_relay_get(uint32_t id, struct v4w_relay_info *out)
{
	struct v4w_relay *r;
	int ret = 0;

	if (!v4w_running())
		return v4w_fail(ENODEV, "the data plane is not running");
	pthread_mutex_lock(&v4w_ctl_lock);
	r = relay_by_id(id);
	if (r == NULL) {
		ret = v4w_fail(ENOENT, "relay %u does not exist", id);
		goto out;
	}
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
	out->n_members = r->n_members;
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
out:
	pthread_mutex_unlock(&v4w_ctl_lock);
	return ret;
}

int
v4w_relay_queue_stats(uint32_t id, int32_t dir, struct v4w_queue_stats *out,
		      uint32_t max)
{
	struct v4w_relay *r;
	uint32_t q;
	int ret;

	if (!v4w_running())
		return v4w_fail(ENODEV, "the data plane is not running");
	if (dir != V4W_VF_TO_VM && dir != V4W_VM_TO_VF)
		return v4w_fail(EINVAL, "relay %u: bad direction %d", id, dir);
	pthread_mutex_lock(&v4w_ctl_lock);
	r = relay_by_id(id);
	if (r == NULL) {
		ret = v4w_fail(ENOENT, "relay %u does not exist", id);
	} else {
		const struct v4w_queue_stats *qs = r->d[dir].q;

		for (q = 0; q < max && q < V4W_MAX_QUEUES; q++) {
			out[q].pkts = __atomic_load_n(&qs[q].pkts,
						      __ATOMIC_RELAXED);
			out[q].bytes = __atomic_load_n(&qs[q].bytes,
						       __ATOMIC_RELAXED);
			out[q].drops = __atomic_load_n(&qs[q].drops,
						       __ATOMIC_RELAXED);
			out[q].vf_pkts = __atomic_load_n(&qs[q].vf_pkts,
							 __ATOMIC_RELAXED);
		}
		ret = RTE_MAX((uint32_t)__builtin_popcount(r->queue_limit),
			      (uint32_t)r->vf_nq);
	}
	pthread_mutex_unlock(&v4w_ctl_lock);
	return ret;
}

int
v4w_relay_list(uint32_t *ids, uint32_t max)
{
	uint32_t i, n;

	if (!v4w_running())
		return 0;
	pthread_mutex_lock(&v4w_ctl_lock);
	n = nrelays;
	for (i = 0; i < n && i < max; i++)
		ids[i] = relays[i]->id;
	pthread_mutex_unlock(&v4w_ctl_lock);
	return n;
}
