/* SPDX-License-Identifier: Apache-2.0
 * Copyright(c) 2026 The vio4wd authors
 *
 * EAL start and stop, worker launch, the watch thread, errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_vhost.h>

#include "v4w_priv.h"

RTE_LOG_REGISTER(v4w_logtype, user.vio4wd.relay, INFO);

static __thread char errmsg[V4W_ERRMSG_MAX];
/* What DPDK logged on this thread since v4w_dpdk_said_reset(). */
static __thread char dpdk_said[320];
static int eal_state;   /* 0 never started, 1 running, 2 shut down */

static pthread_t watcher;
static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond = PTHREAD_COND_INITIALIZER;
static int watch_stop;
static int watch_kick;

/* How often the watch thread looks at relays when nobody kicks it. */
#define V4W_WATCH_MS 100

/*
 * Every failure is logged where it happens (callers that cannot return
 * it, the watch thread, log it again with what it means for the relay),
 * with control characters from names given from outside escaped.
 */
int
v4w_fail(int err, const char *fmt, ...)
{
	char line[V4W_ERRMSG_MAX * 4];
	size_t i, o = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	for (i = 0; errmsg[i] != 0 && o + 5 < sizeof(line); i++) {
		unsigned char c = errmsg[i];

		if (c < 0x20 || c == 0x7f)
			o += snprintf(line + o, sizeof(line) - o, "\\x%02x", c);
		else
			line[o++] = c;
	}
	line[o] = 0;
	V4W_LOG(WARNING, "%s", line);
	return err < 0 ? err : -err;
}

const char *
v4w_last_error(void)
{
	return errmsg;
}

void
v4w_dpdk_said_reset(void)
{
	dpdk_said[0] = 0;
}

const char *
v4w_dpdk_said(void)
{
	size_t n = strlen(dpdk_said);

	while (n > 0 && (dpdk_said[n - 1] == ' ' || dpdk_said[n - 1] == ';'))
		dpdk_said[--n] = 0;
	return dpdk_said;
}

/*
 * DPDK's log stream: everything still goes to stderr, and the lines a
 * control call causes are kept so its error can quote what the driver
 * said ("ioctl failed (SIOCGIFINDEX): No such device") instead of a bare
 * errno.
 */
static ssize_t
log_write(void *cookie __rte_unused, const char *buf, size_t size)
{
	size_t used = strlen(dpdk_said), i;
	ssize_t ignored = write(STDERR_FILENO, buf, size);

	(void)ignored;	/* nowhere to report a failing stderr */
	for (i = 0; i < size && used + 3 < sizeof(dpdk_said); i++) {
		char c = buf[i];

		if (c == '\n') {
			if (used > 0 && dpdk_said[used - 1] != ' ') {
				memcpy(dpdk_said + used, "; ", 2);
				used += 2;
			}
			continue;
		}
		dpdk_said[used++] = c;
	}
	dpdk_said[used] = 0;
	return size;
}

static void
log_capture(void)
{
	static cookie_io_functions_t io = { .write = log_write };
	FILE *f = fopencookie(NULL, "w", io);

	if (f != NULL) {
		setvbuf(f, NULL, _IOLBF, 0);
		rte_openlog_stream(f);
	}
}

void
v4w_kick_watch(void)
{
	pthread_mutex_lock(&watch_lock);
	watch_kick = 1;
	pthread_cond_signal(&watch_cond);
	pthread_mutex_unlock(&watch_lock);
}

static void *
watch_main(void *arg __rte_unused)
{
	struct timespec ts;

	pthread_mutex_lock(&watch_lock);
	while (!watch_stop) {
		if (!watch_kick) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += V4W_WATCH_MS * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&watch_cond, &watch_lock, &ts);
		}
		if (watch_stop)
			break;
		watch_kick = 0;
		pthread_mutex_unlock(&watch_lock);
		v4w_watch_relays();
		pthread_mutex_lock(&watch_lock);
	}
	pthread_mutex_unlock(&watch_lock);
	return NULL;
}

static int
workers_start(void)
{
	size_t sz = rte_rcu_qsbr_get_memsize(RTE_MAX_LCORE);
	unsigned int lcore;
	int ret;

	v4w_qsv = rte_zmalloc("v4w_qsv", sz, RTE_CACHE_LINE_SIZE);
	if (v4w_qsv == NULL)
		return v4w_fail(ENOMEM, "cannot allocate the RCU state");
	rte_rcu_qsbr_init(v4w_qsv, RTE_MAX_LCORE);

	RTE_LCORE_FOREACH_WORKER(lcore) {
		struct v4w_worker *w = &v4w_workers_tbl[lcore];

		w->lcore = lcore;
		w->state = V4W_WORKER_STARTING;
		w->tasks = v4w_tasklist_new();
		if (w->tasks == NULL)
			return v4w_fail(ENOMEM, "out of memory for workers");
		ret = rte_eal_remote_launch(v4w_worker_main, w, lcore);
		if (ret != 0)
			return v4w_fail(ret, "cannot launch worker on CPU %u",
					lcore);
	}
	/* A worker is given directions only once it is known to RCU. */
	RTE_LCORE_FOREACH_WORKER(lcore) {
		struct v4w_worker *w = &v4w_workers_tbl[lcore];
		int state;

		while ((state = __atomic_load_n(&w->state, __ATOMIC_ACQUIRE)) ==
		       V4W_WORKER_STARTING)
			rte_delay_us_sleep(100);
		if (state != V4W_WORKER_RUNNING)
			return v4w_fail(EINVAL, "the worker on CPU %u failed to "
					"start (see the log)", lcore);
	}
	return 0;
}

int
v4w_eal_init(int argc, char **argv)
{
	int ret;

	if (eal_state != 0)
		return v4w_fail(EALREADY, "the DPDK EAL can be started only "
				"once per process");
	log_capture();
	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		return v4w_fail(rte_errno ? rte_errno : EINVAL,
				"DPDK EAL initialisation failed: %s "
				"(see the EAL messages above)",
				rte_strerror(rte_errno));
	eal_state = 1;
	if (rte_lcore_count() < 2) {
		v4w_shutdown();
		return v4w_fail(EINVAL, "no worker CPU: the EAL needs at least "
				"one CPU besides the main lcore");
	}
	v4w_retry_tsc = rte_get_tsc_hz() / 1000000 * V4W_RETRY_US;
	ret = workers_start();
	if (ret < 0)
		return ret;
	ret = rte_ctrl_thread_create(&watcher, "v4w-watch", NULL,
				     watch_main, NULL);
	if (ret != 0)
		return v4w_fail(ret, "cannot start the watch thread");
	V4W_LOG(INFO, "data plane up: main lcore %u, %u worker(s), "
		"max %u ports, max %u relays", rte_get_main_lcore(),
		rte_lcore_count() - 1, RTE_MAX_ETHPORTS, RTE_MAX_VHOST_DEVICE);
	return 0;
}

void
v4w_shutdown(void)
{
	unsigned int lcore;

	if (eal_state != 1)
		return;
	eal_state = 2;

	if (watcher != 0) {
		pthread_mutex_lock(&watch_lock);
		watch_stop = 1;
		pthread_cond_signal(&watch_cond);
		pthread_mutex_unlock(&watch_lock);
		pthread_join(watcher, NULL);
	}
	v4w_relay_remove_all();
	RTE_LCORE_FOREACH_WORKER(lcore)
		v4w_workers_tbl[lcore].stop = 1;
	rte_eal_mp_wait_lcore();
	RTE_LCORE_FOREACH_WORKER(lcore) {
		free(v4w_workers_tbl[lcore].tasks);
		v4w_workers_tbl[lcore].tasks = NULL;
	}
	rte_free(v4w_qsv);
	v4w_qsv = NULL;
	rte_eal_cleanup();
}

int
v4w_workers(int32_t *cpus, uint32_t max)
{
	unsigned int lcore;
	uint32_t n = 0;

	if (eal_state != 1)
		return 0;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (n < max)
			cpus[n] = lcore;
		n++;
	}
	return n;
}

int
v4w_worker_get(int32_t cpu, struct v4w_worker_stats *out)
{
	const struct v4w_worker *w;

	if (eal_state != 1)
		return v4w_fail(ENODEV, "the data plane is not running");
	if (!v4w_is_worker(cpu))
		return v4w_fail(EINVAL, "CPU %d is not one of the worker CPUs",
				cpu);
	w = &v4w_workers_tbl[cpu];
	out->cpu = cpu;
	out->directions = __atomic_load_n(&w->ndirs, __ATOMIC_RELAXED);
	out->busy_cycles = __atomic_load_n(&w->busy_cycles, __ATOMIC_RELAXED);
	out->idle_cycles = __atomic_load_n(&w->idle_cycles, __ATOMIC_RELAXED);
	out->rounds = __atomic_load_n(&w->rounds, __ATOMIC_RELAXED);
	out->naps = __atomic_load_n(&w->naps, __ATOMIC_RELAXED);
	out->tsc_hz = rte_get_tsc_hz();
	return 0;
}

void
v4w_get_limits(struct v4w_limits *out)
{
	out->max_ethports = RTE_MAX_ETHPORTS;
	out->max_relays = RTE_MAX_VHOST_DEVICE;
	out->max_lcores = RTE_MAX_LCORE;
	out->burst = V4W_BURST;
}

static void
count_pool(struct rte_mempool *mp, void *arg)
{
	if (strncmp(mp->name, "v4w_", 4) == 0)
		(*(uint32_t *)arg)++;
}

void
v4w_get_resources(struct v4w_resources *out)
{
	memset(out, 0, sizeof(*out));
	if (eal_state != 1)
		return;
	pthread_mutex_lock(&v4w_ctl_lock);
	out->relays = v4w_relay_count_locked();
	out->ports = rte_eth_dev_count_total();
	rte_mempool_walk(count_pool, &out->mempools);
	out->workers = rte_lcore_count() - 1;
	pthread_mutex_unlock(&v4w_ctl_lock);
}

void
v4w_get_memory(struct v4w_memory *out)
{
	struct rte_malloc_socket_stats st;
	unsigned int i;

	memset(out, 0, sizeof(*out));
	if (eal_state != 1)
		return;
	for (i = 0; i < rte_socket_count(); i++) {
		if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i),
						&st) < 0)
			continue;
		out->heap_bytes += st.heap_totalsz_bytes;
		out->alloc_bytes += st.heap_allocsz_bytes;
	}
}

bool
v4w_running(void)
{
	return eal_state == 1;
}
