/* SPDX-License-Identifier: Apache-2.0
 * Cache-line ping-pong between two CPUs: prints nanoseconds per one-way
 * hand-off.  The benchmarks tag each measurement window with it, because
 * on these VMs the host moves vCPUs and the same test runs in a fast or a
 * slow mode (~55 ns vs ~300 ns here).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile uint64_t line __attribute__((aligned(64)));
static long rounds;

static void
pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *
pong(void *arg)
{
	long i;

	pin((int)(intptr_t)arg);
	for (i = 0; i < rounds; i++) {
		while (line != 2 * (uint64_t)i + 1)
			;
		line = 2 * (uint64_t)i + 2;
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	struct timespec t0, t1;
	pthread_t t;
	long i;
	double ns;

	if (argc != 4) {
		fprintf(stderr, "usage: pingpong CPU_A CPU_B ROUNDS\n");
		return 2;
	}
	rounds = atol(argv[3]);
	pin(atoi(argv[1]));
	pthread_create(&t, NULL, pong, (void *)(intptr_t)atoi(argv[2]));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < rounds; i++) {
		line = 2 * (uint64_t)i + 1;
		while (line != 2 * (uint64_t)i + 2)
			;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(t, NULL);
	ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("%.1f\n", ns / rounds / 2);
	return 0;
}
