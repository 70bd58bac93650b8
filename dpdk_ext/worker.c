/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * Worker lcores: each polls the relay directions published to it, in
 * bursts of V4W_BURST.  The control thread changes a worker's task list
 * by publishing a new list and waiting for a quiescent state (RCU), so a
 * worker never sees freed memory and nobody waits with a timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_vhost.h>

#include "v4w_priv.h"

struct rte_rcu_qsbr *v4w_qsv;
struct v4w_worker v4w_workers_tbl[RTE_MAX_LCORE];
uint64_t v4w_retry_tsc;

/* Empty rounds spun before a worker starts to nap, and the longest nap. */
#define V4W_IDLE_SPIN 2048
#define V4W_IDLE_NAP_MIN_US 8
#define V4W_IDLE_NAP_MAX_US 200

#define CNT_ADD(field, n) \
	__atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)

static inline uint32_t
burst_bytes(struct rte_mbuf **pkts, uint16_t n)
{
	uint32_t b = 0;
	uint16_t i;

	for (i = 0; i < n; i++)
		b += rte_pktmbuf_pkt_len(pkts[i]);
	return b;
}

static inline void
held_set(struct v4w_dir *d, uint16_t n)
{
	uint32_t bytes = burst_bytes(d->held, n);

	v4w_seq_begin(d);
	d->held_off = 0;
	d->held_n = n;
	d->held_bytes = bytes;
	CNT_ADD(d->st.rx_pkts, n);
	CNT_ADD(d->st.rx_bytes, bytes);
	v4w_seq_end(d);
}

/* Drop the whole held burst, counted against `noconn` or `full`. */
static inline void
held_drop(struct v4w_dir *d, bool noconn)
{
	struct rte_mbuf **pkts = d->held + d->held_off;
	uint16_t n = d->held_n;

	v4w_seq_begin(d);
	if (noconn) {
		CNT_ADD(d->st.drop_noconn_pkts, d->held_n);
		CNT_ADD(d->st.drop_noconn_bytes, d->held_bytes);
	} else {
		CNT_ADD(d->st.drop_full_pkts, d->held_n);
		CNT_ADD(d->st.drop_full_bytes, d->held_bytes);
	}
	rte_pktmbuf_free_bulk(d->held + d->held_off, d->held_n);
	d->held_n = 0;
	d->held_since = 0;
	v4w_seq_end(d);
}

/*
 * Account `sent` packets from the front of the held burst; whatever the
 * far side did not take stays held and is retried next round, until the
 * far side has taken nothing for V4W_RETRY_US.
 */
static inline void
held_sent(struct v4w_dir *d, uint16_t sent)
{
	uint64_t now;
	uint32_t bytes;

	if (sent == d->held_n) {
		v4w_seq_begin(d);
		CNT_ADD(d->st.tx_pkts, sent);
		CNT_ADD(d->st.tx_bytes, d->held_bytes);
		d->held_n = 0;
		d->held_since = 0;
		v4w_seq_end(d);
		return;
	}
	now = rte_rdtsc();
	if (sent > 0) {
		bytes = burst_bytes(d->held + d->held_off, sent);
		v4w_seq_begin(d);
		CNT_ADD(d->st.tx_pkts, sent);
		CNT_ADD(d->st.tx_bytes, bytes);
		d->held_off += sent;
		d->held_n -= sent;
		d->held_bytes -= bytes;
		v4w_seq_end(d);
		d->held_since = now;
	} else if (d->held_since == 0) {
		d->held_since = now;
	} else if (now - d->held_since > v4w_retry_tsc) {
		held_drop(d, false);
		return;
	}
	/* Not part of the rx == tx + drops + held invariant. */
	CNT_ADD(d->st.retries, 1);
}

static inline unsigned int
fwd_vf_to_vm(struct v4w_dir *d)
{
	struct v4w_relay *r = d->relay;
	int vid = __atomic_load_n(&r->vid, __ATOMIC_ACQUIRE);
	uint16_t n, sent;

	if (d->held_n == 0) {
		if (!r->vf_ready)
			return 0;
		n = rte_eth_rx_burst(r->port_id, 0, d->held, V4W_BURST);
		if (n == 0)
			return 0;
		held_set(d, n);
	}
	n = d->held_n;
	if (vid < 0) {
		held_drop(d, true);
	} else {
		sent = rte_vhost_enqueue_burst(vid, V4W_GUEST_RXQ(0),
					       d->held + d->held_off, n);
		/* vhost copied what it took; the mbufs are ours to free. */
		if (sent > 0)
			rte_pktmbuf_free_bulk(d->held + d->held_off, sent);
		held_sent(d, sent);
	}
	return n;
}

static inline unsigned int
fwd_vm_to_vf(struct v4w_dir *d)
{
	struct v4w_relay *r = d->relay;
	uint16_t n, sent;

	if (d->held_n == 0) {
		int vid = __atomic_load_n(&r->vid, __ATOMIC_ACQUIRE);

		if (vid < 0)
			return 0;
		n = rte_vhost_dequeue_burst(vid, V4W_GUEST_TXQ(0), r->pool,
					    d->held, V4W_BURST);
		if (n == 0)
			return 0;
		held_set(d, n);
	}
	n = d->held_n;
	if (!r->vf_ready) {
		held_drop(d, true);
	} else {
		/* The PMD owns what it took. */
		sent = rte_eth_tx_burst(r->port_id, 0, d->held + d->held_off,
					n);
		held_sent(d, sent);
	}
	return n;
}

static void
nap(unsigned int us)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = us * 1000L };

	nanosleep(&ts, NULL);
}

int
v4w_worker_main(void *arg)
{
	struct v4w_worker *w = arg;
	unsigned int tid = w->lcore;
	unsigned int idle = 0, nap_us = V4W_IDLE_NAP_MIN_US;
	uint64_t t0, t1;

	/* Naps are short; the default 50 us slack would dominate them. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	rte_rcu_qsbr_thread_register(v4w_qsv, tid);
	rte_rcu_qsbr_thread_online(v4w_qsv, tid);

	t0 = rte_rdtsc();
	while (!w->stop) {
		struct v4w_tasklist *tl =
			__atomic_load_n(&w->tasks, __ATOMIC_ACQUIRE);
		unsigned int work = 0;
		uint32_t i;

		for (i = 0; i < tl->n; i++) {
			struct v4w_dir *d = tl->dir[i];

			if (d->dir == V4W_VF_TO_VM)
				work += fwd_vf_to_vm(d);
			else
				work += fwd_vm_to_vf(d);
		}
		/* Nothing from `tl` is referenced past this point. */
		rte_rcu_qsbr_quiescent(v4w_qsv, tid);

		CNT_ADD(w->rounds, 1);
		if (work != 0) {
			t1 = rte_rdtsc();
			CNT_ADD(w->busy_cycles, t1 - t0);
			t0 = t1;
			idle = 0;
			nap_us = V4W_IDLE_NAP_MIN_US;
			continue;
		}
		if (++idle < V4W_IDLE_SPIN) {
			rte_pause();
		} else {
			/* Offline while napping: publishers need not wait. */
			rte_rcu_qsbr_thread_offline(v4w_qsv, tid);
			nap(nap_us);
			rte_rcu_qsbr_thread_online(v4w_qsv, tid);
			CNT_ADD(w->naps, 1);
			if (nap_us < V4W_IDLE_NAP_MAX_US)
				nap_us *= 2;
		}
		t1 = rte_rdtsc();
		CNT_ADD(w->idle_cycles, t1 - t0);
		t0 = t1;
	}

	rte_rcu_qsbr_thread_offline(v4w_qsv, tid);
	rte_rcu_qsbr_thread_unregister(v4w_qsv, tid);
	return 0;
}

void
v4w_sync(void)
{
	rte_rcu_qsbr_synchronize(v4w_qsv, RTE_QSBR_THRID_INVALID);
}

bool
v4w_is_worker(int lcore)
{
	return lcore >= 0 && lcore < RTE_MAX_LCORE &&
	       rte_lcore_is_enabled(lcore) &&
	       (unsigned int)lcore != rte_get_main_lcore();
}

/* Fewest directions wins; workers on `node` first; ties go to the lower CPU. */
int
v4w_least_loaded_worker(int node)
{
	unsigned int lcore;
	int best = V4W_NONE, pass;

	for (pass = 0; pass < 2 && best == V4W_NONE; pass++) {
		RTE_LCORE_FOREACH_WORKER(lcore) {
			if (pass == 0 && node >= 0 &&
			    (int)rte_lcore_to_socket_id(lcore) != node)
				continue;
			if (best == V4W_NONE ||
			    v4w_workers_tbl[lcore].ndirs <
			    v4w_workers_tbl[best].ndirs)
				best = lcore;
		}
	}
	return best;
}

static struct v4w_tasklist *
tasklist_new(uint32_t n)
{
	return calloc(1, sizeof(struct v4w_tasklist) +
			 n * sizeof(struct v4w_dir *));
}

static void
tasklist_swap(struct v4w_worker *w, struct v4w_tasklist *tl)
{
	struct v4w_tasklist *old = w->tasks;

	__atomic_store_n(&w->tasks, tl, __ATOMIC_RELEASE);
	v4w_sync();
	free(old);
}

int
v4w_publish(struct v4w_dir *d, int lcore)
{
	struct v4w_worker *w = &v4w_workers_tbl[lcore];
	struct v4w_tasklist *tl = tasklist_new(w->tasks->n + 1);

	if (tl == NULL)
		return v4w_fail(ENOMEM, "out of memory for a task list");
	memcpy(tl->dir, w->tasks->dir, w->tasks->n * sizeof(tl->dir[0]));
	tl->dir[w->tasks->n] = d;
	tl->n = w->tasks->n + 1;
	d->lcore = lcore;
	w->ndirs++;
	tasklist_swap(w, tl);
	return 0;
}

int
v4w_unpublish(struct v4w_dir *d)
{
	struct v4w_worker *w;
	struct v4w_tasklist *tl;
	uint32_t i;

	if (d->lcore == V4W_NONE)
		return 0;
	w = &v4w_workers_tbl[d->lcore];
	tl = tasklist_new(w->tasks->n);
	if (tl == NULL)
		return v4w_fail(ENOMEM, "out of memory for a task list");
	for (i = 0; i < w->tasks->n; i++)
		if (w->tasks->dir[i] != d)
			tl->dir[tl->n++] = w->tasks->dir[i];
	w->ndirs--;
	d->lcore = V4W_NONE;
	tasklist_swap(w, tl);
	return 0;
}

/* Only for unpublished directions: no worker can touch `held` any more. */
void
v4w_dir_release_held(struct v4w_dir *d)
{
	if (d->held_n > 0)
		held_drop(d, true);
}
