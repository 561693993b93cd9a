/*
 * Writing file pages back: the segment's file I/O (with the fault
 * injection tests use), the mapped page writer's batches over the mapped
 * Modified lists, and flushes of a view's range (ntmm_flush_view, segment
 * deletion).
 *
 * A batch takes up to its size of the oldest pages of the mapped Modified
 * lists (they become TRANSITION, WRITE_IN_PROGRESS, MODIFIED cleared), sorts
 * them by segment and page, and writes each run of pages contiguous in one
 * file with one vectored write; a page finishes on the tail of its Standby
 * priority, or back on the mapped Modified list if its write failed or it
 * was dirtied again meanwhile (a soft fault may map it during the write;
 * a write through that mapping sets the process PTE's Dirty bit, which
 * reaches the frame when the PTE is trimmed or unmapped).
 *
 * A flush writes the dirty pages of a range whatever list they are on: a
 * page mapped in a working set is written in place (a reference keeps it,
 * MODIFIED is cleared before the write, set again if the write fails); a
 * page on the mapped Modified list is taken back into memory for the write
 * (a soft fault of the flush itself) and let go after it.
 */
#include "engine.h"
#include "section/section.h"
#include "virt/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define PAGE      NTMM_PAGE_SIZE
#define RUN_PAGES 256u /* pages one write request carries at most */

/* true when the countdown *c says this request fails (and counts it) */
static bool inject(_Atomic uint64_t *c)
{
	uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
	while (v) {
		if (atomic_compare_exchange_weak_explicit(c, &v, v - 1, memory_order_relaxed,
		                                          memory_order_relaxed))
			return v == 1;
	}
	return false;
}

int ntmm__segment_pread(ntmm__segment_t *seg, void **pages, unsigned n, uint64_t first)
{
	if (inject(&seg->fail_read_in))
		return -EIO;
	struct iovec iov[RUN_PAGES];
	size_t total = (size_t)n * PAGE, got = 0;
	for (unsigned i = 0; i < n; i++)
		iov[i] = (struct iovec){pages[i], PAGE};
	while (got < total) {
		unsigned i = (unsigned)(got / PAGE);
		struct iovec local[RUN_PAGES];
		unsigned k = n - i;
		memcpy(local, iov + i, k * sizeof(*local));
		local[0].iov_base = (char *)local[0].iov_base + got % PAGE;
		local[0].iov_len -= got % PAGE;
		ssize_t r = preadv(seg->fd, local, (int)k, (off_t)(first * PAGE + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break; /* the end of the file: the rest reads as zero */
		got += (size_t)r;
	}
	for (size_t off = got; off < total;) {
		size_t in = off % PAGE, len = PAGE - in;
		memset((char *)pages[off / PAGE] + in, 0, len);
		off += len;
	}
	return 0;
}

int ntmm__segment_pwrite(ntmm__segment_t *seg, void **pages, unsigned n, uint64_t first)
{
	if (inject(&seg->fail_write_in))
		return -EIO;
	/* the file keeps its length: the last page is written up to its end */
	uint64_t fbytes = atomic_load_explicit(&seg->file_bytes, memory_order_relaxed);
	uint64_t start = first * PAGE;
	if (start >= fbytes)
		return 0;
	uint64_t total = (uint64_t)n * PAGE;
	if (total > fbytes - start)
		total = fbytes - start;
	uint64_t done = 0;
	while (done < total) {
		struct iovec iov[RUN_PAGES];
		unsigned k = 0;
		for (uint64_t off = done; off < total && k < RUN_PAGES; k++) {
			size_t in = (size_t)(off % PAGE), len = PAGE - in;
			if (len > total - off)
				len = (size_t)(total - off);
			iov[k] = (struct iovec){(char *)pages[off / PAGE] + in, len};
			off += len;
		}
		ssize_t r = pwritev(seg->fd, iov, (int)k, (off_t)(start + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (uint64_t)r;
	}
	return 0;
}

/* ------------------------------------------------------ writer batches */

typedef struct item {
	ntmm__segment_t *seg;
	uint64_t idx;
	ntmm__pfn_t pfn;
} item_t;

static int item_cmp(const void *a, const void *b)
{
	const item_t *x = a, *y = b;
	if (x->seg != y->seg)
		return (uintptr_t)x->seg < (uintptr_t)y->seg ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

size_t ntmm__section_write_batch(ntmm_engine_t *e, size_t max)
{
	ntmm__pfn_t pfns[NTMM__WRITE_BATCH];
	item_t items[NTMM__WRITE_BATCH];
	if (max > NTMM__WRITE_BATCH)
		max = NTMM__WRITE_BATCH;
	pthread_mutex_lock(&e->section.write_lock);
	size_t k = ntmm__page_mapped_take(e, NTMM__ALLOC_NODE_ANY, pfns, max);
	for (size_t i = 0; i < k; i++) {
		uint64_t addr =
		    atomic_load_explicit(&ntmm__vpfn(e, pfns[i])->pte, memory_order_relaxed);
		items[i].seg = ntmm__proto_segment(addr, &items[i].idx);
		items[i].pfn = pfns[i];
	}
	qsort(items, k, sizeof(items[0]), item_cmp);
	size_t written = 0;
	for (size_t i = 0; i < k;) {
		size_t j = i + 1;
		while (j < k && j - i < RUN_PAGES && items[j].seg == items[i].seg &&
		       items[j].idx == items[j - 1].idx + 1)
			j++;
		void *pages[RUN_PAGES];
		ntmm__pfn_t run[RUN_PAGES];
		for (size_t r = i; r < j; r++) {
			pages[r - i] = ntmm__pfn_host(e, items[r].pfn);
			run[r - i] = items[r].pfn;
		}
		int err =
		    ntmm__segment_pwrite(items[i].seg, pages, (unsigned)(j - i), items[i].idx);
		ntmm__page_writer_done(e, run, NULL, j - i, err == 0);
		if (err) {
			NTMM__STAT_ADD(&e->stats, io_errors, 1);
		} else {
			written += j - i;
			NTMM__STAT_ADD(&e->stats, mapped_pages_written, j - i);
			NTMM__STAT_ADD(&e->stats, mapped_write_ios, 1);
		}
		i = j;
	}
	pthread_mutex_unlock(&e->section.write_lock);
	if (written)
		ntmm__event_signal(&e->virt.paging.avail);
	return written;
}

static size_t mapped_modified(ntmm_engine_t *e)
{
	size_t n = 0;
	for (unsigned i = 0; i < e->phys.nnodes; i++)
		n += atomic_load_explicit(&e->phys.nodes[i].modified_mapped_pub,
		                          memory_order_relaxed);
	return n;
}

size_t ntmm__section_writer_pass(ntmm_engine_t *e)
{
	size_t now = mapped_modified(e);
	/* pages that waited a whole pass are old enough; all of them when
	   memory is low */
	size_t want = e->section.aged < now ? e->section.aged : now;
	/* a list past half the writer mark (the allocator's wake at the
	   mark) goes down to it: dirty file pages must not fill the frames */
	size_t half = atomic_load_explicit(&e->phys.modified_high, memory_order_relaxed) / 2;
	if (now > half && now - half > want)
		want = now - half;
	if (ntmm__phys_available(e) < e->phys.nframes / 16)
		want = now;
	size_t written = 0;
	while (written < want) {
		size_t w = ntmm__section_write_batch(e, want - written);
		if (!w)
			break;
		written += w;
	}
	e->section.aged = mapped_modified(e);
	return written;
}

/* --------------------------------------------------------------- flush */

/* A page the flush holds for its write. */
typedef struct held {
	ntmm__pfn_t pfn;
	bool reclaimed; /* taken off the mapped Modified list (else referenced) */
} held_t;

static uint64_t clear_modified_next(uint64_t s, void *arg)
{
	(void)arg;
	return (s & NTMM__PFN_MODIFIED) ? s & ~NTMM__PFN_MODIFIED : NTMM__PFN_DECLINE;
}

/* true if the frame was MODIFIED (and is now clean) */
static bool clear_modified(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	return ntmm__pfn_update(ntmm__vpfn(e, pfn), clear_modified_next, NULL) != NTMM__PFN_DECLINE;
}

/* Holds segment page idx for a write if it is dirty: true with *h. */
static bool hold_dirty(ntmm__segment_t *seg, uint64_t idx, _Atomic uint64_t *proto, held_t *h)
{
	ntmm_engine_t *e = seg->e;
	pthread_mutex_t *lk = ntmm__proto_stripe(seg, idx);
	pthread_mutex_lock(lk);
	uint64_t v = atomic_load_explicit(proto, memory_order_acquire);
	bool held = false;
	if (ntmm__pte_is_valid(v)) {
		ntmm__pfn_t pfn = ntmm__pte_pfn(v);
		ntmm__page_ref(e, pfn); /* ACTIVE: it stays for the write */
		if (clear_modified(e, pfn)) {
			*h = (held_t){pfn, false};
			held = true;
		} else {
			pthread_mutex_unlock(lk);
			ntmm__page_unref(e, pfn);
			return false;
		}
	} else if (ntmm__pte_is_transition(v)) {
		ntmm__pfn_t pfn = ntmm__pte_pfn(v);
		uint64_t s = atomic_load_explicit(&ntmm__vpfn(e, pfn)->state, memory_order_acquire);
		/* on the mapped Modified list, or on its way there (a share just
		   dropped, awaiting its grace period) */
		unsigned loc = ntmm__pfn_loc(s);
		if ((loc == NTMM__LOC_MODIFIED ||
		     (loc == NTMM__LOC_TRANSITION && (s & NTMM__PFN_MODIFIED) &&
		      !(s & (NTMM__PFN_READ_IN_PROGRESS | NTMM__PFN_WRITE_IN_PROGRESS)))) &&
		    ntmm__page_reclaim(e, pfn, (uint64_t)(uintptr_t)proto, false) == 0) {
			atomic_store_explicit(proto, ntmm__pte_make_valid(pfn, 0, 0),
			                      memory_order_release);
			clear_modified(e, pfn);
			*h = (held_t){pfn, true};
			held = true;
		}
	}
	pthread_mutex_unlock(lk);
	return held;
}

static void let_go(ntmm_engine_t *e, const held_t *h, bool ok)
{
	if (!ok)
		ntmm__page_set_modified(e, h->pfn);
	if (h->reclaimed)
		ntmm__section_unshare_deferred(e, h->pfn);
	else
		ntmm__page_unref(e, h->pfn);
}

static int write_run(ntmm__segment_t *seg, held_t *run, unsigned n, uint64_t first)
{
	ntmm_engine_t *e = seg->e;
	void *pages[RUN_PAGES];
	for (unsigned i = 0; i < n; i++)
		pages[i] = ntmm__pfn_host(e, run[i].pfn);
	int err = ntmm__segment_pwrite(seg, pages, n, first);
	for (unsigned i = 0; i < n; i++)
		let_go(e, &run[i], err == 0);
	if (err) {
		NTMM__STAT_ADD(&e->stats, io_errors, 1);
		return ntmm__error(NTMM_EIO, "writing %u mapped-file pages at %#llx: %s", n,
		                   (unsigned long long)(first * PAGE), strerror(-err));
	}
	NTMM__STAT_ADD(&e->stats, mapped_pages_written, n);
	NTMM__STAT_ADD(&e->stats, mapped_write_ios, 1);
	return 0;
}

int ntmm__segment_flush(ntmm__segment_t *seg, uint64_t first, uint64_t n, bool sync)
{
	ntmm_engine_t *e = seg->e;
	if (seg->fd < 0)
		return 0;
	int err = 0;
	held_t run[RUN_PAGES];
	unsigned nrun = 0;
	uint64_t run_first = 0;
	pthread_mutex_lock(&e->section.write_lock);
	for (uint64_t i = first; i < first + n; i++) {
		_Atomic uint64_t *proto = ntmm__proto(seg, i, false);
		held_t h;
		bool dirty = proto && hold_dirty(seg, i, proto, &h);
		if (nrun && (!dirty || nrun == RUN_PAGES)) {
			int r = write_run(seg, run, nrun, run_first);
			err = err ? err : r;
			nrun = 0;
		}
		if (dirty) {
			if (!nrun)
				run_first = i;
			run[nrun++] = h;
		}
		if (!proto) /* no chunk: skip to the next one */
			i = (i / NTMM__PROTO_PER_CHUNK + 1) * NTMM__PROTO_PER_CHUNK - 1;
	}
	if (nrun) {
		int r = write_run(seg, run, nrun, run_first);
		err = err ? err : r;
	}
	pthread_mutex_unlock(&e->section.write_lock);
	if (!err && sync && fdatasync(seg->fd)) {
		NTMM__STAT_ADD(&e->stats, io_errors, 1);
		err = ntmm__error(NTMM_EIO, "fdatasync of the mapped file: %s", strerror(errno));
	}
	return err;
}
