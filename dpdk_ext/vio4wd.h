/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * The dpdk_ext API: the only interface between the Python agent and the
 * data plane.  Everything between the CDEF markers is fed verbatim to
 * cffi's cdef(), so it may hold only plain C declarations and integer
 * #defines, and no rte_* type may appear in it.
 */
#ifndef VIO4WD_H
#define VIO4WD_H

#include <stdint.h>

/* V4W_CDEF_BEGIN */

#define V4W_BURST 32
#define V4W_DEVARGS_MAX 512
#define V4W_PATH_MAX 108
#define V4W_NAME_MAX 64
#define V4W_ERRMSG_MAX 512
#define V4W_MAX_QUEUES 32   /* guest queue pairs a relay serves at most */
#define V4W_MAX_BOND 8      /* members of a bonded VF side */

/* Relay flags. */
#define V4W_F_CLIENT 1  /* vhost-user client: the VM side owns the socket */
#define V4W_F_JUMBO 2   /* MTU 9000 (clamped to what the VF can do) */
#define V4W_F_MRGBUF 4  /* offer mergeable rx buffers to the guest */
#define V4W_F_TSO 8     /* offer TSO/checksum offloads to the guest */
#define V4W_F_LINK_FOLLOW 16  /* drop the vhost-user connection while the
			       * VF's link is down: the guest sees its link
			       * go down and up with the VF's */

/* Why a relay is not forwarding (v4w_relay_info.reason). */
#define V4W_REASON_FORWARDING 0
#define V4W_REASON_NO_VF 1          /* no VF attached (socket only) */
#define V4W_REASON_VF_NOT_READY 2   /* VF port not started */
#define V4W_REASON_VF_LINK_DOWN 3
#define V4W_REASON_NO_VM 4          /* nothing connected on the socket */
#define V4W_REASON_GUEST_QUEUES 5   /* VM connected, no queue enabled yet */

/* Directions of a relay. */
#define V4W_VF_TO_VM 0
#define V4W_VM_TO_VF 1

/* No CPU / no NUMA node / no port. */
#define V4W_NONE -1

struct v4w_relay_conf {
	uint32_t id;
	/* VF side: PCI address or any DPDK devargs; empty = no VF yet. */
	char vf_devargs[V4W_DEVARGS_MAX];
	char vhost_path[V4W_PATH_MAX];
	uint32_t flags;
	/* Worker CPU per direction, V4W_NONE = least-loaded worker. */
	int32_t cpu[2];
	/* NUMA node for the mempool before the VM connects, V4W_NONE = VF's. */
	int32_t numa_hint;
	/* Owner, group and mode of a socket the relay creates (server mode);
	 * V4W_NONE leaves what bind() made. */
	int32_t socket_uid;
	int32_t socket_gid;
	int32_t socket_mode;
	/* Guest queue pairs served, 1..V4W_MAX_QUEUES; 0 = the maximum. */
	uint32_t max_queues;
	/* VF queue pairs (RSS); 0 = several where the VF has RSS, else 1. */
	uint32_t vf_queues;
	/* A bond: vf_devargs is its name (net_bonding...), these its 2..8
	 * members (PCI addresses or devargs), bond_mode 0-6 (V4W_NONE: 1,
	 * active-backup). n_members 0: vf_devargs is a single VF. */
	uint32_t n_members;
	int32_t bond_mode;
	char members[V4W_MAX_BOND][V4W_DEVARGS_MAX];
};

/* Per guest queue counters of one direction (monotonic). */
struct v4w_queue_stats {
	uint64_t pkts;      /* VF->VM: put on this guest rx queue;
			     * VM->VF: taken from this guest tx queue */
	uint64_t bytes;
	uint64_t drops;     /* of those packets, dropped for a full far side */
	uint64_t vf_pkts;   /* VF->VM: received on VF rx queue q;
			     * VM->VF: sent on VF tx queue q */
};

/* Monotonic counters of one direction; never reset. */
struct v4w_dir_stats {
	uint64_t rx_pkts;
	uint64_t rx_bytes;
	uint64_t tx_pkts;
	uint64_t tx_bytes;
	uint64_t drop_full_pkts;     /* far side queue full, retries spent */
	uint64_t drop_full_bytes;
	uint64_t drop_noconn_pkts;   /* far side not connected */
	uint64_t drop_noconn_bytes;
	uint64_t drop_bad_pkts;      /* the VF cannot send them (an offload
				      * it lacks; its tx_prepare refused) */
	uint64_t drop_bad_bytes;
	uint64_t retries;            /* rounds spent retrying a held burst */
	uint32_t held;               /* packets held for retry right now */
	int32_t cpu;                 /* worker CPU, V4W_NONE if none */
};

struct v4w_relay_info {
	uint32_t id;
	uint32_t flags;
	int32_t vf_port;        /* DPDK port id or V4W_NONE */
	int32_t vf_ready;       /* VF port started */
	int32_t vf_link_up;     /* the VF's link, as last polled */
	int32_t vm_connected;   /* vhost-user device ready */
	int32_t reason;         /* V4W_REASON_* */
	int32_t numa_node;      /* node of the relay's mempool */
	int32_t vm_numa_node;   /* node the VM's memory is on, or V4W_NONE */
	int32_t numa_hint;      /* node named before the VM came, or V4W_NONE */
	uint32_t mtu;
	uint32_t pool_moves;    /* times the mempool followed the VM */
	uint32_t vm_connects;   /* times a VM came up on the socket */
	uint32_t vm_rxq_mask;   /* guest rx queues enabled (bit = queue pair) */
	uint32_t vm_txq_mask;   /* guest tx queues enabled */
	uint32_t max_queues;
	uint32_t vf_queues;
	uint32_t n_members;     /* bond members, 0 for a single VF */
	int32_t bond_mode;
	int32_t active_member;  /* index of the member a bond sends on */
	char vf_name[V4W_NAME_MAX];
	char vhost_path[V4W_PATH_MAX];
	struct v4w_dir_stats dir[2];
	/* The VF's own counters: what it dropped before the relay saw it. */
	uint64_t vf_rx_missed;  /* its rx ring was full (imissed) */
	uint64_t vf_rx_errors;  /* bad frames, no mbufs */
	uint64_t vf_tx_errors;
	int32_t vm_socket;      /* a vhost-user peer (QEMU) is connected on
				 * the socket, its guest ready or not */
	int32_t socket_down;    /* socket withdrawn while the VF's link is
				 * down (V4W_F_LINK_FOLLOW) */
	uint32_t members_out;   /* bond members taken out (bit = index) for
				 * a down link */
};

/*
 * What the data plane did to a relay on its own (its watch thread), for
 * the control plane to apply to what it believes: after any of these the
 * relay's directions were put on workers again, so its CPUs may differ.
 */
#define V4W_EV_BOND_MEMBER_OUT 1  /* arg: member index (its link went down) */
#define V4W_EV_BOND_MEMBER_IN 2   /* arg: member index (its link is back) */
#define V4W_EV_SOCKET_DOWN 3      /* socket withdrawn: the VF's link is down */
#define V4W_EV_SOCKET_UP 4        /* ...and offered again */
#define V4W_EV_VF_RESTARTED 5     /* a VF left stopped runs again */
#define V4W_EV_POOL_MOVED 6       /* the pool followed the VM (arg: its node
				   * now; unchanged if the move failed) */
#define V4W_EV_LOST 7             /* events were lost (relay: V4W_NONE):
				   * re-read every relay */

struct v4w_event {
	int32_t relay;          /* relay id, or V4W_NONE */
	int32_t kind;           /* V4W_EV_* */
	int32_t arg;
};

/* Load of one worker lcore; monotonic, never reset. */
struct v4w_worker_stats {
	int32_t cpu;
	uint32_t directions;    /* relay directions it polls */
	uint64_t busy_cycles;   /* TSC cycles in rounds that moved packets */
	uint64_t idle_cycles;   /* TSC cycles in empty rounds and naps */
	uint64_t rounds;
	uint64_t naps;          /* times it slept for lack of work */
	uint64_t tsc_hz;
};

struct v4w_limits {
	uint32_t max_ethports;  /* RTE_MAX_ETHPORTS of this DPDK build */
	uint32_t max_relays;    /* RTE_MAX_VHOST_DEVICE */
	uint32_t max_lcores;    /* RTE_MAX_LCORE */
	uint32_t burst;
};

struct v4w_resources {
	uint32_t relays;
	uint32_t ports;         /* ethdev ports allocated */
	uint32_t mempools;      /* relay mempools allocated */
	uint32_t workers;
};

/* argv is built by the agent; returns 0 or -errno. Call once. */
int v4w_eal_init(int argc, char **argv);
/* Remove every relay, stop the workers, release the EAL. */
void v4w_shutdown(void);

int v4w_relay_add(const struct v4w_relay_conf *conf);
int v4w_relay_remove(uint32_t id);
/* Attach the VF described by conf (vf_devargs, members, bond_mode,
 * vf_queues) to existing relay conf->id, which has none; the vhost-user
 * side is not touched.  clear_vf detaches it again. */
int v4w_relay_set_vf(const struct v4w_relay_conf *conf);
int v4w_relay_clear_vf(uint32_t id);
int v4w_relay_get(uint32_t id, struct v4w_relay_info *out);
/* Per guest queue counters; returns how many entries are meaningful. */
int v4w_relay_queue_stats(uint32_t id, int32_t dir,
			  struct v4w_queue_stats *out, uint32_t max);
/* Move one direction to another worker CPU while traffic flows; V4W_NONE
 * unpins it and picks the least-loaded worker. */
int v4w_relay_set_cpu(uint32_t id, int32_t dir, int32_t cpu);
/* Move the relay's mempool to a NUMA node now (what a VM connect does). */
int v4w_relay_set_numa(uint32_t id, int32_t node);
/* Fills ids, returns the number of relays (may exceed max). */
int v4w_relay_list(uint32_t *ids, uint32_t max);
/* Takes up to max events, oldest first; returns how many. */
int v4w_events_read(struct v4w_event *out, uint32_t max);

/* Worker CPUs, returns how many (may exceed max). */
int v4w_workers(int32_t *cpus, uint32_t max);
int v4w_worker_get(int32_t cpu, struct v4w_worker_stats *out);
void v4w_get_limits(struct v4w_limits *out);
void v4w_get_resources(struct v4w_resources *out);

/* DPDK heap use, summed over NUMA nodes. */
struct v4w_memory {
	uint64_t heap_bytes;    /* reserved for the heaps */
	uint64_t alloc_bytes;   /* in use */
};
void v4w_get_memory(struct v4w_memory *out);

/*
 * Placement policy, pure functions (no EAL needed):
 * - the node for a relay's mempool before a VM connects: the hint, else
 *   the VF's node, else the main lcore's;
 * - after a VM connects, the node to move the pool to, or V4W_NONE;
 * - the worker for a direction: the least loaded on `node`, else the
 *   least loaded anywhere; ties go to the lower index.  Returns an index
 *   into worker_node/load, V4W_NONE for no workers.
 */
int32_t v4w_pick_node(int32_t hint, int32_t vf_node, int32_t main_node);
int32_t v4w_move_target(int32_t pool_node, int32_t vm_node);
int32_t v4w_pick_worker(const int32_t *worker_node, const uint32_t *load,
			uint32_t n, int32_t node);

/*
 * The other pure parts (no EAL needed), as the data plane uses them:
 * - the guest queue slot (0..nq-1) a VF->VM frame without an RSS hash goes
 *   to: one flow (addresses and ports; fragments by addresses; non-IP by
 *   MACs and type) always to the same slot;
 * - a held burst's retry: returns 1 when it is given up (dropped as
 *   "queue full": nothing taken for more than `retry` since
 *   *last_progress), else 0 with *last_progress updated;
 * - sizing: VF descriptors per queue for vf_nq queue pairs, mbufs in a
 *   relay's pool, the data room of its mbufs for an MTU.
 */
uint32_t v4w_flow_queue(const uint8_t *frame, uint32_t len, uint32_t nq);
int v4w_held_gives_up(uint64_t *last_progress, uint64_t now, uint32_t sent,
		      uint64_t retry);
uint16_t v4w_desc_for(uint32_t vf_nq);
uint32_t v4w_mbufs_for(int has_port, uint32_t vf_nq, uint32_t lcores);
uint16_t v4w_room_for(uint32_t mtu, int scatter);

/*
 * Hugepage (or --no-huge) heap one relay may take at most: a VF of
 * vf_queues queue pairs (0: as many as a VF with RSS gets), jumbo frames
 * or not, a data plane of `lcores` lcores.  Pure: usable before start.
 */
uint64_t v4w_relay_heap_bytes(uint32_t jumbo, uint32_t vf_queues,
			      uint32_t lcores);

/* Message describing the last failure of a v4w_* call on this thread. */
const char *v4w_last_error(void);

/* V4W_CDEF_END */

#endif /* VIO4WD_H */
