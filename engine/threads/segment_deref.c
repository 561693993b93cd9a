/*
 * The segment dereference thread: the engine's housekeeping at priority 18.
 * Each pass (every cfg.balance_tick_ms, or at once when work is posted):
 *   - runs deferred cleanup items other layers posted (anything that must
 *     not run in the poster's context);
 *   - grows paging files that callers who must not block in fallocate
 *     asked to grow (ntmm__segderef_request_grow: the modified page writer
 *     when every file is full), then wakes the modified page writer;
 *   - shrinks paging files whose tails are free, once no growth was asked
 *     for in the last two passes (so a file is not cut and regrown in a
 *     loop), never below the space the commit charge needs (the io layer
 *     checks the commit floor after it lowers the limit, io.h; commit-time
 *     growth happens inline in the committer, which asks nothing of this
 *     thread: without that floor a file grown for committed, not yet
 *     written pages would lose its tail at the next pass and be regrown);
 *   - every NTMM__SEGDEREF_GROWTH_RETRY passes, gives files whose maximum a
 *     full disk lowered their configured maximum back, so growth is tried
 *     again once the disk may have room;
 *   - cache reduction: when a node has kept more than a chunk of Free and
 *     Zeroed frames above its reserve (1/16 of its frames) for two passes
 *     in a row, its wholly free 2 MiB chunks go back to the OS
 *     (ntmm__phys_release_chunks), so the engine's RSS drops.
 *
 * Why the deferred queue is a liburcu wait-free queue (cds_wfcq) rather
 * than a list under a mutex: posters can be fault paths, page writers or
 * teardown code holding their own locks, some at real-time priority; an
 * enqueue that is two atomic operations can neither block them nor join a
 * lock order. There is one dequeuer at a time (this thread, or the
 * destroyer after it stopped), which is what the lock-free __cds_wfcq head
 * requires. The thread dequeues without blocking: an item whose enqueuer
 * is between its two steps is left for the next pass (the enqueuer's wake
 * brings one), so this SCHED_FIFO thread never waits on a preempted
 * poster.
 */
#include "engine.h"

void ntmm__deferred_post(ntmm_engine_t *e, ntmm__deferred_t *item)
{
	ntmm__systhreads_t *st = &e->systhreads;
	cds_wfcq_node_init(&item->node);
	/* release: pairs with the runner's acquire in deferred_drain */
	atomic_store_explicit(&item->fn_pub, item->fn, memory_order_release);
	cds_wfcq_enqueue(&st->dq_head, &st->dq_tail, &item->node);
	/* acquire: pairs with the release in ntmm__systhreads_start */
	if (atomic_load_explicit(&st->segderef.started, memory_order_acquire))
		ntmm__thread_wake(&st->segderef.t);
}

static size_t deferred_drain(ntmm_engine_t *e, bool block)
{
	ntmm__systhreads_t *st = &e->systhreads;
	size_t n = 0;
	for (;;) {
		struct cds_wfcq_node *node;
		if (block) {
			node = __cds_wfcq_dequeue_blocking(&st->dq_head, &st->dq_tail);
		} else {
			node = __cds_wfcq_dequeue_nonblocking(&st->dq_head, &st->dq_tail);
			if (node == CDS_WFCQ_WOULDBLOCK)
				break;
		}
		if (!node)
			break;
		ntmm__deferred_t *item = caa_container_of(node, ntmm__deferred_t, node);
		/* acquire: pairs with the release in ntmm__deferred_post */
		ntmm__deferred_fn fn = atomic_load_explicit(&item->fn_pub, memory_order_acquire);
		fn(e, item);
		n++;
	}
	return n;
}

size_t ntmm__deferred_run(ntmm_engine_t *e)
{
	return deferred_drain(e, true);
}

bool ntmm__segderef_running(ntmm_engine_t *e)
{
	/* acquire: pairs with the release in ntmm__systhreads_start */
	return atomic_load_explicit(&e->systhreads.segderef.started, memory_order_acquire);
}

void ntmm__segderef_request_grow(ntmm_engine_t *e, unsigned index, uint64_t pages)
{
	ntmm__segderef_thread_t *s = &e->systhreads.segderef;
	if (index >= NTMM__PF_MAX_FILES || !pages)
		return;
	atomic_fetch_add_explicit(&s->grow_req[index], pages, memory_order_relaxed);
	/* acquire: pairs with the release in ntmm__systhreads_start */
	if (atomic_load_explicit(&s->started, memory_order_acquire))
		ntmm__thread_wake(&s->t);
}

/* Whether some node holds more Free+Zeroed frames than its reserve plus a
   chunk; *keep gets the reserve. */
static bool chunks_to_spare(ntmm_engine_t *e, size_t *keep)
{
	bool spare = false;
	size_t reserve = 0;
	for (unsigned n = 0; n < e->phys.nnodes; n++) {
		ntmm__node_info_t ni;
		ntmm__phys_node_info(e, n, &ni);
		size_t k =
		    ni.frames / 16 > NTMM__CHUNK_FRAMES ? ni.frames / 16 : NTMM__CHUNK_FRAMES;
		if (k > reserve)
			reserve = k;
		if (ni.free_ + ni.zeroed >= k + NTMM__CHUNK_FRAMES)
			spare = true;
	}
	*keep = reserve;
	return spare;
}

void ntmm__segderef_pass(ntmm__segderef_thread_t *s, bool from_thread)
{
	ntmm_engine_t *e = s->e;
	uint64_t pass = atomic_load_explicit(&s->passes, memory_order_relaxed) + 1;

	size_t ran = deferred_drain(e, !from_thread);
	if (ran)
		atomic_fetch_add_explicit(&s->deferred_run, ran, memory_order_relaxed);

	pthread_mutex_lock(&e->systhreads.quiet);
	bool grew = false;
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		/* relaxed: the count is all that passes between the threads */
		uint64_t want = atomic_exchange_explicit(&s->grow_req[i], 0, memory_order_relaxed);
		if (!want)
			continue;
		s->last_grow_pass = pass;
		if (ntmm__pagefile_grow_upto(&e->io, i, want) == 0) {
			atomic_fetch_add_explicit(&s->grows, 1, memory_order_relaxed);
			grew = true;
		}
	}
	if (grew)
		ntmm__writer_wake(&e->phys); /* the modified page writer waits for room */
	/* growth by anyone (a commit grows the files inline) holds the shrink
	   off too: the space was just wanted */
	uint64_t grows = ntmm__pagefile_grow_count(&e->io);
	if (grows != s->seen_grows) {
		s->seen_grows = grows;
		s->last_grow_pass = pass;
	}
	if (pass % NTMM__SEGDEREF_GROWTH_RETRY == 0)
		ntmm__pagefile_retry_growth(&e->io);
	if (pass - s->last_grow_pass > 2) {
		int64_t r = ntmm__pagefile_shrink(&e->io, ntmm__commit_pagefile_need(e));
		if (r > 0)
			atomic_fetch_add_explicit(&s->shrunk_pages, (uint64_t)r,
			                          memory_order_relaxed);
	}
	size_t keep;
	if (chunks_to_spare(e, &keep)) {
		if (++s->free_streak >= 2) {
			size_t k = ntmm__phys_release_chunks(e, NTMM__ALLOC_NODE_ANY, keep);
			atomic_fetch_add_explicit(&s->chunks_released, k, memory_order_relaxed);
			s->free_streak = 0;
		}
	} else {
		s->free_streak = 0;
	}
	pthread_mutex_unlock(&e->systhreads.quiet);
	atomic_store_explicit(&s->passes, pass, memory_order_relaxed);
}

void ntmm__segment_deref_thread(ntmm__thread_t *self, void *arg)
{
	ntmm__segderef_thread_t *s = arg;
	int64_t tick_ns = (int64_t)s->e->cfg.balance_tick_ms * 1000000;
	ntmm_thread_register(s->e);
	while (ntmm__thread_wait(self, tick_ns))
		ntmm__segderef_pass(s, true);
	ntmm_thread_unregister(s->e);
}
