/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * The vhost-user side of a relay: the callbacks through which DPDK's
 * vhost library reports the VM (connections, the device, its vrings), the
 * virtio features offered, and the socket itself (made, owned, removed).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_ethdev.h>
#include <rte_vhost.h>

#include "v4w_priv.h"

/* Features with which the guest may leave work on its frames to us. */
#define V4W_VM_TX_OFFLOADS ((1ULL << VIRTIO_NET_F_CSUM) | \
			    (1ULL << VIRTIO_NET_F_HOST_TSO4) | \
			    (1ULL << VIRTIO_NET_F_HOST_TSO6))

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
	pthread_mutex_lock(&v4w_tbl_lock);
	r = v4w_relay_by_path(path);
	if (r == NULL) {
		pthread_mutex_unlock(&v4w_tbl_lock);
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
	pthread_mutex_unlock(&v4w_tbl_lock);
	if (kick)
		v4w_kick_watch();
	return 0;
}

static void
destroy_device(int vid)
{
	struct v4w_relay *r;

	pthread_mutex_lock(&v4w_tbl_lock);
	r = v4w_relay_by_vid(vid);
	if (r != NULL) {
		__atomic_store_n(&r->vid, -1, __ATOMIC_RELEASE);
		__atomic_store_n(&r->rxq_mask, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&r->txq_mask, 0, __ATOMIC_RELEASE);
		/* vhost frees the device when we return: no worker may
		 * still be inside an enqueue or dequeue on it. */
		v4w_sync();
		V4W_LOG(INFO, "relay %u: VM disconnected from %s", r->id,
			r->path);
	}
	pthread_mutex_unlock(&v4w_tbl_lock);
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
	pthread_mutex_lock(&v4w_tbl_lock);
	r = v4w_relay_by_path(path);
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
	pthread_mutex_unlock(&v4w_tbl_lock);
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
	pthread_mutex_lock(&v4w_tbl_lock);
	r = v4w_relay_by_path(path);
	if (r != NULL && (delta > 0 ||
			  __atomic_load_n(&r->vm_sockets, __ATOMIC_ACQUIRE) > 0))
		__atomic_fetch_add(&r->vm_sockets, delta, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&v4w_tbl_lock);
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

/* ---- vhost-user socket --------------------------------------------- */

int
v4w_vhost_check_path(const struct v4w_relay_conf *conf)
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
 * known yet (a socket made before its VF); v4w_vhost_features_update() offers
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
void
v4w_vhost_features_update(struct v4w_relay *r)
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

int
v4w_vhost_attach(struct v4w_relay *r)
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

void
v4w_vhost_detach(struct v4w_relay *r)
{
	rte_vhost_driver_unregister(r->path);
	/* A server socket is ours: leave no stale file for the next user. */
	if (!(r->flags & V4W_F_CLIENT))
		socket_unlink_ours(r);
}

