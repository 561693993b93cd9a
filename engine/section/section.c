/*
 * Section objects, segments and their prototype PTEs, views (map, unmap,
 * flush), shared-page unmapping, the layer's audit and teardown. The
 * design is in section.h; faults are in fault.c, writes in writer.c.
 */
#include "engine.h"
#include "section/section.h"
#include "virt/frame.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE                NTMM_PAGE_SIZE
#define SEGMENT_WRITE_TRIES 8u /* writes of a deleted segment's dirty pages */
#define GRANULE             NTMM_ALLOCATION_GRANULARITY

/* ------------------------------------------------------ prototype PTEs */

_Atomic uint64_t *ntmm__proto(ntmm__segment_t *seg, uint64_t idx, bool create)
{
	uint64_t c = idx / NTMM__PROTO_PER_CHUNK;
	uint64_t ti = c / NTMM__PROTO_MID, mi = c % NTMM__PROTO_MID;
	if (ti >= NTMM__PROTO_TOP)
		return NULL;
	/* acquire: pairs with the release CAS that published the level */
	ntmm__proto_mid_t *mid = atomic_load_explicit(&seg->top[ti], memory_order_acquire);
	if (!mid) {
		if (!create)
			return NULL;
		ntmm__proto_mid_t *n = calloc(1, sizeof(*n));
		if (!n)
			return NULL;
		if (atomic_compare_exchange_strong_explicit(
		        &seg->top[ti], &mid, n, memory_order_acq_rel, memory_order_acquire))
			mid = n;
		else
			free(n); /* another thread's is in place: mid holds it */
	}
	ntmm__proto_chunk_t *ch = atomic_load_explicit(&(*mid)[mi], memory_order_acquire);
	if (!ch) {
		if (!create)
			return NULL;
		ntmm__proto_chunk_t *n = aligned_alloc(PAGE, sizeof(*n));
		if (!n)
			return NULL;
		memset(n, 0, sizeof(*n));
		n->seg = seg;
		n->first = c * NTMM__PROTO_PER_CHUNK;
		if (atomic_compare_exchange_strong_explicit(
		        &(*mid)[mi], &ch, n, memory_order_acq_rel, memory_order_acquire))
			ch = n;
		else
			free(n);
	}
	return &ch->ptes[idx % NTMM__PROTO_PER_CHUNK];
}

ntmm__segment_t *ntmm__proto_segment(uint64_t pte_addr, uint64_t *idx)
{
	ntmm__proto_chunk_t *ch =
	    (ntmm__proto_chunk_t *)(uintptr_t)(pte_addr & ~(uint64_t)(PAGE - 1));
	size_t off = (size_t)(pte_addr - (uint64_t)(uintptr_t)&ch->ptes[0]) / sizeof(uint64_t);
	if (idx)
		*idx = ch->first + off;
	return ch->seg;
}

/* Calls fn on every prototype PTE that exists (quiet segment or the
   caller's own locking). */
static void proto_each(ntmm__segment_t *seg,
                       void (*fn)(ntmm__segment_t *, uint64_t, _Atomic uint64_t *, void *),
                       void *arg)
{
	uint64_t chunks =
	    (atomic_load_explicit(&seg->npages, memory_order_relaxed) + NTMM__PROTO_PER_CHUNK - 1) /
	    NTMM__PROTO_PER_CHUNK;
	for (uint64_t ti = 0; ti * NTMM__PROTO_MID < chunks && ti < NTMM__PROTO_TOP; ti++) {
		ntmm__proto_mid_t *mid = atomic_load_explicit(&seg->top[ti], memory_order_acquire);
		if (!mid)
			continue;
		for (unsigned mi = 0; mi < NTMM__PROTO_MID; mi++) {
			ntmm__proto_chunk_t *ch =
			    atomic_load_explicit(&(*mid)[mi], memory_order_acquire);
			if (!ch)
				continue;
			for (unsigned k = 0; k < NTMM__PROTO_PER_CHUNK; k++)
				if (atomic_load_explicit(&ch->ptes[k], memory_order_acquire))
					fn(seg, ch->first + k, &ch->ptes[k], arg);
		}
	}
}

bool ntmm__frame_is_shared(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr)
{
	return atomic_load_explicit(&ntmm__vpfn(e, pfn)->pte, memory_order_relaxed) != pte_addr;
}

void ntmm__section_unshare(ntmm_engine_t *e, ntmm__pfn_t pfn, bool dirty, ntmm__shootdown_t *s)
{
	uint64_t proto_addr = atomic_load_explicit(&ntmm__vpfn(e, pfn)->pte, memory_order_relaxed);
	uint64_t idx;
	ntmm__segment_t *seg = ntmm__proto_segment(proto_addr, &idx);
	_Atomic uint64_t *proto = (_Atomic uint64_t *)(uintptr_t)proto_addr;
	pthread_mutex_t *lk = ntmm__proto_stripe(seg, idx);
	pthread_mutex_lock(lk);
	if (ntmm__page_unmap(e, pfn, dirty, false)) {
		uint64_t old = atomic_load_explicit(proto, memory_order_relaxed);
		ntmm__assert(ntmm__pte_is_valid(old) && ntmm__pte_pfn(old) == pfn);
		/* release: a fault that finds the transition PTE (under this lock,
		   or the repurpose callback) sees the frame's new state */
		atomic_store_explicit(proto, ntmm__pte_make_transition(pfn, ntmm__pte_prot(old)),
		                      memory_order_release);
		pthread_mutex_unlock(lk);
		if (s)
			ntmm__shootdown_add_release(s, pfn);
		else
			ntmm__page_release_batch(e, &pfn, 1); /* never reachable by a reader */
		return;
	}
	pthread_mutex_unlock(lk);
}

typedef struct deferred_release {
	struct rcu_head rcu;
	ntmm_engine_t *e;
	ntmm__pfn_t pfn;
} deferred_release_t;

static void release_after_grace(struct rcu_head *h)
{
	deferred_release_t *d = caa_container_of(h, deferred_release_t, rcu);
	ntmm__rcu_tsan_after_gp();
	ntmm__page_release_batch(d->e, &d->pfn, 1);
	ntmm__event_signal(&d->e->virt.paging.avail);
	free(d);
	ntmm__rcu_tsan_cb_done();
}

void ntmm__section_unshare_deferred(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	uint64_t proto_addr = atomic_load_explicit(&ntmm__vpfn(e, pfn)->pte, memory_order_relaxed);
	uint64_t idx;
	ntmm__segment_t *seg = ntmm__proto_segment(proto_addr, &idx);
	_Atomic uint64_t *proto = (_Atomic uint64_t *)(uintptr_t)proto_addr;
	pthread_mutex_t *lk = ntmm__proto_stripe(seg, idx);
	/* shares only drop under this lock: with others left, this one just
	   goes (the common case, no allocation) */
	pthread_mutex_lock(lk);
	uint64_t s = atomic_load_explicit(&ntmm__vpfn(e, pfn)->state, memory_order_acquire);
	if (ntmm__pfn_shares(s) > 1) {
		bool last = ntmm__page_unmap(e, pfn, false, false);
		ntmm__assert(!last);
		(void)last;
		pthread_mutex_unlock(lk);
		return;
	}
	pthread_mutex_unlock(lk);
	/* the item is allocated before the last share goes, so a failure
	   leaves the frame mapped by this PTE's share rather than released
	   early: a lost share is a frame kept, never bytes shown to a reader
	   who should not see them */
	deferred_release_t *d = malloc(sizeof(*d));
	if (!d) {
		ntmm__error(NTMM_ENOMEM, "host memory for a deferred release: pfn %u kept", pfn);
		return;
	}
	pthread_mutex_lock(lk);
	bool last = ntmm__page_unmap(e, pfn, false, false);
	if (last) {
		uint64_t old = atomic_load_explicit(proto, memory_order_relaxed);
		atomic_store_explicit(proto, ntmm__pte_make_transition(pfn, ntmm__pte_prot(old)),
		                      memory_order_release);
	}
	pthread_mutex_unlock(lk);
	if (!last) {
		free(d);
		return;
	}
	d->e = e;
	d->pfn = pfn;
	ntmm__rcu_call(&d->rcu, release_after_grace);
}

int ntmm__view_commit(ntmm_engine_t *e, const ntmm__view_t *view, uint64_t first, uint64_t n)
{
	ntmm__segment_t *seg = view->seg;
	if (seg->fd >= 0 || seg->commit_all)
		return 0; /* every page is committed already */
	unsigned mmprot = ntmm__mmprot_from_page(
	    view->max_prot == NTMM_PAGE_READWRITE ? NTMM_PAGE_READWRITE : NTMM_PAGE_READONLY);
	/* count first, charge once, then commit: no half-done commit */
	uint64_t need = 0;
	for (uint64_t i = first; i < first + n; i++) {
		_Atomic uint64_t *q = ntmm__proto(seg, i, true);
		if (!q)
			return ntmm__error(NTMM_ENOMEM, "host memory for prototype PTEs");
		need += atomic_load_explicit(q, memory_order_acquire) == 0;
	}
	int err = need ? ntmm__commit_charge_shared(e, need) : 0;
	if (err)
		return err;
	uint64_t done = 0;
	for (uint64_t i = first; i < first + n; i++) {
		_Atomic uint64_t *q = ntmm__proto(seg, i, false);
		pthread_mutex_t *lk = ntmm__proto_stripe(seg, i);
		pthread_mutex_lock(lk);
		uint64_t zero = 0;
		done += atomic_compare_exchange_strong_explicit(
		    q, &zero, ntmm__pte_make_demand_zero(mmprot), memory_order_release,
		    memory_order_relaxed);
		pthread_mutex_unlock(lk);
	}
	if (done < need) /* another view committed some meanwhile */
		ntmm__commit_uncharge_shared(e, need - done);
	atomic_fetch_add_explicit(&seg->charged, done, memory_order_relaxed);
	return 0;
}

uint64_t ntmm__view_run(const ntmm__view_t *view, uint64_t idx, uint64_t max, bool *committed)
{
	ntmm__segment_t *seg = view->seg;
	if (seg->fd >= 0 || seg->commit_all) {
		*committed = true;
		return max;
	}
	uint64_t n = 0;
	for (; n < max; n++) {
		_Atomic uint64_t *q = ntmm__proto(seg, idx + n, false);
		bool c = q && atomic_load_explicit(q, memory_order_acquire) != 0;
		if (n == 0)
			*committed = c;
		else if (c != *committed)
			break;
	}
	return n;
}

/* ------------------------------------------------------------ segments */

static ntmm__segment_t *segment_new(ntmm_engine_t *e, int fd)
{
	ntmm__segment_t *seg = calloc(1, sizeof(*seg));
	if (!seg)
		return NULL;
	/* calloc of this size comes from mmap: untouched, it costs no memory */
	seg->top = calloc(NTMM__PROTO_TOP, sizeof(*seg->top));
	if (!seg->top) {
		free(seg);
		return NULL;
	}
	seg->e = e;
	seg->fd = fd;
	for (unsigned i = 0; i < NTMM__PROTO_STRIPES; i++)
		pthread_mutex_init(&seg->stripe[i], NULL);
	CDS_INIT_LIST_HEAD(&seg->link);
	return seg;
}

static void purge_one(ntmm__segment_t *seg, uint64_t idx, _Atomic uint64_t *proto, void *arg)
{
	(void)idx, (void)arg;
	ntmm_engine_t *e = seg->e;
	uint64_t old = atomic_load_explicit(proto, memory_order_acquire);
	if (ntmm__pte_is_transition(old)) {
		ntmm__pfn_t pfn = ntmm__pte_pfn(old);
		if (!ntmm__page_delete_transition(e, pfn, (uint64_t)(uintptr_t)proto)) {
			/* the allocator is repurposing it and restores the PTE */
			for (unsigned k = 0; k < 1000000 && atomic_load_explicit(
			                                        proto, memory_order_acquire) == old;
			     k++)
				sched_yield();
		}
	}
	ntmm__assert(!ntmm__pte_is_valid(atomic_load_explicit(proto, memory_order_acquire)));
	/* a paging-file slot (paging-file sections) goes with its PTE */
	ntmm__pagefile_pte_release(e, atomic_exchange_explicit(proto, 0, memory_order_acq_rel));
}

/* The last reference went: the file gets every dirty page, then the
   frames and the prototypes go. */
static void segment_delete(ntmm__segment_t *seg)
{
	ntmm_engine_t *e = seg->e;
	/* a failed write is tried again: the data has no other way to the
	   file now; a disk that keeps failing loses it, and says so */
	for (unsigned tries = 0; seg->fd >= 0; tries++) {
		int err = ntmm__segment_flush(
		    seg, 0, atomic_load_explicit(&seg->npages, memory_order_relaxed), false);
		if (!err)
			break;
		if (tries == SEGMENT_WRITE_TRIES) {
			fprintf(stderr,
			        "ntmm: a mapped file's dirty pages could not be written when its "
			        "last section went (%s): they are lost\n",
			        ntmm_error_detail());
			break;
		}
	}
	/* frames of it whose last share went from a fault wait for their
	   grace period in call_rcu: let them reach their lists first, so
	   what they hold (a paging-file slot) goes back before this returns
	   (not inside a read-side section, which the barrier would wait for) */
	if (!urcu_memb_read_ongoing())
		ntmm__rcu_barrier();
	pthread_mutex_lock(&e->section.write_lock); /* no mapped write in flight */
	proto_each(seg, purge_one, NULL);
	pthread_mutex_unlock(&e->section.write_lock);
	uint64_t charged = atomic_load_explicit(&seg->charged, memory_order_relaxed);
	if (charged)
		ntmm__commit_uncharge_shared(e, charged);
	for (uint64_t ti = 0; ti < NTMM__PROTO_TOP; ti++) {
		ntmm__proto_mid_t *mid = atomic_load_explicit(&seg->top[ti], memory_order_relaxed);
		if (!mid)
			continue;
		for (unsigned mi = 0; mi < NTMM__PROTO_MID; mi++)
			free(atomic_load_explicit(&(*mid)[mi], memory_order_relaxed));
		free(mid);
		if ((ti + 1) * NTMM__PROTO_MID * NTMM__PROTO_PER_CHUNK >=
		    atomic_load_explicit(&seg->npages, memory_order_relaxed))
			break;
	}
	if (seg->fd >= 0)
		close(seg->fd);
	for (unsigned i = 0; i < NTMM__PROTO_STRIPES; i++)
		pthread_mutex_destroy(&seg->stripe[i]);
	free(seg->top);
	free(seg);
}

static void segment_put(ntmm__segment_t *seg)
{
	ntmm_engine_t *e = seg->e;
	pthread_mutex_lock(&e->section.lock);
	bool last = --seg->refs == 0;
	if (last) {
		cds_list_del(&seg->link);
		atomic_fetch_sub_explicit(&e->section.nsegments, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&e->section.lock);
	if (last)
		segment_delete(seg);
}

ntmm__segment_t *ntmm__clone_segment_new(ntmm_engine_t *e, uint64_t npages)
{
	ntmm__segment_t *seg = segment_new(e, -1);
	if (!seg)
		return NULL;
	/* its pages are charged to the processes that reference them */
	seg->commit_all = false;
	atomic_store_explicit(&seg->npages, npages, memory_order_relaxed);
	seg->refs = 1;
	pthread_mutex_lock(&e->section.lock);
	cds_list_add_tail(&seg->link, &e->section.segments);
	atomic_fetch_add_explicit(&e->section.nsegments, 1, memory_order_relaxed);
	pthread_mutex_unlock(&e->section.lock);
	return seg;
}

void ntmm__clone_segment_put(ntmm__segment_t *seg)
{
	segment_put(seg);
}

/* ------------------------------------------------------------ sections */

static int section_check(const ntmm_section_t *s)
{
	if (!s || s->magic != NTMM__SECTION_MAGIC)
		return ntmm__error(NTMM_EINVAL, "not a live section");
	return 0;
}

static unsigned prot_rank(unsigned prot)
{
	switch (prot) {
	case NTMM_PAGE_READONLY:
		return 1;
	case NTMM_PAGE_WRITECOPY:
		return 2;
	case NTMM_PAGE_READWRITE:
		return 3;
	default:
		return 0;
	}
}

/* The file's segment (existing one, or a new one) with a reference. */
static int file_segment(ntmm_engine_t *e, int fd, uint64_t pages, uint64_t bytes, bool writable,
                        ntmm__segment_t **out)
{
	struct stat st;
	if (fstat(fd, &st))
		return ntmm__error(NTMM_EINVAL, "fd %d: %s", fd, strerror(errno));
	pthread_mutex_lock(&e->section.lock);
	ntmm__segment_t *seg = NULL;
	for (struct cds_list_head *it = e->section.segments.next; it != &e->section.segments;
	     it = it->next) {
		ntmm__segment_t *x = caa_container_of(it, ntmm__segment_t, link);
		if (x->fd >= 0 && x->dev == (uint64_t)st.st_dev && x->ino == (uint64_t)st.st_ino) {
			seg = x;
			break;
		}
	}
	if (seg && writable && !seg->writable) {
		/* the segment was made through a read-only descriptor: writes
		   need one opened for writing, which the new section brings */
		int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (nfd < 0) {
			pthread_mutex_unlock(&e->section.lock);
			return ntmm__error(NTMM_ENOMEM, "dup of fd %d: %s", fd, strerror(errno));
		}
		/* the old descriptor may be in a write right now: keep both
		   until the segment goes (dup2 over it would swap files
		   under a reader) */
		int old = seg->fd;
		seg->fd = nfd;
		seg->writable = true;
		close(old); /* same file: reads in flight hold their own reference */
	}
	if (!seg) {
		int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		if (nfd < 0) {
			pthread_mutex_unlock(&e->section.lock);
			return ntmm__error(NTMM_ENOMEM, "dup of fd %d: %s", fd, strerror(errno));
		}
		seg = segment_new(e, nfd);
		if (!seg) {
			pthread_mutex_unlock(&e->section.lock);
			close(nfd);
			return ntmm__error(NTMM_ENOMEM, "host memory for a segment");
		}
		seg->dev = (uint64_t)st.st_dev;
		seg->ino = (uint64_t)st.st_ino;
		seg->writable = writable;
		atomic_store_explicit(&seg->file_bytes, (uint64_t)st.st_size, memory_order_relaxed);
		cds_list_add_tail(&seg->link, &e->section.segments);
		atomic_fetch_add_explicit(&e->section.nsegments, 1, memory_order_relaxed);
	}
	if (atomic_load_explicit(&seg->npages, memory_order_relaxed) < pages)
		atomic_store_explicit(&seg->npages, pages, memory_order_relaxed);
	if (atomic_load_explicit(&seg->file_bytes, memory_order_relaxed) < bytes)
		atomic_store_explicit(&seg->file_bytes, bytes, memory_order_relaxed);
	seg->refs++;
	pthread_mutex_unlock(&e->section.lock);
	*out = seg;
	return 0;
}

int ntmm_section_create(ntmm_engine_t *e, int fd, uint64_t size, unsigned prot, unsigned flags,
                        ntmm_section_t **out)
{
	if (!e || !out)
		return ntmm__error(NTMM_EINVAL, "section create: %s is NULL", e ? "out" : "engine");
	*out = NULL;
	if (!prot_rank(prot))
		return ntmm__error(
		    NTMM_EINVAL, "section protection %#x (READONLY, READWRITE or WRITECOPY)", prot);
	if (flags & ~(NTMM_SEC_COMMIT | NTMM_SEC_RESERVE) ||
	    (flags & NTMM_SEC_COMMIT && flags & NTMM_SEC_RESERVE))
		return ntmm__error(NTMM_EINVAL, "section flags %#x", flags);
	if (fd >= 0 && flags)
		return ntmm__error(NTMM_EINVAL,
		                   "SEC_COMMIT/SEC_RESERVE are for paging-file sections");
	uint64_t max = (uint64_t)NTMM__PROTO_TOP * NTMM__PROTO_MID * NTMM__PROTO_PER_CHUNK * PAGE;
	ntmm_section_t *s = calloc(1, sizeof(*s));
	if (!s)
		return ntmm__error(NTMM_ENOMEM, "host memory for a section");
	int err;
	if (fd < 0) {
		if (size == 0 || size > max) {
			free(s);
			return ntmm__error(NTMM_EINVAL, "paging-file section of %llu bytes",
			                   (unsigned long long)size);
		}
		uint64_t pages = (size + PAGE - 1) / PAGE;
		ntmm__segment_t *seg = segment_new(e, -1);
		if (!seg) {
			free(s);
			return ntmm__error(NTMM_ENOMEM, "host memory for a segment");
		}
		seg->commit_all = !(flags & NTMM_SEC_RESERVE);
		atomic_store_explicit(&seg->npages, pages, memory_order_relaxed);
		seg->refs = 1;
		if (seg->commit_all) {
			if ((err = ntmm__commit_charge_shared(e, pages))) {
				segment_delete(seg);
				free(s);
				return err;
			}
			atomic_store_explicit(&seg->charged, pages, memory_order_relaxed);
		}
		pthread_mutex_lock(&e->section.lock);
		cds_list_add_tail(&seg->link, &e->section.segments);
		atomic_fetch_add_explicit(&e->section.nsegments, 1, memory_order_relaxed);
		pthread_mutex_unlock(&e->section.lock);
		s->seg = seg;
	} else {
		int fl = fcntl(fd, F_GETFL);
		struct stat st;
		if (fl < 0 || fstat(fd, &st)) {
			free(s);
			return ntmm__error(NTMM_EINVAL, "fd %d is not an open file", fd);
		}
		if (!S_ISREG(st.st_mode)) {
			free(s);
			return ntmm__error(NTMM_EINVAL, "fd %d is not a regular file", fd);
		}
		int acc = fl & O_ACCMODE;
		if (acc == O_WRONLY) {
			free(s);
			return ntmm__error(NTMM_EINVAL, "fd %d is open for writing only", fd);
		}
		bool writable = acc == O_RDWR;
		if (prot == NTMM_PAGE_READWRITE && !writable) {
			free(s);
			return ntmm__error(NTMM_EINVAL,
			                   "READWRITE section over fd %d, which is open read-only",
			                   fd);
		}
		uint64_t fsize = (uint64_t)st.st_size;
		if (size == 0)
			size = fsize;
		if (size == 0) {
			free(s);
			return ntmm__error(NTMM_EINVAL, "section of an empty file with size 0");
		}
		if (size > max) {
			free(s);
			return ntmm__error(NTMM_EINVAL, "file section of %llu bytes",
			                   (unsigned long long)size);
		}
		if (size > fsize) {
			if (prot != NTMM_PAGE_READWRITE) {
				free(s);
				return ntmm__error(
				    NTMM_EINVAL,
				    "section of %llu bytes past the end of a %llu-byte "
				    "file that it may not grow (not READWRITE)",
				    (unsigned long long)size, (unsigned long long)fsize);
			}
			if (ftruncate(fd, (off_t)size)) {
				free(s);
				return ntmm__error(NTMM_EIO, "growing the file to %llu bytes: %s",
				                   (unsigned long long)size, strerror(errno));
			}
		}
		if ((err =
		         file_segment(e, fd, (size + PAGE - 1) / PAGE, size, writable, &s->seg))) {
			free(s);
			return err;
		}
	}
	s->size = size;
	s->prot = prot;
	s->flags = fd < 0 ? (flags ? flags : NTMM_SEC_COMMIT) : 0;
	s->magic = NTMM__SECTION_MAGIC;
	*out = s;
	return 0;
}

int ntmm_section_close(ntmm_section_t *s)
{
	int err = section_check(s);
	if (err)
		return err;
	if (urcu_memb_read_ongoing())
		return ntmm__error(NTMM_EBUSY, "section close inside an access section");
	s->magic = 0;
	ntmm__segment_t *seg = s->seg;
	free(s);
	ntmm__rcu_thread_online();
	segment_put(seg);
	ntmm__rcu_thread_offline();
	return 0;
}

int ntmm__section_fail_io(ntmm_section_t *s, uint64_t read_in, uint64_t write_in)
{
	int err = section_check(s);
	if (err)
		return err;
	if (s->seg->fd < 0)
		return ntmm__error(NTMM_EINVAL, "a paging-file section does no file I/O");
	atomic_store_explicit(&s->seg->fail_read_in, read_in, memory_order_relaxed);
	atomic_store_explicit(&s->seg->fail_write_in, write_in, memory_order_relaxed);
	return 0;
}

/* --------------------------------------------------------------- views */

bool ntmm__vad_charged(const ntmm__vad_t *v)
{
	return !v->view || v->view->cow;
}

void ntmm__view_free(ntmm_engine_t *e, ntmm__view_t *view)
{
	(void)e;
	ntmm__segment_t *seg = view->seg;
	free(view);
	segment_put(seg);
}

int ntmm_map_view(ntmm_section_t *s, ntmm_process_t *p, uint64_t *base, uint64_t offset,
                  size_t size, unsigned prot)
{
	int err = section_check(s);
	if (err || (err = ntmm__process_check(p)))
		return err;
	if (!base)
		return ntmm__error(NTMM_EINVAL, "base is NULL");
	if (s->seg->e != p->e)
		return ntmm__error(NTMM_EINVAL,
		                   "the section and the process are of different engines");
	if (offset % GRANULE)
		return ntmm__error(NTMM_EINVAL, "view offset %#llx is not a multiple of 64 KiB",
		                   (unsigned long long)offset);
	uint64_t sec_bytes = (s->size + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	if (offset >= sec_bytes)
		return ntmm__error(NTMM_EINVAL,
		                   "view offset %#llx at or past the section's end %#llx",
		                   (unsigned long long)offset, (unsigned long long)sec_bytes);
	uint64_t bytes =
	    size ? ((uint64_t)size + PAGE - 1) & ~(uint64_t)(PAGE - 1) : sec_bytes - offset;
	if (size && (bytes < size || bytes > sec_bytes - offset))
		return ntmm__error(NTMM_EINVAL,
		                   "view of %zu bytes at %#llx past the section's end (%llu bytes)",
		                   size, (unsigned long long)offset, (unsigned long long)s->size);
	unsigned r = prot_rank(prot);
	if (!r)
		return ntmm__error(NTMM_EINVAL, "view protection %#x", prot);
	bool ok = prot == NTMM_PAGE_READONLY ||
	          (prot == NTMM_PAGE_READWRITE && s->prot == NTMM_PAGE_READWRITE) ||
	          (prot == NTMM_PAGE_WRITECOPY && s->prot != NTMM_PAGE_READONLY);
	if (!ok)
		return ntmm__error(NTMM_EACCESS, "a %s view of a %s section",
		                   prot == NTMM_PAGE_READWRITE ? "READWRITE" : "WRITECOPY",
		                   s->prot == NTMM_PAGE_READONLY ? "READONLY" : "WRITECOPY");
	if (*base % GRANULE)
		return ntmm__error(NTMM_EINVAL, "view base %#llx is not 64 KiB aligned",
		                   (unsigned long long)*base);
	if (*base &&
	    (*base < NTMM__VA_START || *base > NTMM__VA_END || bytes > NTMM__VA_END - *base))
		return ntmm__error(NTMM_EINVAL, "view base %#llx + %llu outside user space",
		                   (unsigned long long)*base, (unsigned long long)bytes);

	ntmm__view_t *view = malloc(sizeof(*view));
	if (!view)
		return ntmm__error(NTMM_ENOMEM, "host memory for a view");
	*view = (ntmm__view_t){.seg = s->seg,
	                       .first = offset / PAGE,
	                       .npages = bytes / PAGE,
	                       .prot = prot,
	                       .max_prot = s->prot,
	                       .cow = prot == NTMM_PAGE_WRITECOPY};
	ntmm__rcu_thread_online();
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	uint64_t start = *base;
	if (!start) {
		start = ntmm__vad_place(p, m, bytes, false);
		if (!start) {
			err = ntmm__error(NTMM_ENOMEM, "no free range of %llu bytes for the view",
			                  (unsigned long long)bytes);
			goto fail;
		}
	} else {
		size_t i = ntmm__vad_lower_bound(m, start);
		if (i < m->n && m->vads[i]->start < start + bytes) {
			err = ntmm__error(NTMM_ECONFLICT, "%#llx..%#llx overlaps a reservation",
			                  (unsigned long long)start,
			                  (unsigned long long)(start + bytes));
			goto fail;
		}
	}
	ntmm__vad_t *v = ntmm__vad_new(start, start + bytes, prot, true, prot);
	if (!v) {
		err = ntmm__error(NTMM_ENOMEM, "host memory for the VAD");
		goto fail;
	}
	v->view = view;
	uint64_t tables = (uint64_t)ntmm__commit_table_delta(m, NULL, v, start, start + bytes);
	uint64_t pages = view->cow ? view->npages : 0;
	if ((err = ntmm__commit_charge(p, pages, tables))) {
		free(v);
		goto fail;
	}
	ntmm__vad_map_t *nm = ntmm__vad_map_insert(m, v);
	if (!nm) {
		free(v);
		ntmm__commit_uncharge(p, pages, tables);
		err = ntmm__error(NTMM_ENOMEM, "host memory for the VAD map");
		goto fail;
	}
	pthread_mutex_lock(&p->e->section.lock);
	s->seg->refs++;
	pthread_mutex_unlock(&p->e->section.lock);
	ntmm__vad_publish(p, nm, NULL);
	ntmm__pushlock_release_exclusive(&p->as_lock);
	ntmm__rcu_thread_offline();
	*base = start;
	return 0;
fail:
	ntmm__pushlock_release_exclusive(&p->as_lock);
	ntmm__rcu_thread_offline();
	free(view);
	return err;
}

int ntmm_unmap_view(ntmm_process_t *p, uint64_t base)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (urcu_memb_read_ongoing())
		return ntmm__error(NTMM_EBUSY, "ntmm_unmap_view inside an access section");
	ntmm__rcu_thread_online();
	pthread_mutex_lock(&p->trim_lock);
	ntmm__pushlock_acquire_exclusive(&p->as_lock);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	long vi = ntmm__vad_find(m, base);
	ntmm__vad_t *v = vi >= 0 ? m->vads[vi] : NULL;
	if (!v || !v->view || v->start != base) {
		ntmm__pushlock_release_exclusive(&p->as_lock);
		pthread_mutex_unlock(&p->trim_lock);
		ntmm__rcu_thread_offline();
		return ntmm__error(NTMM_EINVAL, "%#llx is not the base of a view",
		                   (unsigned long long)base);
	}
	ntmm__view_t *view = v->view;
	ntmm__vad_map_t *nm = ntmm__vad_map_replace(m, (size_t)vi, NULL);
	if (!nm) {
		ntmm__pushlock_release_exclusive(&p->as_lock);
		pthread_mutex_unlock(&p->trim_lock);
		ntmm__rcu_thread_offline();
		return ntmm__error(NTMM_ENOMEM, "host memory for the VAD map");
	}
	uint64_t tables = (uint64_t)-ntmm__commit_table_delta(m, v, NULL, v->start, v->end);
	uint64_t pages = view->cow ? v->ncommitted : 0;
	uint64_t start = v->start, end = v->end;
	ntmm__vad_publish(p, nm, v);
	ntmm__commit_uncharge(p, pages, tables);
	ntmm__shootdown_t s = {0};
	ntmm__pt_teardown_range(p, start, end, &s);
	ntmm__pushlock_release_exclusive(&p->as_lock);
	ntmm__shootdown_finish(p->e, &s);
	/* no fault that read the old map is still inside its section */
	ntmm__rcu_synchronize();
	pthread_mutex_unlock(&p->trim_lock);
	ntmm__view_free(p->e, view);
	ntmm__rcu_thread_offline();
	return 0;
}

/* The Dirty bits of every process PTE that maps a page of segment pages
   [first, first + n) through a shared view move into the frames (MODIFIED),
   so a flush writes what any process wrote there. A write through a
   pointer translated before sets Dirty again by CAS. */
static void harvest_dirty(ntmm_engine_t *e, ntmm__segment_t *seg, uint64_t first, uint64_t n)
{
	pthread_mutex_lock(&e->virt.lock);
	for (struct cds_list_head *it = e->virt.processes.next; it != &e->virt.processes;
	     it = it->next) {
		ntmm_process_t *q = caa_container_of(it, ntmm_process_t, link);
		ntmm__pushlock_acquire_shared(&q->as_lock);
		ntmm__vad_map_t *m = atomic_load_explicit(&q->vads, memory_order_relaxed);
		for (size_t i = 0; m && i < m->n; i++) {
			const ntmm__vad_t *v = m->vads[i];
			const ntmm__view_t *w = v->view;
			if (!w || w->seg != seg || w->cow)
				continue;
			uint64_t lo = first > w->first ? first : w->first;
			uint64_t hi =
			    first + n < w->first + w->npages ? first + n : w->first + w->npages;
			if (lo >= hi)
				continue;
			ntmm__ws_lock_exclusive(q);
			for (uint64_t a = v->start + (lo - w->first) * PAGE,
			              end = v->start + (hi - w->first) * PAGE;
			     a < end; a += PAGE) {
				_Atomic uint64_t *pte = ntmm__pt_lookup(q, a);
				if (!pte) { /* no leaf table: on to the next one */
					a = (a | (NTMM__PT_LEAF_SPAN - 1)) + 1 - PAGE;
					continue;
				}
				uint64_t old = atomic_load_explicit(pte, memory_order_acquire);
				if (!ntmm__pte_is_valid(old) || !(old & NTMM__PTE_DIRTY) ||
				    !ntmm__frame_is_shared(e, ntmm__pte_pfn(old),
				                           (uint64_t)(uintptr_t)pte))
					continue;
				old = atomic_fetch_and_explicit(pte, ~NTMM__PTE_DIRTY,
				                                memory_order_acq_rel);
				ntmm__page_set_modified(e, ntmm__pte_pfn(old));
			}
			ntmm__ws_unlock_exclusive(q);
		}
		ntmm__pushlock_release_shared(&q->as_lock);
	}
	pthread_mutex_unlock(&e->virt.lock);
}

int ntmm_flush_view(ntmm_process_t *p, uint64_t va, size_t len)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	ntmm__rcu_thread_online();
	ntmm__pushlock_acquire_shared(&p->as_lock);
	ntmm__vad_map_t *m = atomic_load_explicit(&p->vads, memory_order_relaxed); /* as_lock */
	long vi = ntmm__vad_find(m, va);
	ntmm__vad_t *v = vi >= 0 ? m->vads[vi] : NULL;
	if (!v || !v->view) {
		ntmm__pushlock_release_shared(&p->as_lock);
		ntmm__rcu_thread_offline();
		return ntmm__error(NTMM_EINVAL, "%#llx is not inside a view",
		                   (unsigned long long)va);
	}
	uint64_t page = va & ~(uint64_t)(PAGE - 1);
	uint64_t end = len ? (va + len + PAGE - 1) & ~(uint64_t)(PAGE - 1) : v->end;
	if (len && (va + len < va || end > v->end)) {
		ntmm__pushlock_release_shared(&p->as_lock);
		ntmm__rcu_thread_offline();
		return ntmm__error(NTMM_EINVAL, "%#llx + %zu runs past the view's end",
		                   (unsigned long long)va, len);
	}
	ntmm__view_t *view = v->view;
	ntmm__segment_t *seg = view->seg;
	uint64_t first = view->first + (page - v->start) / PAGE, n = (end - page) / PAGE;
	if (seg->fd < 0 || view->cow) { /* nothing of it goes to a file */
		ntmm__pushlock_release_shared(&p->as_lock);
		ntmm__rcu_thread_offline();
		return 0;
	}
	/* a reference keeps the segment once as_lock goes (another
	   process's locks are taken next, never with ours held) */
	pthread_mutex_lock(&p->e->section.lock);
	seg->refs++;
	pthread_mutex_unlock(&p->e->section.lock);
	ntmm__pushlock_release_shared(&p->as_lock);
	harvest_dirty(p->e, seg, first, n);
	err = ntmm__segment_flush(seg, first, n, true);
	segment_put(seg);
	ntmm__rcu_thread_offline();
	return err;
}

/* ----------------------------------------------------------- the layer */

int ntmm__section_init(ntmm_engine_t *e)
{
	pthread_mutex_init(&e->section.lock, NULL);
	pthread_mutex_init(&e->section.write_lock, NULL);
	CDS_INIT_LIST_HEAD(&e->section.segments);
	atomic_store_explicit(&e->section.nsegments, 0, memory_order_relaxed);
	return 0;
}

void ntmm__section_fini(ntmm_engine_t *e)
{
	/* sections the program did not close: their views are gone with the
	   processes, so one reference each is left */
	for (;;) {
		pthread_mutex_lock(&e->section.lock);
		ntmm__segment_t *seg =
		    cds_list_empty(&e->section.segments)
		        ? NULL
		        : cds_list_first_entry(&e->section.segments, ntmm__segment_t, link);
		if (seg) {
			cds_list_del(&seg->link);
			atomic_fetch_sub_explicit(&e->section.nsegments, 1, memory_order_relaxed);
		}
		pthread_mutex_unlock(&e->section.lock);
		if (!seg)
			break;
		segment_delete(seg);
	}
	pthread_mutex_destroy(&e->section.write_lock);
	pthread_mutex_destroy(&e->section.lock);
}

/* ------------------------------------------------------------- audit */

typedef struct audit {
	ntmm_engine_t *e;
	int bad;
} audit_t;

static void audit_one(ntmm__segment_t *seg, uint64_t idx, _Atomic uint64_t *proto, void *arg)
{
	audit_t *a = arg;
	uint64_t v = atomic_load_explicit(proto, memory_order_relaxed);
	uint64_t addr = (uint64_t)(uintptr_t)proto;
	if (!ntmm__pte_is_valid(v) && !ntmm__pte_is_transition(v))
		return;
	ntmm__pfn_t pfn = ntmm__pte_pfn(v);
	ntmm__pfn_entry_t *pe = ntmm__vpfn(a->e, pfn);
	uint64_t s = atomic_load_explicit(&pe->state, memory_order_relaxed);
	if (atomic_load_explicit(&pe->pte, memory_order_relaxed) != addr) {
		fprintf(stderr, "ntmm audit: segment %p page %llu: pfn %u names another PTE\n",
		        (void *)seg, (unsigned long long)idx, pfn);
		a->bad++;
	}
	unsigned loc = ntmm__pfn_loc(s);
	if (ntmm__pte_is_valid(v) && (loc != NTMM__LOC_ACTIVE || ntmm__pfn_shares(s) == 0)) {
		fprintf(stderr,
		        "ntmm audit: segment %p page %llu: valid prototype, pfn %u location %u "
		        "share %u\n",
		        (void *)seg, (unsigned long long)idx, pfn, loc, ntmm__pfn_shares(s));
		a->bad++;
	}
	if (ntmm__pte_is_transition(v) && loc == NTMM__LOC_ACTIVE && ntmm__pfn_shares(s)) {
		fprintf(stderr,
		        "ntmm audit: segment %p page %llu: transition prototype, pfn %u mapped\n",
		        (void *)seg, (unsigned long long)idx, pfn);
		a->bad++;
	}
	if (seg->fd >= 0 && loc != NTMM__LOC_TRANSITION && !(s & NTMM__PFN_MAPPED)) {
		fprintf(stderr, "ntmm audit: segment %p page %llu: file page pfn %u not MAPPED\n",
		        (void *)seg, (unsigned long long)idx, pfn);
		a->bad++;
	}
}

/* Shares each process PTE gives a frame (counted per frame). */
typedef struct share_count {
	ntmm_engine_t *e;
	uint32_t *count; /* [nframes] */
} share_count_t;

static void count_leaf(ntmm_process_t *p, uint64_t va, _Atomic uint64_t *pte, void *arg)
{
	(void)va;
	share_count_t *c = arg;
	uint64_t v = atomic_load_explicit(pte, memory_order_relaxed);
	if (ntmm__pte_is_valid(v) && ntmm__pte_pfn(v) < p->e->phys.nframes)
		c->count[ntmm__pte_pfn(v)]++;
}

static void check_share(ntmm__segment_t *seg, uint64_t idx, _Atomic uint64_t *proto, void *arg)
{
	audit_t *a = ((audit_t **)arg)[0];
	share_count_t *c = ((share_count_t **)arg)[1];
	uint64_t v = atomic_load_explicit(proto, memory_order_relaxed);
	if (!ntmm__pte_is_valid(v))
		return;
	ntmm__pfn_t pfn = ntmm__pte_pfn(v);
	uint64_t s = atomic_load_explicit(&ntmm__vpfn(a->e, pfn)->state, memory_order_relaxed);
	if (ntmm__pfn_shares(s) != c->count[pfn]) {
		fprintf(stderr,
		        "ntmm audit: segment %p page %llu: pfn %u share count %u, %u process PTEs "
		        "map it\n",
		        (void *)seg, (unsigned long long)idx, pfn, ntmm__pfn_shares(s),
		        c->count[pfn]);
		a->bad++;
	}
}

typedef struct each {
	void (*fn)(uint64_t, uint64_t, void *);
	void *arg;
} each_t;

static void each_one(ntmm__segment_t *seg, uint64_t idx, _Atomic uint64_t *proto, void *arg)
{
	(void)seg;
	each_t *x = arg;
	x->fn(atomic_load_explicit(proto, memory_order_acquire), idx, x->arg);
}

void ntmm__section_each_proto(ntmm_engine_t *e, void (*fn)(uint64_t pte, uint64_t idx, void *arg),
                              void *arg)
{
	each_t x = {fn, arg};
	pthread_mutex_lock(&e->section.lock);
	for (struct cds_list_head *it = e->section.segments.next; it != &e->section.segments;
	     it = it->next)
		proto_each(caa_container_of(it, ntmm__segment_t, link), each_one, &x);
	pthread_mutex_unlock(&e->section.lock);
}

int ntmm__section_audit(ntmm_engine_t *e)
{
	audit_t a = {.e = e};
	share_count_t c = {.e = e, .count = NULL};
	pthread_mutex_lock(&e->section.lock);
	bool any = !cds_list_empty(&e->section.segments);
	if (any)
		c.count = calloc(e->phys.nframes, sizeof(*c.count));
	if (any && c.count) {
		/* the process PTEs (e->virt.lock is the caller's: ntmm__virt_audit
		   calls this after its own walk, with the locks released) */
		pthread_mutex_lock(&e->virt.lock);
		for (struct cds_list_head *it = e->virt.processes.next; it != &e->virt.processes;
		     it = it->next) {
			ntmm_process_t *p = caa_container_of(it, ntmm_process_t, link);
			ntmm__ws_lock_exclusive(p);
			ntmm__pt_walk(p, NTMM__VA_START, NTMM__VA_END, count_leaf, &c);
			ntmm__ws_unlock_exclusive(p);
		}
		pthread_mutex_unlock(&e->virt.lock);
	}
	for (struct cds_list_head *it = e->section.segments.next; it != &e->section.segments;
	     it = it->next) {
		ntmm__segment_t *seg = caa_container_of(it, ntmm__segment_t, link);
		proto_each(seg, audit_one, &a);
		if (c.count) {
			void *args[2] = {&a, &c};
			proto_each(seg, check_share, args);
		}
	}
	pthread_mutex_unlock(&e->section.lock);
	free(c.count);
	return a.bad;
}
