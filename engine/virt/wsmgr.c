/*
 * The working set manager (NTMM-REFERENCE.md §6), run by the balance set
 * manager thread on its tick and on the low-memory event, plus the process
 * swap primitives the swapper thread uses and the per-process standby
 * priority. It drives wsl.c's primitives (aging, the batched trim) and
 * decides which sets to age and trim and how far.
 *
 * Policy, with marks scaled to the pool (ntmm__wsm_marks):
 *   available = ntmm__phys_available (Zeroed + Free + Standby, per-CPU
 *   caches included, + frames of uncommitted chunks: the pool can still
 *   grow into those), modified = the Modified list.
 *   - available + modified ≥ plenty: only sets above their maximum are
 *     touched (aged, then trimmed to the maximum).
 *   - below plenty: every set is aged (Accessed → age 0 and cleared, else
 *     age++ up to 7, the age field's limit); sets above their maximum are
 *     trimmed to it, oldest pages first, any age.
 *   - available < minimum as well (pressure): sets above their minimum are
 *     trimmed toward it, oldest first, taking only pages not accessed since
 *     the previous aging (age ≥ 1), so recently used pages survive.
 *   Pinned pages are never trimmed (the trim primitive skips them).
 * "Oldest first" uses the age histogram the aging pass returns: one trim
 * call takes every page older than the cut-off age, a second takes what is
 * still needed at the cut-off age — at most two trims per set (each its
 * own grace period when called alone; ntmm__wsm_run batches them all).
 *
 * Process iteration (ntmm__wsm_for_each) does not hold e->virt.lock while
 * it works on a process: trimming waits for grace periods, and a thread in
 * an access section may be waiting for virt.lock (ntmm_stats_get,
 * ntmm_process_create). Each visited process holds a `users` reference
 * instead (the virtual layer's `users` protocol, virt.h), so destroy waits
 * for the visit to end.
 *
 * Swapping (NTMM-REFERENCE.md §6). The swapper thread out-swaps an idle
 * process with ntmm__wsm_swap_out: the addresses of its working set are
 * recorded first (ntmm__wsm_rec_t: at most min(ws maximum, 64 Ki) pages,
 * youngest first, sorted), then the whole unpinned set is trimmed like any
 * trim (Standby/Modified, and on to the paging file with the modified
 * page writer). The process's next fault calls ntmm__wsm_swap_in, which
 * only elects the one in-swapper, queues the process on e->virt.inswap
 * and signals the swapper — no I/O and no waiting on the fault path. The
 * swapper thread then claims the process (a `users` reference) and walks
 * the record through the fault path itself (read faults: transition pages
 * come back from Standby/Modified, paging-file pages are read back with
 * the hard fault's clustering, ascending addresses making the clusters
 * long), a few pages and at most one read per step, and stops early —
 * dropping the rest of the record — once available memory is below the
 * minimum mark, the process is being destroyed or out-swapped again, a
 * fault fails, or the thread is stopping. Those faults count as the
 * process's faults (they are: the swapper takes them on its behalf), and
 * the pages as swap_in_pages. Without a swapper thread nothing is recorded
 * and the pages come back one fault at a time, as they are touched.
 *
 * Inline reclaim (ntmm__wsm_reclaim): a fault that finds no frame runs the
 * same mechanisms on its own thread — the modified page writer's batch
 * (virt/paging.c) and the batched trim, oldest pages first by the ages the
 * last aging left, each set its share by size, one grace period for all —
 * so the engine pages without its system threads, and with them no fault
 * depends on their timing. It never ages (that would disturb the balance
 * set manager's cadence) and runs one reclaimer at a time.
 *
 * This is the engine's only working set manager: wsl.c supplies the
 * mechanisms (aging with a histogram, the batched trim), and the policy —
 * the marks, the plenty gate (no aging at all while memory is plentiful
 * and a set is within its maximum), the exact oldest-first order from the
 * aging histogram, and noting accesses for the swapper's idle test — lives
 * here. Tests that need pressure on one process regardless of the pool's
 * state call ntmm__wsm_age and ntmm__wsm_trim_oldest directly.
 */
#include "virt/virt.h"
#include "engine.h"
#include "section/section.h"
#include "sync/clock.h"

#include <stdlib.h>

void ntmm__wsm_process_init(ntmm_process_t *p)
{
	atomic_store_explicit(&p->wsm.page_priority, NTMM__PFN_PRIO_DEFAULT, memory_order_relaxed);
	atomic_store_explicit(&p->wsm.swapped_out, 0, memory_order_relaxed);
	atomic_store_explicit(&p->wsm.swap_outs, 0, memory_order_relaxed);
	atomic_store_explicit(&p->wsm.swap_ins, 0, memory_order_relaxed);
	atomic_store_explicit(&p->wsm.active_ns, ntmm__now_ns(), memory_order_relaxed);
	p->wsm.seen_faults = 0;
	atomic_store_explicit(&p->wsm.rec, NULL, memory_order_relaxed);
	atomic_store_explicit(&p->wsm.swap_in_pages, 0, memory_order_relaxed);
	atomic_store_explicit(&p->wsm.dying, 0, memory_order_relaxed);
	p->wsm.queued = false;
	p->wsm.qprev = p->wsm.qnext = NULL;
}

void ntmm__wsm_marks(ntmm_engine_t *e, ntmm__wsm_marks_t *out)
{
	/* 1/32 and 1/8 of the pool: on the 256 MiB default pool 2048 and 8192
	   frames. Windows uses fixed page counts sized for gigabytes. */
	size_t n = e->phys.nframes;
	size_t min = n / 32 > 64 ? n / 32 : 64;
	if (min > n / 4)
		min = n / 4;
	size_t plenty = n / 8 > 2 * min ? n / 8 : 2 * min;
	out->minimum = min;
	out->plenty = plenty;
}

void ntmm__wsm_gauges(ntmm_engine_t *e, size_t *available, size_t *modified)
{
	size_t mod = 0;
	for (unsigned n = 0; n < e->phys.nnodes; n++)
		/* relaxed: a gauge */
		mod += atomic_load_explicit(&e->phys.nodes[n].modified_pub, memory_order_relaxed);
	*available = ntmm__phys_available(e); /* the allocator's own definition */
	*modified = mod;
}

uint64_t ntmm__wsm_faults(ntmm_process_t *p)
{
	uint64_t f = 0;
	for (unsigned c = 0; c <= p->ncpu; c++) /* with the shared slot */
		f += atomic_load_explicit(&p->cpu[c].page_faults, memory_order_relaxed);
	return f;
}

size_t ntmm__wsm_age(ntmm_process_t *p, size_t hist[8])
{
	size_t accessed = ntmm__ws_age_hist(p, hist);
	if (accessed)
		atomic_store_explicit(&p->wsm.active_ns, ntmm__now_ns(), memory_order_relaxed);
	return accessed;
}

/* One trim: its own episode, or into the caller's batch (trim_lock held,
   which ntmm__ws_trim_into asserts). */
static size_t trim(ntmm_process_t *p, size_t pages, unsigned min_age, ntmm__shootdown_t *s)
{
	return s ? ntmm__ws_trim_into(p, pages, min_age, s) : ntmm__ws_trim(p, pages, min_age);
}

size_t ntmm__wsm_trim_oldest(ntmm_process_t *p, const size_t hist[8], size_t pages,
                             unsigned min_age, ntmm__shootdown_t *s)
{
	if (s) /* into the caller's batch: its trim_lock */
		ntmm__assert_mutex_held(&p->trim_lock);
	if (!pages || min_age > 7)
		return 0;
	/* cut-off age a: the pages older than a are fewer than `pages` */
	size_t older = 0;
	unsigned a = 7;
	while (a > min_age && older + hist[a] < pages)
		older += hist[a--];
	size_t done = 0;
	if (older)
		done += trim(p, older, a + 1, s);
	if (done < pages)
		done += trim(p, pages - done, a, s);
	return done;
}

/* The processes live now, each holding a `users` reference (so destroy
   waits for us); e->virt.lock is held only while the list is made. */
static ntmm_process_t **visit_begin(ntmm_engine_t *e, size_t *count)
{
	ntmm__virt_t *v = &e->virt;
	pthread_mutex_lock(&v->lock);
	size_t n = 0, cap = v->nprocesses;
	ntmm_process_t **list = malloc(sizeof(*list) * (cap ? cap : 1));
	if (list)
		for (struct cds_list_head *pos_ = v->processes.next; pos_ != &v->processes;
		     pos_ = pos_->next) {
			ntmm_process_t *p = cds_list_entry(pos_, ntmm_process_t, link);
			/* relaxed: the list lock orders it against destroy's unlink */
			atomic_fetch_add_explicit(&p->users, 1, memory_order_relaxed);
			list[n++] = p;
		}
	pthread_mutex_unlock(&v->lock);
	*count = n;
	return list;
}

static void visit_end(ntmm_engine_t *e, ntmm_process_t **list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		/* release: our work on the process happens before destroy's
		   teardown (it loads users with acquire) */
		if (atomic_fetch_sub_explicit(&list[i]->users, 1, memory_order_release) == 1)
			ntmm__event_signal(&e->virt.users_done); /* not list[i]: may be freed */
	}
	free(list);
}

void ntmm__wsm_for_each(ntmm_engine_t *e, void (*fn)(ntmm_process_t *p, void *arg), void *arg)
{
	size_t n;
	ntmm_process_t **list = visit_begin(e, &n);
	for (size_t i = 0; i < n; i++)
		fn(list[i], arg);
	visit_end(e, list, n);
}

/* Ages and trims one process as the policy says, into the pass's batch s.
   Returns whether it took p->trim_lock (held until the pass's grace
   period: one episode per process per pass, as virt.h requires). */
static bool run_one(ntmm_process_t *p, bool plenty, bool pressure, ntmm__wsm_result_t *r,
                    ntmm__shootdown_t *s)
{
	pthread_mutex_lock(&p->trim_lock);
	ntmm__pushlock_acquire_shared(&p->as_lock); /* the limits' lock */
	size_t min = p->wsl.min_pages, max = p->wsl.max_pages;
	ntmm__pushlock_release_shared(&p->as_lock);
	if (plenty && ntmm__ws_pages(p) <= max) {
		pthread_mutex_unlock(&p->trim_lock);
		return false;
	}
	size_t hist[8];
	ntmm__wsm_age(p, hist);
	r->processes_aged++;
	size_t ws = 0;
	for (unsigned a = 0; a < 8; a++)
		ws += hist[a];
	if (ws > max) {
		size_t t = ntmm__wsm_trim_oldest(p, hist, ws - max, 0, s);
		r->trimmed_max += t;
		/* the oldest went first: take them off the histogram */
		size_t left = t;
		for (unsigned a = 8; a-- > 0 && left;) {
			size_t k = hist[a] < left ? hist[a] : left;
			hist[a] -= k;
			left -= k;
		}
		ws -= t;
	}
	if (pressure && ws > min)
		r->trimmed_pressure += ntmm__wsm_trim_oldest(p, hist, ws - min, 1, s);
	return true;
}

/* Ends a pass over the visited processes: one grace period for every
   trim of the pass, then the trim locks taken (locked[i]) are let go. */
static void pass_end(ntmm_engine_t *e, ntmm__shootdown_t *s, ntmm_process_t **list, bool *locked,
                     size_t n)
{
	ntmm__shootdown_finish(e, s);
	for (size_t i = 0; i < n && locked; i++)
		if (locked[i])
			pthread_mutex_unlock(&list[i]->trim_lock);
	free(locked);
	visit_end(e, list, n);
}

/* One pass, one grace period: every set's trimmed frames go into one batch
   released after a single synchronize_rcu at the end. A grace period per
   trim cost far more than the trims under load: with more access-section
   threads than CPUs some reader is usually preempted inside its section,
   and while liburcu's memb flavour waits for it, each other reader leaving
   its section wakes the waiter into another membarrier (hundreds of IPIs
   per grace period, landing on the faulting threads). The trim_locks taken
   are held until then; fault paths never take a trim_lock, and no other
   thread holds two, so holding several cannot deadlock. */
void ntmm__wsm_run(ntmm_engine_t *e, ntmm__wsm_result_t *out)
{
	ntmm__wsm_result_t r = {0};
	ntmm__wsm_marks_t m;
	ntmm__wsm_marks(e, &m);
	ntmm__wsm_gauges(e, &r.available, &r.modified);
	bool pressure = r.available < m.minimum;
	bool plenty = r.available + r.modified >= m.plenty;

	size_t n;
	ntmm_process_t **list = visit_begin(e, &n);
	bool *locked = calloc(n ? n : 1, sizeof(*locked));
	ntmm__shootdown_t s = {0};
	for (size_t i = 0; i < n && locked; i++)
		locked[i] = run_one(list[i], plenty, pressure, &r, &s);
	pass_end(e, &s, list, locked, n);
	if (out)
		*out = r;
}

/* --------------------------------------------------------- inline reclaim */

/* How long a reclaim that cannot take the reclaim lock (its caller is in a
   read-side section) waits for frames on the paging layer's event. */
#define RECLAIM_WAIT_NS (10 * 1000 * 1000)

/* Pages one inline reclaim aims to make available: a write batch, or 1/64
   of the pool when that is more. */
static size_t reclaim_want(ntmm_engine_t *e)
{
	size_t n = e->phys.nframes / 64;
	return n > NTMM__WRITE_BATCH ? n : NTMM__WRITE_BATCH;
}

/* Writes Modified pages on this thread until `want` are written, the list
   is empty or no slot is left. Growth inline only without the system
   threads (with them the real-time writer owns growth requests). */
static size_t reclaim_write(ntmm_engine_t *e, size_t want)
{
	bool grow = !atomic_load_explicit(&e->virt.paging.writer, memory_order_relaxed);
	size_t done = 0;
	while (done < want) {
		int err;
		size_t k = ntmm__paging_write_batch(e, NTMM__WRITE_BATCH, grow, &err, NULL);
		done += k;
		if (!k)
			break;
	}
	/* dirty pages of mapped files go to their files (the mapped page
	   writer's batch, run here as the modified page writer's is) */
	while (done < want) {
		size_t k = ntmm__section_write_batch(e, want - done);
		done += k;
		if (!k)
			break;
	}
	return done;
}

/* Trims about `want` pages from the working sets, each set its share by
   size, oldest first by the ages the last aging left (none without the
   balance set manager: then in working-set list order, oldest entries
   first), into one batch with one grace period. Caller outside any
   read-side section. */
static size_t reclaim_trim(ntmm_engine_t *e, size_t want)
{
	size_t n;
	ntmm_process_t **list = visit_begin(e, &n);
	bool *locked = list ? calloc(n ? n : 1, sizeof(*locked)) : NULL;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += ntmm__ws_pages(list[i]);
	ntmm__shootdown_t s = {0};
	size_t trimmed = 0;
	for (size_t i = 0; i < n && locked && total && trimmed < want; i++) {
		ntmm_process_t *p = list[i];
		uint64_t ws = ntmm__ws_pages(p);
		if (!ws)
			continue;
		size_t share = (size_t)((want * ws + total - 1) / total);
		size_t hist[8];
		pthread_mutex_lock(&p->trim_lock); /* held until the batch's grace period */
		locked[i] = true;
		ntmm__ws_age_peek(p, hist);
		trimmed += ntmm__wsm_trim_oldest(p, hist, share, 0, &s);
	}
	pass_end(e, &s, list, locked, n);
	return trimmed;
}

size_t ntmm__wsm_reclaim(ntmm_engine_t *e, bool can_trim)
{
	size_t want = reclaim_want(e), got = 0;
	/* One reclaimer at a time: a fault that waited here finds the frames
	   the one before it made available. A caller still inside its
	   read-side section must not wait: the holder may be in a grace
	   period, which waits for that section — it waits for frames on the
	   paging layer's event instead, bounded. */
	if (!can_trim) {
		if (pthread_mutex_trylock(&e->virt.reclaim) != 0)
			return ntmm__paging_wait_avail(e, RECLAIM_WAIT_NS) ? 1 : 0;
	} else {
		pthread_mutex_lock(&e->virt.reclaim);
	}
	ntmm__phys_flush_caches(e, NTMM__ALLOC_NODE_ANY);
	size_t avail = ntmm__phys_available(e);
	if (avail > 0) {
		/* frames came back meanwhile (another reclaim, a trim, a free):
		   the fault retries with them */
		pthread_mutex_unlock(&e->virt.reclaim);
		return avail;
	}
	/* dirty pages already off the working sets first: no grace period */
	got += reclaim_write(e, want);
	if (got < want && can_trim) {
		size_t t = reclaim_trim(e, want - got);
		NTMM__STAT_ADD(&e->stats, reclaim_trimmed, t);
		got += t;
		/* what the trim found dirty is Modified now */
		got += reclaim_write(e, want);
	}
	NTMM__STAT_ADD(&e->stats, reclaims, 1);
	pthread_mutex_unlock(&e->virt.reclaim);
	return got ? got : ntmm__phys_available(e);
}

/* --------------------------------------------------------------- swapping */

static ntmm__wsm_inswap_t *inswap_q(ntmm_engine_t *e)
{
	return &e->virt.inswap;
}

static int cmp_va(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The record of p's working set as it is now (see ntmm__wsm_rec_t), or
   NULL if it is empty or host memory is short (the in-swap is then only
   the faults, as without a swapper). */
static ntmm__wsm_rec_t *record(ntmm_process_t *p)
{
	ntmm__pushlock_acquire_shared(&p->as_lock); /* the limits' lock */
	size_t cap = p->wsl.max_pages;
	ntmm__pushlock_release_shared(&p->as_lock);
	if (cap > NTMM__WSM_INSWAP_MAX)
		cap = NTMM__WSM_INSWAP_MAX;
	ntmm__wsl_t *w = &p->wsl;
	ntmm__ws_lock_exclusive(p); /* no entry moves while we read them */
	uint32_t n = atomic_load_explicit(&w->next, memory_order_relaxed);
	size_t hist[8] = {0}, live = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t ent = atomic_load_explicit(ntmm__wsl_entry(w, i), memory_order_relaxed);
		if (ent) {
			hist[ent & NTMM__WSLE_AGE_MASK]++;
			live++;
		}
	}
	size_t want = live < cap ? live : cap;
	ntmm__wsm_rec_t *rec = want ? malloc(sizeof(*rec) + want * sizeof(rec->va[0])) : NULL;
	if (rec) {
		/* youngest first: ages below `a` whole, then `part` of age a */
		unsigned a = 0;
		size_t taken = 0;
		while (a < 8 && taken + hist[a] <= want)
			taken += hist[a++];
		size_t part = want - taken, k = 0;
		for (uint32_t i = 0; i < n && k < want; i++) {
			uint64_t ent =
			    atomic_load_explicit(ntmm__wsl_entry(w, i), memory_order_relaxed);
			unsigned age = (unsigned)(ent & NTMM__WSLE_AGE_MASK);
			if (!ent || age > a || (age == a && !part))
				continue;
			if (age == a)
				part--;
			rec->va[k++] = ent & ~NTMM__WSLE_AGE_MASK;
		}
		rec->n = k;
	}
	ntmm__ws_unlock_exclusive(p);
	if (rec)
		qsort(rec->va, rec->n, sizeof(rec->va[0]), cmp_va);
	return rec;
}

/* Replaces p's record by rec (either may be NULL) and frees the old one. */
static void record_swap(ntmm_process_t *p, ntmm__wsm_rec_t *rec)
{
	/* acq_rel: release publishes rec's contents to the exchanger that
	   takes it; acquire makes the old one ours to free */
	free(atomic_exchange_explicit(&p->wsm.rec, rec, memory_order_acq_rel));
}

static ntmm__wsm_rec_t *record_take(ntmm_process_t *p)
{
	/* acq_rel: pairs with record_swap's release */
	return atomic_exchange_explicit(&p->wsm.rec, NULL, memory_order_acq_rel);
}

/* Off the queue (q->lock held exclusive). */
static void unqueue_locked(ntmm__wsm_inswap_t *q, ntmm_process_t *p)
{
	ntmm__assert_pushlock_held(&q->lock, NTMM__HELD_EXCLUSIVE);
	ntmm__wsm_proc_t *w = &p->wsm;
	if (!w->queued)
		return;
	if (w->qprev)
		w->qprev->wsm.qnext = w->qnext;
	else
		q->head = w->qnext;
	if (w->qnext)
		w->qnext->wsm.qprev = w->qprev;
	else
		q->tail = w->qprev;
	w->qprev = w->qnext = NULL;
	w->queued = false;
}

size_t ntmm__wsm_swap_out(ntmm_process_t *p)
{
	ntmm__wsm_inswap_t *q = inswap_q(p->e);
	/* relaxed: only whether a swapper runs now, to skip a record nobody
	   would use; a wrong guess costs a record dropped at the in-swap, or
	   an in-swap by faults alone */
	bool swapper = atomic_load_explicit(&q->wake, memory_order_relaxed) != NULL;
	/* the record goes in before the flag: a fault that sees the flag
	   queues an in-swap that must find it */
	record_swap(p, swapper ? record(p) : NULL);
	/* release: pairs with swap_in's acquire exchange, so the fault that
	   clears the flag also sees the record published just before (the
	   fault tests the flag before it loads any PTE, so the trim's own
	   ordering does not cover this) */
	atomic_store_explicit(&p->wsm.swapped_out, 1, memory_order_release);
	size_t n = ntmm__ws_trim(p, SIZE_MAX, 0);
	atomic_fetch_add_explicit(&p->wsm.swap_outs, 1, memory_order_relaxed);
	NTMM__STAT_ADD(&p->e->stats, swap_outs, 1);
	return n;
}

void ntmm__wsm_swap_in(ntmm_process_t *p)
{
	/* acquire: elects the one in-swapper and pairs with swap_out's release
	   store, so the record it published is visible below */
	if (!atomic_exchange_explicit(&p->wsm.swapped_out, 0, memory_order_acquire))
		return;
	atomic_fetch_add_explicit(&p->wsm.swap_ins, 1, memory_order_relaxed);
	atomic_store_explicit(&p->wsm.active_ns, ntmm__now_ns(), memory_order_relaxed);
	NTMM__STAT_ADD(&p->e->stats, swap_ins, 1);
	/* relaxed: a hint; the claimer takes the record by exchange */
	if (!atomic_load_explicit(&p->wsm.rec, memory_order_relaxed))
		return; /* nothing recorded: the faults bring the pages back */
	ntmm__wsm_inswap_t *q = inswap_q(p->e);
	ntmm__pushlock_acquire_exclusive(&q->lock);
	/* relaxed: written under the lock we hold */
	ntmm__event_t *wake = atomic_load_explicit(&q->wake, memory_order_relaxed);
	bool queue =
	    wake && !p->wsm.queued && !atomic_load_explicit(&p->wsm.dying, memory_order_relaxed);
	if (queue) {
		p->wsm.qprev = q->tail;
		p->wsm.qnext = NULL;
		if (q->tail)
			q->tail->wsm.qnext = p;
		else
			q->head = p;
		q->tail = p;
		p->wsm.queued = true;
	}
	ntmm__pushlock_release_exclusive(&q->lock);
	if (!wake)
		record_swap(p, NULL); /* no swapper to use it */
	/* the event lives as long as the engine; a signal after detach only
	   makes the stopped thread's next wait return */
	if (queue)
		ntmm__event_signal(wake);
}

void ntmm__wsm_inswap_attach(ntmm_engine_t *e, ntmm__event_t *wake)
{
	ntmm__wsm_inswap_t *q = inswap_q(e);
	ntmm__pushlock_acquire_exclusive(&q->lock);
	atomic_store_explicit(&q->wake, wake, memory_order_relaxed); /* under the lock */
	ntmm__pushlock_release_exclusive(&q->lock);
}

void ntmm__wsm_inswap_detach(ntmm_engine_t *e)
{
	ntmm__wsm_inswap_t *q = inswap_q(e);
	ntmm__pushlock_acquire_exclusive(&q->lock);
	atomic_store_explicit(&q->wake, NULL, memory_order_relaxed); /* under the lock */
	while (q->head) {
		ntmm_process_t *p = q->head;
		unqueue_locked(q, p);
		/* queued processes are alive: destroy dequeues under this lock */
		record_swap(p, NULL);
	}
	ntmm__pushlock_release_exclusive(&q->lock);
}

bool ntmm__wsm_inswap_claim(ntmm_engine_t *e, ntmm__wsm_inswap_job_t *job)
{
	ntmm__wsm_inswap_t *q = inswap_q(e);
	ntmm__pushlock_acquire_exclusive(&q->lock);
	ntmm_process_t *p = q->head;
	if (p) {
		unqueue_locked(q, p);
		/* relaxed: the queue lock orders it before destroy's dequeue
		   attempt, after which destroy reads users with acquire */
		atomic_fetch_add_explicit(&p->users, 1, memory_order_relaxed);
	}
	ntmm__pushlock_release_exclusive(&q->lock);
	if (!p)
		return false;
	*job = (ntmm__wsm_inswap_job_t){.p = p, .rec = record_take(p)};
	return true;
}

/* Whether the VAD still lets the in-swap touch the committed page at va:
   readable and not a guard page (a fault there would clear the guard on
   the program's behalf). Inside a read-side section. */
static bool page_allowed(ntmm_process_t *p, uint64_t va)
{
	/* acquire: pairs with the release store in ntmm__vad_publish */
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_acquire);
	long vi = m ? ntmm__vad_find(m, va) : -1;
	if (vi < 0)
		return false;
	const ntmm__vad_t *v = m->vads[vi];
	const ntmm__vad_run_t *r = ntmm__vad_run_of(v, (va - v->start) >> NTMM__PAGE_SHIFT);
	return r->committed && !(r->prot & NTMM_PAGE_GUARD) &&
	       (ntmm__pte_bits_for(r->prot) & NTMM__PTE_READ);
}

/* Brings one recorded page back through the fault path: a read fault, so
   a clean page keeps its paging-file copy and nothing is dirtied. Returns
   NTMM_FAULT_SOFT or _HARD when this call made it valid, NTMM_FAULT_NONE
   when there was nothing to do (resident, resolved by another thread,
   decommitted, guard, never more than demand-zero), or a negative error
   that ends the in-swap. */
static int inswap_page(ntmm_process_t *p, uint64_t va)
{
	int ret = NTMM_FAULT_NONE;
	ntmm__rcu_read_lock();
	_Atomic uint64_t *pte = ntmm__pt_lookup(p, va);
	/* acquire: as the fault path's own PTE load */
	uint64_t old = pte ? atomic_load_explicit(pte, memory_order_acquire) : 0;
	if (!ntmm__pte_is_valid(old) &&
	    (ntmm__pte_is_transition(old) || ntmm__pte_is_pagefile(old)) && page_allowed(p, va)) {
		ntmm__fault_nowait = true; /* a prefetch: never wait for frames */
		int err = ntmm__fault(p, va, NTMM_ACCESS_READ);
		ntmm__fault_nowait = false;
		if (!err &&
		    (ntmm__fault_kind == NTMM_FAULT_SOFT || ntmm__fault_kind == NTMM_FAULT_HARD))
			ret = (int)ntmm__fault_kind;
		else if (err && err != NTMM_EACCESS && err != NTMM_EGUARD)
			ret = err; /* NTMM_EIO, NTMM_ENOMEM: stop here */
	}
	ntmm__rcu_read_unlock();
	return ret;
}

bool ntmm__wsm_inswap_step(ntmm__wsm_inswap_job_t *job, size_t max_pages)
{
	ntmm_process_t *p = job->p;
	ntmm_engine_t *e = p->e;
	if (!job->rec || job->next >= job->rec->n) {
		job->end = NTMM__INSWAP_DONE;
		return false;
	}
	ntmm__wsm_marks_t m;
	ntmm__wsm_marks(e, &m);
	for (size_t k = 0; k < max_pages && job->next < job->rec->n; k++) {
		/* relaxed, both: hints to stop early; destroy's safety comes from
		   the users reference, not from these */
		if (atomic_load_explicit(&p->wsm.dying, memory_order_relaxed)) {
			job->end = NTMM__INSWAP_DYING;
			return false;
		}
		if (atomic_load_explicit(&p->wsm.swapped_out, memory_order_relaxed)) {
			job->end = NTMM__INSWAP_OUTSWAPPED;
			return false;
		}
		size_t avail, mod;
		ntmm__wsm_gauges(e, &avail, &mod);
		if (avail < m.minimum) {
			job->end = NTMM__INSWAP_PRESSURE;
			return false;
		}
		int r = inswap_page(p, job->rec->va[job->next++]);
		if (r < 0) {
			job->end = NTMM__INSWAP_ERROR;
			return false;
		}
		if (r != NTMM_FAULT_NONE)
			job->pages++;
		if (r == NTMM_FAULT_HARD) {
			job->hard++;
			break; /* at most one read per step */
		}
	}
	if (job->next < job->rec->n)
		return true;
	job->end = NTMM__INSWAP_DONE;
	return false;
}

void ntmm__wsm_inswap_end(ntmm_engine_t *e, ntmm__wsm_inswap_job_t *job)
{
	ntmm_process_t *p = job->p;
	ntmm__wsm_rec_t *none = NULL;
	/* out-swapped again before we got far: if that out-swap left no
	   record of its own (it stored one before we claimed ours), ours goes
	   back for the next in-swap. acq_rel: as record_swap */
	if (job->rec && job->end == NTMM__INSWAP_OUTSWAPPED &&
	    atomic_compare_exchange_strong_explicit(&p->wsm.rec, &none, job->rec,
	                                            memory_order_acq_rel, memory_order_relaxed))
		job->rec = NULL;
	free(job->rec);
	job->rec = NULL;
	atomic_fetch_add_explicit(&p->wsm.swap_in_pages, job->pages, memory_order_relaxed);
	NTMM__STAT_ADD(&e->stats, swap_in_pages, job->pages);
	/* release: our work on p happens before destroy's teardown (it loads
	   users with acquire); p may be freed right after, so the wake-up
	   goes through the engine's event */
	if (atomic_fetch_sub_explicit(&p->users, 1, memory_order_release) == 1)
		ntmm__event_signal(&e->virt.users_done);
	job->p = NULL;
}

void ntmm__wsm_process_destroying(ntmm_process_t *p)
{
	ntmm__wsm_inswap_t *q = inswap_q(p->e);
	ntmm__pushlock_acquire_exclusive(&q->lock);
	/* relaxed: the lock orders it for swap_in; the in-swap reads it only
	   as a hint to stop */
	atomic_store_explicit(&p->wsm.dying, 1, memory_order_relaxed);
	unqueue_locked(q, p);
	ntmm__pushlock_release_exclusive(&q->lock);
}

void ntmm__wsm_process_fini(ntmm_process_t *p)
{
	ntmm__wsm_process_destroying(p); /* engine teardown comes here directly */
	record_swap(p, NULL);
}

/* ------------------------------------------------------------ public API */

int ntmm_process_set_page_priority(ntmm_process_t *p, unsigned prio)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (prio > 7)
		return ntmm__error(NTMM_EINVAL, "page priority %u (0..7)", prio);
	atomic_store_explicit(&p->wsm.page_priority, prio, memory_order_relaxed);
	return 0;
}
