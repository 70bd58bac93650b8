/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * Queue choice for VF->VM frames spread over the guest's queues: pure
 * functions of the frame's bytes (worker.c inlines them; v4w_flow_queue
 * exports them for unit tests without an EAL).
 */
#ifndef V4W_FLOW_H
#define V4W_FLOW_H

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include <rte_ether.h>

/*
 * Flow hash of a frame (when the NIC gave no RSS hash): a hash of the
 * IPv4/IPv6 addresses and TCP/UDP/SCTP ports (addresses only for
 * fragments and other protocols), else of the MAC addresses and type.  Only its consistency
 * matters: one flow, one guest queue, one order.
 */
static inline uint32_t
v4w_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	return (uint32_t)(h ^ (h >> 33));
}

static inline uint32_t
v4w_frame_hash(const uint8_t *p, uint32_t len)
{
	uint32_t off = 14, l4 = 0;
	uint16_t type;
	uint64_t h;
	uint8_t proto = 0;

	if (len < 14)
		return 0;
	type = (uint16_t)(p[12] << 8 | p[13]);
	while ((type == RTE_ETHER_TYPE_VLAN || type == RTE_ETHER_TYPE_QINQ) &&
	       len >= off + 4) {
		type = (uint16_t)(p[off + 2] << 8 | p[off + 3]);
		off += 4;
	}
	if (type == RTE_ETHER_TYPE_IPV4 && len >= off + 20) {
		const uint8_t *ip = p + off;
		uint32_t a, b;

		memcpy(&a, ip + 12, 4);
		memcpy(&b, ip + 16, 4);
		proto = ip[9];
		h = ((uint64_t)a << 32 | b) ^ proto;
		/* Ports only in first fragments' absence: no offset, no MF. */
		if ((ip[6] & 0x3f) == 0 && ip[7] == 0)
			l4 = off + (ip[0] & 0xf) * 4;
	} else if (type == RTE_ETHER_TYPE_IPV6 && len >= off + 40) {
		const uint8_t *ip = p + off;
		uint64_t w[4];

		memcpy(w, ip + 8, 32);
		proto = ip[6];
		h = v4w_mix(w[0] ^ w[1]) ^ ((uint64_t)v4w_mix(w[2] ^ w[3]) << 32) ^ proto;
		l4 = off + 40;
	} else {
		uint64_t a = 0, b = 0;

		memcpy(&a, p, 6);
		memcpy(&b, p + 6, 6);
		return v4w_mix(a ^ (b << 16) ^ type);
	}
	if (l4 != 0 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP ||
			proto == IPPROTO_SCTP) && len >= l4 + 4) {
		uint32_t ports;

		memcpy(&ports, p + l4, 4);
		h ^= (uint64_t)ports << 17;
	}
	return v4w_mix(h);
}

/* Which of `nq` enabled queues a flow with hash `h` goes to: spread
 * evenly by multiplying, not by a modulo. */
static inline uint32_t
v4w_flow_slot(uint32_t h, uint32_t nq)
{
	return (uint32_t)(((uint64_t)h * nq) >> 32);
}

#endif /* V4W_FLOW_H */
