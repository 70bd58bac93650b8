/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * Worker lcores: each polls the relay directions published to it, in
 * bursts of V4W_BURST.  A worker's task list has room for every direction
 * there can be, so the control thread changes it in place and never needs
 * memory to do so: it appends (a release store of the count), or moves the
 * last entry into a leaving direction's slot and shortens the list, then
 * waits for a quiescent state (RCU).  A worker never sees freed memory,
 * nobody waits with a timeout, and taking a direction off a worker cannot
 * fail.
 */
#define ALLOW_EXPERIMENTAL_API 1
#include <errno.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_vhost.h>
#include <netinet/in.h>
#include <stdbool.h>

#include "flow.h"
#include "v4w_priv.h"

struct rte_rcu_qsbr *v4w_qsv;
struct v4w_worker v4w_workers_tbl[RTE_MAX_LCORE];
uint64_t v4w_retry_tsc;

/*
 * A worker naps only once none of its directions has moved a packet for
 * V4W_IDLE_AFTER_US: decided on time, not on a count of empty rounds, so
 * a VM that sends in bursts (empty rounds between them) never makes a
 * busy worker sleep.  Naps then grow from the shortest to the longest.
 */
#define V4W_IDLE_AFTER_US 10000
#define V4W_IDLE_NAP_MIN_US 8
#define V4W_IDLE_NAP_MAX_US 500

/*
 * A direction with nothing to do costs its worker little: after
 * V4W_DIR_IDLE_POLLS empty polls in a row it is polled every
 * V4W_DIR_IDLE_EVERY-th round only, until it moves a packet again (or
 * holds some to retry).  Busy directions sharing the worker get the
 * rounds; the first packet of an idle one waits V4W_DIR_IDLE_EVERY rounds
 * at most (a round of a worker busy with others takes a few us; one with
 * nothing to do polls every direction after each nap).  Every 8th round
 * left a busy relay among 31 idle ones at 0.89x of alone, every 32nd at
 * 0.96x (bench/many_relays.py).
 */
#define V4W_DIR_IDLE_POLLS 256
#define V4W_DIR_IDLE_EVERY 32

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

/* Slot `k` after `start` of `n` (both below n), without a division. */
static inline uint16_t
slot_after(uint16_t start, uint16_t k, uint16_t n)
{
	uint32_t s = (uint32_t)start + k;

	return s >= n ? s - n : s;
}

/* Where the next round starts among `n`: one further, kept below n
 * (n may have changed since the last round). */
static inline uint16_t
next_start(uint16_t rr, uint16_t n)
{
	return rr + 1 >= n ? 0 : rr + 1;
}

/* Refresh the list of enabled guest queues when the mask changed. */
static inline void
queues_refresh(struct v4w_dir *d, uint32_t mask)
{
	uint32_t m = mask;

	d->qmask = mask;
	d->nq = 0;
	while (m != 0) {
		d->qlist[d->nq++] = __builtin_ctz(m);
		m &= m - 1;
	}
}

/* The NIC's RSS hash when it gave one, else the frame's (flow.h). */
static inline uint32_t
flow_hash(struct rte_mbuf *m)
{
	if (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH)
		return m->hash.rss;
	return v4w_frame_hash(rte_pktmbuf_mtod(m, const uint8_t *),
			      rte_pktmbuf_data_len(m));
}

static inline uint8_t
pick_queue(const struct v4w_dir *d, struct rte_mbuf *m)
{
	if (d->nq == 1)
		return d->qlist[0];
	return d->qlist[v4w_flow_slot(flow_hash(m), d->nq)];
}

/* A fresh burst becomes the held one. */
static inline void
held_set(struct v4w_dir *d, uint16_t n, uint8_t q)
{
	uint32_t bytes = burst_bytes(d->held, n);
	uint16_t i;

	for (i = 0; i < n; i++)
		d->hq[i] = q;
	d->prepared = 0;
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
	uint16_t n = d->held_n, i;

	if (!noconn)
		for (i = 0; i < n; i++)
			CNT_ADD(d->q[d->hq[d->held_off + i]].drops, 1);
	v4w_seq_begin(d);
	if (noconn) {
		CNT_ADD(d->st.drop_noconn_pkts, n);
		CNT_ADD(d->st.drop_noconn_bytes, d->held_bytes);
	} else {
		CNT_ADD(d->st.drop_full_pkts, n);
		CNT_ADD(d->st.drop_full_bytes, d->held_bytes);
	}
	d->held_n = 0;
	d->last_progress = 0;
	v4w_seq_end(d);
	rte_pktmbuf_free_bulk(pkts, n);
}

/*
 * The far side took `sent` packets worth `bytes`; `left` remain held at
 * held[off..].  What is left is retried next round, until the far side
 * has taken nothing for V4W_RETRY_US.
 */
static inline void
held_progress(struct v4w_dir *d, uint16_t sent, uint32_t bytes,
	      uint16_t off, uint16_t left)
{
	uint64_t now;

	v4w_seq_begin(d);
	CNT_ADD(d->st.tx_pkts, sent);
	CNT_ADD(d->st.tx_bytes, bytes);
	d->held_off = off;
	d->held_n = left;
	d->held_bytes -= bytes;
	v4w_seq_end(d);
	if (left == 0) {
		d->last_progress = 0;
		return;
	}
	now = rte_rdtsc();
	if (v4w_retry_gives_up(&d->last_progress, now, sent, v4w_retry_tsc)) {
		held_drop(d, false);
		return;
	}
	/* Not part of the rx == tx + drops + held invariant. */
	CNT_ADD(d->st.retries, 1);
}

/*
 * Give back mbufs whose frames the guest took a copy of.  Those a VF
 * gives are one-segment direct mbufs of the relay's pool that nobody else
 * holds: they go back to the pool in one put.  Anything else (a pool moved
 * meanwhile, chained or attached mbufs) takes the general way.
 */
static inline void
free_copied(struct rte_mbuf **pkts, uint16_t n)
{
	struct rte_mempool *mp = pkts[0]->pool;
	uint16_t i;

	for (i = 0; i < n; i++) {
		const struct rte_mbuf *m = pkts[i];

		if (m->pool != mp || m->nb_segs != 1 ||
		    rte_mbuf_refcnt_read(m) != 1 ||
		    (m->ol_flags & (RTE_MBUF_F_INDIRECT | RTE_MBUF_F_EXTERNAL))) {
			rte_pktmbuf_free_bulk(pkts, n);
			return;
		}
	}
	rte_mempool_put_bulk(mp, (void **)pkts, n);
}

/* Offer the held burst to the guest: one queue, or spread by flow. */
static inline void
to_guest(struct v4w_dir *d, int vid)
{
	struct rte_mbuf **pkts = d->held + d->held_off;
	uint16_t n = d->held_n, sent, i, k, left = 0;
	struct rte_mbuf *grp[V4W_BURST], *keep[V4W_BURST];
	uint8_t keep_q[V4W_BURST];
	uint32_t bytes = 0, b;
	uint32_t present = 0;

	if (d->nq == 1) {
		uint8_t q = d->qlist[0];

		sent = rte_vhost_enqueue_burst(vid, V4W_GUEST_RXQ(q), pkts, n);
		if (sent > 0) {
			bytes = sent == n ? d->held_bytes :
				burst_bytes(pkts, sent);
			CNT_ADD(d->q[q].pkts, sent);
			CNT_ADD(d->q[q].bytes, bytes);
			/* vhost copied them; the mbufs are still ours. */
			free_copied(pkts, sent);
		}
		held_progress(d, sent, bytes, d->held_off + sent, n - sent);
		return;
	}
	/*
	 * Group by queue, keeping each flow's order, and enqueue each group.
	 * Every held packet's queue is an enabled one (re-picked whenever the
	 * enabled set changes), so every packet is in exactly one group.
	 */
	for (i = 0; i < n; i++)
		present |= 1u << d->hq[d->held_off + i];
	for (k = 0; k < d->nq; k++) {
		uint8_t q = d->qlist[k];
		uint16_t g = 0;

		if (!(present & (1u << q)))
			continue;
		for (i = 0; i < n; i++)
			if (d->hq[d->held_off + i] == q)
				grp[g++] = pkts[i];
		sent = rte_vhost_enqueue_burst(vid, V4W_GUEST_RXQ(q), grp, g);
		if (sent > 0) {
			b = burst_bytes(grp, sent);
			bytes += b;
			CNT_ADD(d->q[q].pkts, sent);
			CNT_ADD(d->q[q].bytes, b);
			free_copied(grp, sent);
		}
		for (i = sent; i < g; i++) {
			keep[left] = grp[i];
			keep_q[left++] = q;
		}
	}
	memcpy(d->held, keep, left * sizeof(keep[0]));
	memcpy(d->hq, keep_q, left);
	held_progress(d, n - left, bytes, 0, left);
}

static inline unsigned int
fwd_vf_to_vm(struct v4w_dir *d)
{
	struct v4w_relay *r = d->relay;
	int vid = __atomic_load_n(&r->vid, __ATOMIC_ACQUIRE);
	uint32_t mask = __atomic_load_n(&r->rxq_mask, __ATOMIC_ACQUIRE) &
			r->queue_limit;
	unsigned int work = 0;
	uint16_t n, i, k;

	if (mask != d->qmask) {
		queues_refresh(d, mask);
		/* Held packets follow the new spread. */
		for (i = 0; i < d->held_n && mask != 0; i++)
			d->hq[d->held_off + i] =
				pick_queue(d, d->held[d->held_off + i]);
	}
	if (d->rr >= r->vf_nq)
		d->rr = 0;
	for (k = 0; k < r->vf_nq; k++) {
		if (d->held_n == 0) {
			uint16_t vq = slot_after(d->rr, k, r->vf_nq);

			/* Without a VM (or an enabled guest queue) the VF is
			 * not polled: its ring fills and the NIC drops what
			 * comes, in hardware, counting it as missed.  Taking
			 * frames only to drop them would cost the worker the
			 * time that the relays with a VM need. */
			if (!r->vf_ready || vid < 0 || d->nq == 0)
				break;
			n = rte_eth_rx_burst(r->port_id, vq, d->held,
					     V4W_BURST);
			if (n == 0)
				continue;
			CNT_ADD(d->q[vq].vf_pkts, n);
			held_set(d, n, d->nq ? d->qlist[0] : 0);
			if (d->nq > 1)
				for (i = 0; i < n; i++)
					d->hq[i] = pick_queue(d, d->held[i]);
		}
		work += d->held_n;
		if (vid < 0 || d->nq == 0) {
			/* The VM went (or disabled its queues) while these
			 * were held: nobody to give them to. */
			held_drop(d, true);
			break;
		}
		to_guest(d, vid);
		if (d->held_n != 0)
			break;	/* far side full: retry next round */
	}
	d->rr = next_start(d->rr, r->vf_nq);
	return work;
}

/*
 * Finish in software what the guest left to an offload the VF does not
 * have enabled: an L4 checksum is computed here; a TSO frame cannot be
 * sent (returns -1).  Only a guest that negotiated offloads (and the VF
 * changed under it) sends such frames.
 */
static int
sw_finish(struct rte_mbuf *m, uint64_t txoff)
{
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
	uint32_t l3 = m->l2_len, l4off = m->l2_len + m->l3_len;
	uint16_t *field, sum;
	void *ip;

	if (m->ol_flags & RTE_MBUF_F_TX_TCP_SEG)
		return (txoff & RTE_ETH_TX_OFFLOAD_TCP_TSO) ? 0 : -1;
	if (l4 == RTE_MBUF_F_TX_TCP_CKSUM &&
	    !(txoff & RTE_ETH_TX_OFFLOAD_TCP_CKSUM))
		field = NULL;
	else if (l4 == RTE_MBUF_F_TX_UDP_CKSUM &&
		 !(txoff & RTE_ETH_TX_OFFLOAD_UDP_CKSUM))
		field = NULL;
	else
		return 0;
	/* The headers must be in the first segment, as vhost builds them. */
	if (rte_pktmbuf_data_len(m) < l4off +
	    (l4 == RTE_MBUF_F_TX_TCP_CKSUM ? sizeof(struct rte_tcp_hdr) :
	     sizeof(struct rte_udp_hdr)))
		return -1;
	ip = rte_pktmbuf_mtod_offset(m, void *, l3);
	field = rte_pktmbuf_mtod_offset(m, uint16_t *, l4off +
		(l4 == RTE_MBUF_F_TX_TCP_CKSUM ?
		 offsetof(struct rte_tcp_hdr, cksum) :
		 offsetof(struct rte_udp_hdr, dgram_cksum)));
	*field = 0;
	if (m->ol_flags & RTE_MBUF_F_TX_IPV4)
		sum = rte_ipv4_udptcp_cksum_mbuf(m, ip, l4off);
	else if (m->ol_flags & RTE_MBUF_F_TX_IPV6)
		sum = rte_ipv6_udptcp_cksum_mbuf(m, ip, l4off);
	else
		return -1;
	*field = sum;
	m->ol_flags &= ~RTE_MBUF_F_TX_L4_MASK;
	return 0;
}

/*
 * Before a fresh burst from the guest first goes to the VF: finish what
 * its offloads cannot, then let the VF's driver check and adjust the
 * frames (rte_eth_tx_prepare).  What it refuses is dropped and counted
 * ("VF cannot send"), so the rest of the burst still goes.
 */
static inline void
tx_prepare(struct v4w_dir *d, struct v4w_relay *r, uint16_t q)
{
	struct rte_mbuf **p = d->held + d->held_off;
	uint16_t n = d->held_n, i, k = 0, bad = 0;
	uint32_t bad_bytes = 0;

	if (r->vm_offloads != 0) {
		for (i = 0; i < n; i++) {
			if (sw_finish(p[i], r->vf_txoff) < 0) {
				bad++;
				bad_bytes += rte_pktmbuf_pkt_len(p[i]);
				rte_pktmbuf_free(p[i]);
				continue;
			}
			p[k] = p[i];
			d->hq[d->held_off + k] = d->hq[d->held_off + i];
			k++;
		}
		n = k;
	}
	i = 0;
	while (i < n) {
		i += rte_eth_tx_prepare(r->port_id, q, p + i, n - i);
		if (i == n)
			break;
		bad++;
		bad_bytes += rte_pktmbuf_pkt_len(p[i]);
		rte_pktmbuf_free(p[i]);
		n--;
		memmove(p + i, p + i + 1, (n - i) * sizeof(p[0]));
		memmove(d->hq + d->held_off + i, d->hq + d->held_off + i + 1,
			n - i);
	}
	d->prepared = 1;
	if (bad == 0)
		return;
	v4w_seq_begin(d);
	CNT_ADD(d->st.drop_bad_pkts, bad);
	CNT_ADD(d->st.drop_bad_bytes, bad_bytes);
	d->held_n = n;
	d->held_bytes -= bad_bytes;
	v4w_seq_end(d);
}

static inline unsigned int
fwd_vm_to_vf(struct v4w_dir *d)
{
	struct v4w_relay *r = d->relay;
	int vid = __atomic_load_n(&r->vid, __ATOMIC_ACQUIRE);
	uint32_t mask = __atomic_load_n(&r->txq_mask, __ATOMIC_ACQUIRE) &
			r->queue_limit;
	unsigned int work = 0;
	uint16_t n, sent, k;
	uint8_t q;

	if (mask != d->qmask)
		queues_refresh(d, mask);
	if (d->rr >= d->nq)
		d->rr = 0;
	for (k = 0; k <= d->nq; k++) {
		if (d->held_n == 0) {
			if (vid < 0 || k == d->nq)
				break;
			q = d->qlist[slot_after(d->rr, k, d->nq)];
			n = rte_vhost_dequeue_burst(vid, V4W_GUEST_TXQ(q),
						    r->pool, d->held,
						    V4W_BURST);
			if (n == 0)
				continue;
			held_set(d, n, q);
			CNT_ADD(d->q[q].pkts, n);
			CNT_ADD(d->q[q].bytes, d->held_bytes);
		}
		work += d->held_n;
		if (!r->vf_ready || !__atomic_load_n(&r->vf_link,
						     __ATOMIC_RELAXED)) {
			held_drop(d, true);
			continue;
		}
		/* The PMD owns what it took. */
		q = d->hq[d->held_off];
		if (q >= r->vf_nq)
			q %= r->vf_nq;
		if (!d->prepared) {
			tx_prepare(d, r, q);
			if (d->held_n == 0) {
				d->last_progress = 0;
				continue;
			}
		}
		sent = rte_eth_tx_burst(r->port_id, q, d->held + d->held_off,
					d->held_n);
		CNT_ADD(d->q[q].vf_pkts, sent);
		held_progress(d, sent, sent == d->held_n ? d->held_bytes :
			      burst_bytes(d->held + d->held_off, sent),
			      d->held_off + sent, d->held_n - sent);
		if (d->held_n != 0)
			break;	/* VF full: retry next round */
	}
	d->rr = next_start(d->rr, d->nq);
	return work;
}

/* `napping`: the worker slept before this round; every direction is
 * polled then (a skipped round would cost a whole nap).  `skip`: the
 * rounds the direction still passes (its slot in the task list). */
static inline unsigned int
poll_dir(struct v4w_dir *d, bool napping, uint8_t *skip)
{
	unsigned int work;

	if (!napping && *skip != 0) {
		(*skip)--;
		return 0;
	}
	*skip = 0;
	work = d->dir == V4W_VF_TO_VM ? fwd_vf_to_vm(d) : fwd_vm_to_vf(d);
	if (work != 0 || d->held_n != 0) {
		d->empty = 0;
	} else if (d->empty < V4W_DIR_IDLE_POLLS) {
		d->empty++;
	} else {
		*skip = V4W_DIR_IDLE_EVERY - 1;
	}
	return work;
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
	struct v4w_tasklist *tl = w->tasks;
	unsigned int tid = w->lcore;
	unsigned int nap_us = V4W_IDLE_NAP_MIN_US;
	bool napping = false;
	uint64_t t0, t1, last_work;
	const uint64_t idle_after =
		rte_get_tsc_hz() / 1000000 * V4W_IDLE_AFTER_US;

	/* Naps are short; the default 50 us slack would dominate them. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	if (rte_rcu_qsbr_thread_register(v4w_qsv, tid) != 0) {
		/* Unregistered, it could not be told apart from a quiescent
		 * one: it must not touch a direction. */
		V4W_LOG(ERR, "worker on CPU %u cannot register with RCU; it "
			"will not run", tid);
		__atomic_store_n(&w->state, V4W_WORKER_FAILED, __ATOMIC_RELEASE);
		return -1;
	}
	rte_rcu_qsbr_thread_online(v4w_qsv, tid);
	__atomic_store_n(&w->state, V4W_WORKER_RUNNING, __ATOMIC_RELEASE);

	t0 = last_work = rte_rdtsc();
	while (!w->stop) {
		uint32_t n = __atomic_load_n(&tl->n, __ATOMIC_ACQUIRE);
		unsigned int work = 0;
		uint32_t i;

		for (i = 0; i < n; i++) {
			struct v4w_dir *d = __atomic_load_n(&tl->dir[i],
							    __ATOMIC_RELAXED);

			work += poll_dir(d, napping, &tl->skip[i]);
		}
		/* Nothing from `tl` is referenced past this point. */
		rte_rcu_qsbr_quiescent(v4w_qsv, tid);

		CNT_ADD(w->rounds, 1);
		t1 = rte_rdtsc();
		if (work != 0) {
			CNT_ADD(w->busy_cycles, t1 - t0);
			t0 = last_work = t1;
			nap_us = V4W_IDLE_NAP_MIN_US;
			napping = false;
			continue;
		}
		if (t1 - last_work < idle_after) {
			rte_pause();
		} else {
			/* Offline while napping: publishers need not wait. */
			rte_rcu_qsbr_thread_offline(v4w_qsv, tid);
			nap(nap_us);
			napping = true;
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
	       (unsigned int)lcore != rte_get_main_lcore() &&
	       __atomic_load_n(&v4w_workers_tbl[lcore].state,
			       __ATOMIC_ACQUIRE) == V4W_WORKER_RUNNING;
}

/* Fewest directions wins; workers on `node` first; ties go to the lower CPU. */
int
v4w_least_loaded_worker(int node)
{
	int32_t nodes[RTE_MAX_LCORE], lcores[RTE_MAX_LCORE];
	uint32_t load[RTE_MAX_LCORE], n = 0;
	unsigned int lcore;
	int32_t i;

	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (!v4w_is_worker(lcore))
			continue;
		lcores[n] = lcore;
		nodes[n] = rte_lcore_to_socket_id(lcore);
		load[n++] = v4w_workers_tbl[lcore].ndirs;
	}
	i = v4w_pick_worker(nodes, load, n, node);
	return i == V4W_NONE ? V4W_NONE : lcores[i];
}

struct v4w_tasklist *
v4w_tasklist_new(void)
{
	return calloc(1, sizeof(struct v4w_tasklist));
}

int
v4w_publish(struct v4w_dir *d, int lcore)
{
	struct v4w_worker *w = &v4w_workers_tbl[lcore];
	struct v4w_tasklist *tl = w->tasks;

	if (!v4w_is_worker(lcore))
		return v4w_fail(EINVAL, "CPU %d is not a running worker",
				lcore);
	/* Cannot happen: the list has room for every direction of every
	 * relay, and relays are counted before one is made. */
	RTE_VERIFY(tl->n < RTE_DIM(tl->dir));
	d->lcore = lcore;
	w->ndirs++;
	tl->skip[tl->n] = 0;	/* the worker reads it once it sees n grow */
	__atomic_store_n(&tl->dir[tl->n], d, __ATOMIC_RELAXED);
	__atomic_store_n(&tl->n, tl->n + 1, __ATOMIC_RELEASE);
	return 0;
}

void
v4w_unpublish(struct v4w_dir *d)
{
	struct v4w_worker *w;
	struct v4w_tasklist *tl;
	uint32_t i, last;

	if (d->lcore == V4W_NONE)
		return;
	w = &v4w_workers_tbl[d->lcore];
	tl = w->tasks;
	last = tl->n - 1;
	for (i = 0; i < tl->n; i++)
		if (tl->dir[i] == d)
			break;
	RTE_VERIFY(i < tl->n);
	/* A worker in the middle of a round may see the moved entry twice
	 * or not at all this round: harmless, it owns both. */
	if (i != last)
		__atomic_store_n(&tl->dir[i], tl->dir[last], __ATOMIC_RELAXED);
	__atomic_store_n(&tl->n, last, __ATOMIC_RELEASE);
	w->ndirs--;
	d->lcore = V4W_NONE;
	v4w_sync();
}

/* Only for unpublished directions: no worker can touch `held` any more. */
void
v4w_dir_release_held(struct v4w_dir *d)
{
	if (d->held_n > 0)
		held_drop(d, true);
}

/* ---- the pure parts, for unit tests (see flow.h, v4w_priv.h) -------- */

uint32_t
v4w_flow_queue(const uint8_t *frame, uint32_t len, uint32_t nq)
{
	return v4w_flow_slot(v4w_frame_hash(frame, len), nq);
}

int
v4w_held_gives_up(uint64_t *last_progress, uint64_t now, uint32_t sent,
		  uint64_t retry)
{
	return v4w_retry_gives_up(last_progress, now, sent, retry);
}
