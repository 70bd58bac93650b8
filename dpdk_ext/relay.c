/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * Relays: a VF port (any DPDK device) paired with a vhost-user socket.
 *
 * This file holds the relay table and what changes it: adding and
 * removing relays, giving a relay its VF later (or taking it away), and
 * the watch round.  The parts of a relay live beside it:
 * vhost.c (the socket and the VM on it), vf.c (VF and bond ports, their
 * links), mempool.c (memory and its NUMA moves), placement.c (which worker
 * runs a direction) and query.c (what the control plane reads).
 *
 * Locking: every control call holds v4w_ctl_lock.  vhost callbacks run on
 * DPDK's vhost thread (or inside rte_vhost_driver_unregister() on ours),
 * so they take only v4w_tbl_lock, which is never held across a vhost API
 * call; that keeps unregister from waiting on a callback that waits on us.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_vhost.h>

#include "v4w_priv.h"

pthread_mutex_t v4w_ctl_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t v4w_tbl_lock = PTHREAD_MUTEX_INITIALIZER;

static struct v4w_relay *relays[RTE_MAX_VHOST_DEVICE];
static uint32_t nrelays;

/* Events for the control plane (v4w_events_read): a ring that keeps the
 * oldest; what does not fit is replaced by one V4W_EV_LOST. */
#define V4W_EVENTS 256
static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct v4w_event events[V4W_EVENTS];
static uint32_t ev_head, ev_count;
static bool ev_lost;

const char *const v4w_dir_name[2] = { "VF->VM", "VM->VF" };

/* ---- the table ----------------------------------------------------- */

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

struct v4w_relay *
v4w_relay_lookup(uint32_t id)
{
	struct v4w_relay *r = relay_by_id(id);

	if (r == NULL)
		v4w_fail(ENOENT, "relay %u does not exist", id);
	return r;
}

struct v4w_relay *
v4w_relay_by_vid(int vid)
{
	uint32_t i;

	for (i = 0; i < nrelays; i++)
		if (__atomic_load_n(&relays[i]->vid, __ATOMIC_ACQUIRE) == vid)
			return relays[i];
	return NULL;
}

struct v4w_relay *
v4w_relay_by_path(const char *path)
{
	uint32_t i;

	for (i = 0; i < nrelays; i++)
		if (strcmp(relays[i]->path, path) == 0)
			return relays[i];
	return NULL;
}

/* The relay whose VF, or one of whose bond members, is `name`. */
struct v4w_relay *
v4w_relay_by_vf(const char *name)
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
void
v4w_devargs_name(const char *devargs, char *name, size_t size)
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
	pthread_mutex_lock(&v4w_tbl_lock);
	relays[nrelays++] = r;
	pthread_mutex_unlock(&v4w_tbl_lock);
}

static void
table_delete(struct v4w_relay *r)
{
	uint32_t i;

	pthread_mutex_lock(&v4w_tbl_lock);
	for (i = 0; i < nrelays; i++)
		if (relays[i] == r) {
			relays[i] = relays[--nrelays];
			break;
		}
	pthread_mutex_unlock(&v4w_tbl_lock);
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
	other = v4w_relay_by_path(conf->vhost_path);
	if (other != NULL)
		return v4w_fail(EBUSY, "relay %u: socket '%s' is already used "
				"by relay %u", conf->id, conf->vhost_path,
				other->id);
	ret = v4w_vhost_check_path(conf);
	if (ret < 0)
		return ret;
	for (i = 0; i < 2; i++)
		if (conf->cpu[i] != V4W_NONE && !v4w_is_worker(conf->cpu[i]))
			return v4w_fail(EINVAL, "relay %u: CPU %d for %s is not "
					"one of the worker CPUs", conf->id,
					conf->cpu[i], v4w_dir_name[i]);
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
	v4w_devargs_name(r->vf_devargs, r->vf_name, sizeof(r->vf_name));
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
		ret = v4w_vf_probe(r, conf);
		if (ret < 0)
			goto fail_free;
	}
	ret = v4w_vf_inspect(r, conf->vf_queues);
	if (ret < 0)
		goto fail_vf;

	/* vdevs have no node: then the main lcore's */
	node = v4w_pick_node(r->numa_hint, r->has_port ?
			     rte_eth_dev_socket_id(r->port_id) : V4W_NONE,
			     rte_lcore_to_socket_id(rte_get_main_lcore()));
	r->pool = v4w_pool_create(r, node);
	if (r->pool == NULL) {
		ret = -rte_errno;
		goto fail_vf;
	}
	r->pool_node = node;
	if (r->has_port) {
		ret = v4w_vf_configure(r, node);
		if (ret < 0)
			goto fail_pool;
	}

	table_insert(r);
	ret = v4w_vhost_attach(r);
	if (ret < 0)
		goto fail_table;
	ret = v4w_place(r);
	if (ret < 0)
		goto fail_vhost;
	V4W_LOG(INFO, "relay %u: VF '%s' <-> %s (%s), NUMA node %d, CPUs "
		"%d/%d, MTU %u", r->id, r->vf_name[0] ? r->vf_name : "none",
		r->path, (r->flags & V4W_F_CLIENT) ? "client" : "server",
		r->pool_node, r->d[0].lcore, r->d[1].lcore, r->mtu);
	return 0;

fail_vhost:
	v4w_unplace(r);
	v4w_vhost_detach(r);
fail_table:
	table_delete(r);
fail_pool:
	v4w_vf_detach(r);
	rte_mempool_free(r->pool);
	relay_mem_free(r);
	return ret;
fail_vf:
	v4w_vf_detach(r);
fail_free:
	relay_mem_free(r);
	return ret;
}

int
v4w_relay_add(const struct v4w_relay_conf *conf)
{
	return V4W_CTL_CALL(relay_add_locked(conf));
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
	struct v4w_relay *r = v4w_relay_lookup(conf->id);
	struct rte_mempool *old, *mp;
	int ret;

	if (r == NULL)
		return -ENOENT;
	if (r->has_port)
		return v4w_fail(EBUSY, "relay %u already has VF '%s'", r->id,
				r->vf_name);
	ret = check_vf_conf(conf);
	if (ret < 0)
		return ret;
	if (conf->vf_devargs[0] == 0)
		return v4w_fail(EINVAL, "relay %u: no VF given", r->id);
	snprintf(r->vf_devargs, sizeof(r->vf_devargs), "%s", conf->vf_devargs);
	v4w_devargs_name(r->vf_devargs, r->vf_name, sizeof(r->vf_name));
	ret = v4w_vf_probe(r, conf);
	if (ret == 0)
		ret = v4w_vf_inspect(r, conf->vf_queues);
	if (ret < 0)
		goto fail;
	mp = v4w_pool_create(r, r->pool_node);
	if (mp == NULL) {
		ret = -rte_errno;
		goto fail;
	}
	v4w_unplace(r);
	old = r->pool;
	r->pool = mp;
	ret = v4w_vf_configure(r, r->pool_node);
	if (ret < 0) {
		/* Back to the socket-only relay it was, on its old pool. */
		r->pool = old;
		rte_mempool_free(mp);
	} else {
		v4w_pool_release(old);
	}
	v4w_place(r);
	if (ret < 0)
		goto fail;
	v4w_vhost_features_update(r);
	V4W_LOG(INFO, "relay %u: VF '%s' attached", r->id, r->vf_name);
	return 0;
fail:
	v4w_vf_detach(r);
	r->vf_name[0] = 0;
	r->vf_devargs[0] = 0;
	r->vf_nq = 1;
	return ret;
}

int
v4w_relay_set_vf(const struct v4w_relay_conf *conf)
{
	return V4W_CTL_CALL(relay_set_vf_locked(conf));
}

static int
relay_clear_vf_locked(uint32_t id)
{
	struct v4w_relay *r = v4w_relay_lookup(id);

	if (r == NULL)
		return -ENOENT;
	if (!r->has_port)
		return 0;
	v4w_unplace(r);
	v4w_vf_detach(r);
	V4W_LOG(INFO, "relay %u: VF '%s' detached", r->id, r->vf_name);
	r->vf_name[0] = 0;
	r->vf_devargs[0] = 0;
	r->vf_nq = 1;
	v4w_place(r);
	v4w_vhost_features_update(r);
	return 0;
}

int
v4w_relay_clear_vf(uint32_t id)
{
	return V4W_CTL_CALL(relay_clear_vf_locked(id));
}

int
v4w_relay_remove_locked(uint32_t id)
{
	struct v4w_relay *r = v4w_relay_lookup(id);

	if (r == NULL)
		return -ENOENT;
	v4w_unplace(r);
	if (!r->vhost_down)
		v4w_vhost_detach(r);
	table_delete(r);
	v4w_vf_detach(r);
	v4w_pool_release(r->pool);
	V4W_LOG(INFO, "relay %u removed", id);
	relay_mem_free(r);
	return 0;
}

int
v4w_relay_remove(uint32_t id)
{
	return V4W_CTL_CALL(v4w_relay_remove_locked(id));
}

int
v4w_relay_remove_all(void)
{
	pthread_mutex_lock(&v4w_ctl_lock);
	while (nrelays > 0)
		v4w_relay_remove_locked(relays[0]->id);
	v4w_pool_reap_retired(true);
	pthread_mutex_unlock(&v4w_ctl_lock);
	return 0;
}

void
v4w_event_post(const struct v4w_relay *r, int kind, int arg)
{
	pthread_mutex_lock(&ev_lock);
	if (ev_count == V4W_EVENTS) {
		ev_lost = true;
	} else {
		struct v4w_event *e = &events[(ev_head + ev_count++) %
					     V4W_EVENTS];

		e->relay = (int32_t)r->id;
		e->kind = kind;
		e->arg = arg;
	}
	pthread_mutex_unlock(&ev_lock);
}

int
v4w_events_read(struct v4w_event *out, uint32_t max)
{
	uint32_t n = 0;

	pthread_mutex_lock(&ev_lock);
	if (ev_lost && max > 0) {
		out[n].relay = V4W_NONE;
		out[n].kind = V4W_EV_LOST;
		out[n++].arg = 0;
		ev_lost = false;
	}
	while (n < max && ev_count > 0) {
		out[n++] = events[ev_head];
		ev_head = (ev_head + 1) % V4W_EVENTS;
		ev_count--;
	}
	pthread_mutex_unlock(&ev_lock);
	return (int)n;
}

/*
 * One round of the watch thread over every relay: its VF side (link
 * changes, bond members, a restart that failed) and its memory (the VM
 * connected on another NUMA node: the pool moves there).
 */
void
v4w_watch_relays(void)
{
	uint32_t i;

	pthread_mutex_lock(&v4w_ctl_lock);
	for (i = 0; i < nrelays; i++) {
		struct v4w_relay *r = relays[i];
		int node = __atomic_load_n(&r->vm_node, __ATOMIC_ACQUIRE);

		v4w_vf_watch(r);
		if (!__atomic_exchange_n(&r->move_pending, 0, __ATOMIC_ACQ_REL))
			continue;
		node = v4w_move_target(r->pool_node, node);
		if (node == V4W_NONE)
			continue;
		if (v4w_relay_move_pool(r, node) < 0)
			V4W_LOG(ERR, "relay %u: mempool not moved to the VM's "
				"NUMA node %d: %s", r->id, node,
				v4w_last_error());
		/* Moved or not, the relay was off its workers meanwhile. */
		v4w_event_post(r, V4W_EV_POOL_MOVED, r->pool_node);
	}
	v4w_pool_reap_retired(false);
	pthread_mutex_unlock(&v4w_ctl_lock);
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
