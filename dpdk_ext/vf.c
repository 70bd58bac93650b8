/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * The VF side of a relay: probing and releasing its port (a VF, any
 * DPDK device, or a bond of several), sizing and starting its queues, and
 * watching it (link changes, bond members, restarts that failed).
 */
#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eth_bond.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "v4w_priv.h"

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
	struct v4w_relay *other = v4w_relay_by_vf(name);
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
		v4w_devargs_name(conf->members[i], r->member_name[i],
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

int
v4w_vf_probe(struct v4w_relay *r, const struct v4w_relay_conf *conf)
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

int
v4w_vf_queues_setup(struct v4w_relay *r, int node)
{
	uint16_t nrxd = v4w_desc_for(r->vf_nq), ntxd = nrxd;
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
int
v4w_vf_inspect(struct v4w_relay *r, uint32_t want_nq)
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

int
v4w_vf_configure(struct v4w_relay *r, int node)
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
	return v4w_vf_queues_setup(r, node);
}

void
v4w_vf_detach(struct v4w_relay *r)
{
	__atomic_store_n(&r->vf_ready, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&r->vf_link, 0, __ATOMIC_RELEASE);
	if (r->n_members > 0)
		bond_release(r);
	else if (r->has_port)
		port_release(r->port_id, r->vf_name);
	r->has_port = 0;
}

/* ---- watching ------------------------------------------------------ */

/*
 * Member link watch.  A bond hears of member link changes only from
 * members whose LSC interrupts reach it (or that it polls); some PMDs
 * (net_tap here) report a down link when asked but never interrupt.  So
 * members are asked every watch round: one whose link went down is
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
		v4w_unplace(r);
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
		if (ret == 0) {
			r->member_out[m] = !up;
			v4w_event_post(r, up ? V4W_EV_BOND_MEMBER_IN :
				       V4W_EV_BOND_MEMBER_OUT, m);
		}
		v4w_place(r);
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
		v4w_vhost_detach(r);
		r->vhost_down = 1;
		v4w_event_post(r, V4W_EV_SOCKET_DOWN, 0);
		V4W_LOG(WARNING, "relay %u: vhost-user link held down with "
			"the VF's", r->id);
	} else if (up && r->vhost_down) {
		if (v4w_vhost_attach(r) == 0) {
			r->vhost_down = 0;
			v4w_event_post(r, V4W_EV_SOCKET_UP, 0);
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
	v4w_unplace(r);
	rte_eth_dev_stop(r->port_id);
	if (v4w_vf_queues_setup(r, r->pool_node) == 0) {
		r->vf_restart = 0;
		r->vf_restart_wait = 0;
		v4w_event_post(r, V4W_EV_VF_RESTARTED, 0);
		V4W_LOG(WARNING, "relay %u: VF '%s' restarted", r->id,
			r->vf_name);
	} else {
		r->vf_restart_wait = RTE_MIN(RTE_MAX(r->vf_restart_wait * 2,
						     hz / 10), 10 * hz);
		r->vf_restart_at = now + r->vf_restart_wait;
	}
	v4w_place(r);
}

/* A watch round for the relay's VF side. */
void
v4w_vf_watch(struct v4w_relay *r)
{
	if (!r->has_port)
		return;
	if (r->n_members > 0)
		bond_watch(r);
	if (r->vf_ready)
		link_watch(r);
	if (r->vf_restart)
		vf_restart(r);
}
