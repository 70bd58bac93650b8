/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * Internal state shared by the dpdk_ext translation units.
 */
#ifndef V4W_PRIV_H
#define V4W_PRIV_H

#include <errno.h>
#include <pthread.h>
#include <sys/types.h>
#include <stdbool.h>

#include <rte_common.h>
#include <rte_ether.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_vhost.h>

#include "vio4wd.h"

extern int v4w_logtype;
#define V4W_LOG(level, fmt, ...) \
	rte_log(RTE_LOG_ ## level, v4w_logtype, "vio4wd: " fmt "\n", \
		##__VA_ARGS__)

/* Store a message for v4w_last_error() and return -abs(err). */
int v4w_fail(int err, const char *fmt, ...) __rte_format_printf(2, 3);

/* Lines DPDK logged on this thread since the last reset, "; "-joined. */
void v4w_dpdk_said_reset(void);
const char *v4w_dpdk_said(void);

/* Virtqueue index of queue pair q, as seen by the backend. */
#define V4W_GUEST_RXQ(q) ((q) * 2)
#define V4W_GUEST_TXQ(q) ((q) * 2 + 1)

/*
 * A held burst is retried as long as the far side keeps taking packets; it
 * is dropped once the far side took nothing for this long.  Long enough to
 * ride out a descheduled vCPU, short enough that a dead peer costs little
 * (meanwhile the VF's own ring absorbs, then counts, the excess).
 */
#define V4W_RETRY_US 5000

/*
 * One direction of a relay.  Everything above `relay` is written only by
 * the worker that currently owns the direction; the control thread reads
 * the counters with relaxed atomic loads.
 */
struct v4w_dir {
	struct rte_mbuf *held[V4W_BURST];
	uint8_t hq[V4W_BURST];    /* guest queue of each held packet */
	uint16_t held_off;
	uint16_t held_n;
	uint32_t held_bytes;
	uint64_t last_progress;   /* TSC of the last progress, 0 if none held */
	uint8_t prepared;         /* the held burst went through tx_prepare */
	struct v4w_dir_stats st;  /* `held` and `cpu` are filled on read */
	uint32_t seq;             /* odd while the worker updates counters */
	/* Enabled guest queues, as last seen (a cache of the relay's mask). */
	uint32_t qmask;
	uint8_t nq;
	uint8_t qlist[V4W_MAX_QUEUES];
	uint16_t rr;              /* where the next round starts */
	/* Idle directions are polled less often (the owner's own state;
	 * the rounds still to pass are in its worker's task list). */
	uint16_t empty;           /* polls in a row that moved nothing */
	struct v4w_queue_stats q[V4W_MAX_QUEUES];

	struct v4w_relay *relay;
	int dir;
	int lcore;                /* owning worker, V4W_NONE while unpublished */
	int pinned;               /* lcore chosen explicitly */
} __rte_cache_aligned;

struct v4w_relay {
	struct v4w_dir d[2];

	/* Written by vhost callbacks, read by workers. */
	int vid;                  /* vhost device, -1 when no VM */
	int vf_ready;             /* VF port started */
	int vf_restart;           /* VF stopped by a failed restart: retry */
	uint64_t vf_restart_at;   /* ...not before this (timer cycles) */
	uint64_t vf_restart_wait;
	int vf_link;              /* VF link up (polled by the watch thread) */
	uint32_t rxq_mask;        /* guest rx vrings enabled, bit = pair */
	uint32_t txq_mask;        /* guest tx vrings enabled */
	uint32_t queue_limit;     /* mask of the pairs we serve */
	uint16_t vf_nq;           /* VF queue pairs */

	uint32_t id;
	uint32_t flags;
	int has_port;
	uint16_t port_id;
	uint16_t mtu;
	uint64_t vf_tx_capa;      /* RTE_ETH_TX_OFFLOAD_* the VF has */
	uint64_t vf_txoff;        /* ...and those configured on it */
	uint64_t vm_offloads;     /* offload features the VM negotiated */
	uint64_t vf_rss_hf;       /* RSS hash types the VF offers */
	int scatter;              /* big frames span several 2 KB mbufs */
	struct rte_mempool *pool;
	int pool_node;
	int vm_node;
	int numa_hint;
	int move_pending;         /* VM connected on another node */
	uint32_t pool_moves;
	uint32_t pool_gen;
	int vhost_down;           /* socket withdrawn while the VF link is down */
	int sock_uid, sock_gid, sock_mode;
	dev_t sock_dev;           /* the server socket the relay made */
	ino_t sock_ino;           /* ... 0 when none */
	uint32_t vm_connects;
	int vm_sockets;            /* vhost-user connections on the socket:
				    * QEMU there, its guest driver or not */
	char vf_devargs[V4W_DEVARGS_MAX];
	char vf_name[V4W_NAME_MAX];
	char path[V4W_PATH_MAX];
	/* Bonded VF side: the bond is port_id/vf_name, these its members. */
	uint8_t n_members;
	int bond_mode;
	uint16_t member_port[V4W_MAX_BOND];
	uint8_t member_out[V4W_MAX_BOND];  /* taken out for a down link */
	char member_name[V4W_MAX_BOND][V4W_NAME_MAX];
};

/*
 * A held burst the far side did not take all of: keep retrying while the
 * far side takes some (`sent` > 0 moves `*last_progress` to `now`, as
 * does the first try); give up (returns true: drop it, counted as "queue
 * full") once it took nothing for more than `retry`.
 */
static inline bool
v4w_retry_gives_up(uint64_t *last_progress, uint64_t now, uint32_t sent,
		   uint64_t retry)
{
	if (sent > 0 || *last_progress == 0) {
		*last_progress = now;
		return false;
	}
	return now - *last_progress > retry;
}

/*
 * Counter updates of a direction are a seqlock's write side, so that a
 * reader always sees rx == tx + drops + held, even under traffic.  Only the
 * direction's owner writes (a worker, or the control thread while the
 * direction is unpublished).
 */
static inline void
v4w_seq_begin(struct v4w_dir *d)
{
	__atomic_store_n(&d->seq, d->seq + 1, __ATOMIC_RELAXED);
	rte_smp_wmb();
}

static inline void
v4w_seq_end(struct v4w_dir *d)
{
	rte_smp_wmb();
	__atomic_store_n(&d->seq, d->seq + 1, __ATOMIC_RELAXED);
}

/* Workers (worker.c). */
#define V4W_MAX_TASKS (2 * RTE_MAX_VHOST_DEVICE)

/* A worker's directions: changed in place (see worker.c), never resized. */
struct v4w_tasklist {
	uint32_t n;
	struct v4w_dir *dir[V4W_MAX_TASKS];
	/*
	 * Rounds each entry passes before its next poll: the worker's own,
	 * kept beside the list so that passing an idle direction touches
	 * none of its memory.  An entry v4w_unpublish() moves takes over the
	 * slot's count: at worst it is polled a few rounds early or late once.
	 */
	uint8_t skip[V4W_MAX_TASKS];
};

#define V4W_WORKER_STARTING 0
#define V4W_WORKER_RUNNING 1
#define V4W_WORKER_FAILED 2

struct v4w_worker {
	struct v4w_tasklist *tasks;
	volatile int stop;
	int state;                    /* V4W_WORKER_* */
	unsigned int lcore;
	uint32_t ndirs;               /* control thread's bookkeeping */
	/* Written by the worker only. */
	uint64_t busy_cycles;
	uint64_t idle_cycles;
	uint64_t rounds;
	uint64_t naps;
} __rte_cache_aligned;

extern struct rte_rcu_qsbr *v4w_qsv;
extern struct v4w_worker v4w_workers_tbl[RTE_MAX_LCORE];
extern uint64_t v4w_retry_tsc;

int v4w_worker_main(void *arg);
bool v4w_is_worker(int lcore);
int v4w_least_loaded_worker(int node);
struct v4w_tasklist *v4w_tasklist_new(void);
/* Put a direction on a worker (fails only for a CPU that is no worker). */
int v4w_publish(struct v4w_dir *d, int lcore);
/* Take it off its worker; returns once no worker can still be in it. */
void v4w_unpublish(struct v4w_dir *d);
/* Wait until no worker can still see anything unpublished before now. */
void v4w_sync(void);
void v4w_dir_release_held(struct v4w_dir *d);

/* Frame sizes (vf.c decides a relay's MTU, mempool.c sizes for it). */
#define V4W_MTU 1500
#define V4W_JUMBO_MTU 9000
#define V4W_FRAME_OVERHEAD (RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN + 8)
/* VF queue pairs where the VF spreads by RSS and none were asked for. */
#define V4W_AUTO_VF_QUEUES 4

extern const char *const v4w_dir_name[2];   /* "VF->VM", "VM->VF" */

/* The data plane (eal.c). */
bool v4w_running(void);
void v4w_kick_watch(void);

/* The relay table and its changes (relay.c). */
extern pthread_mutex_t v4w_ctl_lock;   /* serialises every control call */
extern pthread_mutex_t v4w_tbl_lock;   /* the table, for vhost callbacks */
uint32_t v4w_relay_count_locked(void);
/* The relay `id`, or NULL with "relay N does not exist" as the error. */
struct v4w_relay *v4w_relay_lookup(uint32_t id);
/* Lookups for vhost callbacks (under v4w_tbl_lock): the relay with the
 * VM `vid`, the relay of a socket path. */
struct v4w_relay *v4w_relay_by_vid(int vid);
struct v4w_relay *v4w_relay_by_path(const char *path);
/* The relay whose VF, or one of whose bond members, is `name`. */
struct v4w_relay *v4w_relay_by_vf(const char *name);
/* The device name in devargs ("net_tap0" of "net_tap0,iface=x"). */
void v4w_devargs_name(const char *devargs, char *name, size_t size);
int v4w_relay_remove_locked(uint32_t id);
int v4w_relay_remove_all(void);
void v4w_watch_relays(void);
/* Queue an event for v4w_events_read (the watch thread's own changes). */
void v4w_event_post(const struct v4w_relay *r, int kind, int arg);

/*
 * The body of a control entry point: `call` (an int expression) under the
 * control lock, once the data plane runs; else the error saying it does
 * not.
 */
#define V4W_CTL_CALL(call) __extension__ ({ \
	int v4w_ret_; \
	if (!v4w_running()) { \
		v4w_ret_ = v4w_fail(ENODEV, \
				    "the data plane is not running"); \
	} else { \
		pthread_mutex_lock(&v4w_ctl_lock); \
		v4w_ret_ = (call); \
		pthread_mutex_unlock(&v4w_ctl_lock); \
	} \
	v4w_ret_; })

/* The vhost-user side (vhost.c). */
int v4w_vhost_check_path(const struct v4w_relay_conf *conf);
int v4w_vhost_attach(struct v4w_relay *r);
void v4w_vhost_detach(struct v4w_relay *r);
void v4w_vhost_features_update(struct v4w_relay *r);

/* The VF side (vf.c). */
int v4w_vf_probe(struct v4w_relay *r, const struct v4w_relay_conf *conf);
int v4w_vf_inspect(struct v4w_relay *r, uint32_t want_nq);
int v4w_vf_configure(struct v4w_relay *r, int node);
int v4w_vf_queues_setup(struct v4w_relay *r, int node);
void v4w_vf_detach(struct v4w_relay *r);
void v4w_vf_watch(struct v4w_relay *r);

/* Memory (mempool.c). */
struct rte_mempool *v4w_pool_create(struct v4w_relay *r, int node);
void v4w_pool_release(struct rte_mempool *mp);
void v4w_pool_reap_retired(bool force);
int v4w_relay_move_pool(struct v4w_relay *r, int node);

/* Directions on workers (placement.c). */
int v4w_place(struct v4w_relay *r);
void v4w_unplace(struct v4w_relay *r);

#endif /* V4W_PRIV_H */
