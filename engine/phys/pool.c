/*
 * The frame pool: one host mapping for all nodes, carved into 2 MiB chunks,
 * each node owning a contiguous run of chunks (bound to it with mbind on a
 * real multi-node machine). The backing is chosen once, at create:
 *   hugetlb — a hugetlb memfd mapped shared; the whole pool is reserved at
 *             mmap; chunks are released by hole punching (fallocate)
 *   THP     — private anonymous memory with MADV_HUGEPAGE; released with
 *             MADV_DONTNEED
 *   4K      — private anonymous memory with MADV_NOHUGEPAGE; likewise
 * Chunks are committed lazily (MADV_POPULATE_WRITE) when a node's lists run
 * dry, and their fresh, kernel-zeroed frames enter the Zeroed list; wholly
 * free chunks go back to the OS on request (cache reduction), so the
 * engine's RSS follows its use.
 *
 * The PFN database grows the same way: init reserves address space for
 * every entry (PROT_NONE, nothing committed), and a chunk's entries are
 * made writable, populated and set OFFLINE the first time the chunk is
 * committed. Nothing is done per frame for chunks never used, so a pool far
 * larger than the machine costs a chunk table (6 bytes per 2 MiB) until it
 * is used; what the machine cannot back is NTMM_ENOMEM, not a kill.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* 2 MiB hugetlb pages free and not reserved by anyone: what a new
   reservation can get. */
static long hugetlb_available(void)
{
	long fr = read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
	long rs = read_long("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages");
	if (fr < 0)
		return 0;
	return fr - (rs > 0 ? rs : 0);
}

static bool thp_available(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char buf[128] = "";
	if (!f)
		return false;
	bool ok = fgets(buf, sizeof(buf), f) && !strstr(buf, "[never]");
	fclose(f);
	return ok;
}

static int map_hugetlb(ntmm__phys_t *ph)
{
	int fd = memfd_create("ntmm-pool", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB);
	if (fd < 0)
		return ntmm__error(NTMM_ENOTSUP, "hugetlb backing: memfd_create(MFD_HUGETLB): %s",
		                   strerror(errno));
	if (ftruncate(fd, (off_t)ph->bytes)) {
		int er = errno;
		close(fd);
		return ntmm__error(NTMM_ENOMEM, "hugetlb backing: ftruncate: %s", strerror(er));
	}
	/* Shared, without MAP_NORESERVE: the kernel reserves every huge page of
	   the pool now, so the pool cannot be short later (until a released
	   chunk's pages are taken by someone else). */
	void *p = mmap(NULL, ph->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int er = errno;
		close(fd);
		return ntmm__error(
		    NTMM_ENOMEM,
		    "hugetlb backing: cannot reserve %zu huge pages (%ld available): %s",
		    (size_t)(ph->bytes / NTMM__CHUNK_BYTES), hugetlb_available(), strerror(er));
	}
	ph->host = p;
	ph->memfd = fd;
	return 0;
}

static int map_anon(ntmm__phys_t *ph, bool thp)
{
	size_t len = ph->bytes + NTMM__CHUNK_BYTES;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return ntmm__error(NTMM_ENOMEM, "pool mapping of %zu bytes: %s", ph->bytes,
		                   strerror(errno));
	/* align to 2 MiB so each chunk can be one huge page */
	uint8_t *a = (uint8_t *)(((uintptr_t)p + NTMM__CHUNK_BYTES - 1) & ~(NTMM__CHUNK_BYTES - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (a + ph->bytes < p + len)
		munmap(a + ph->bytes, (size_t)(p + len - (a + ph->bytes)));
	if (madvise(a, ph->bytes, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) && thp) {
		int er = errno;
		munmap(a, ph->bytes);
		return ntmm__error(NTMM_ENOTSUP, "THP backing: madvise(MADV_HUGEPAGE): %s",
		                   strerror(er));
	}
	ph->host = a;
	return 0;
}

static int map_pool(ntmm_engine_t *e)
{
	ntmm__phys_t *ph = &e->phys;
	long need = (long)(ph->bytes / NTMM__CHUNK_BYTES);
	switch (e->cfg.backing) {
	case NTMM_BACKING_HUGETLB: {
		long avail = hugetlb_available();
		if (avail <= 0)
			return ntmm__error(
			    NTMM_ENOTSUP, "hugetlb backing forced but no 2 MiB huge pages are free "
			                  "(reserve them with /proc/sys/vm/nr_hugepages)");
		if (avail < need)
			return ntmm__error(NTMM_ENOMEM,
			                   "hugetlb backing forced: the pool needs %ld huge pages, "
			                   "%ld are free",
			                   need, avail);
		ph->backing = NTMM_BACKING_HUGETLB;
		ph->backing_note = "forced";
		return map_hugetlb(ph);
	}
	case NTMM_BACKING_THP:
		if (!thp_available())
			return ntmm__error(NTMM_ENOTSUP, "THP backing forced but transparent huge "
			                                 "pages are disabled here");
		ph->backing = NTMM_BACKING_THP;
		ph->backing_note = "forced";
		return map_anon(ph, true);
	case NTMM_BACKING_4K:
		ph->backing = NTMM_BACKING_4K;
		ph->backing_note = "forced";
		return map_anon(ph, false);
	default:
		break;
	}
	/* AUTO: hugetlb when enough pages are reserved, else THP, else 4K */
	if (hugetlb_available() >= need) {
		ph->backing = NTMM_BACKING_HUGETLB;
		ph->backing_note = "auto: enough hugetlb pages reserved";
		if (map_hugetlb(ph) == 0)
			return 0;
	}
	if (thp_available()) {
		ph->backing = NTMM_BACKING_THP;
		ph->backing_note = "auto: too few hugetlb pages; THP enabled";
		if (map_anon(ph, true) == 0)
			return 0;
	}
	ph->backing = NTMM_BACKING_4K;
	ph->backing_note = "auto: no hugetlb pages, THP unavailable";
	return map_anon(ph, false);
}

/* Bytes of PFN entries per chunk: whole pages, so a chunk's entries can be
   populated on their own. */
#define CHUNK_DB_BYTES ((size_t)NTMM__CHUNK_FRAMES * sizeof(ntmm__pfn_entry_t))
_Static_assert(CHUNK_DB_BYTES % 4096 == 0, "a chunk's PFN entries fill whole pages");

int ntmm__pool_init(ntmm_engine_t *e)
{
	ntmm__phys_t *ph = &e->phys;
	ph->bytes = e->cfg.physical_bytes;
	ph->nframes = ph->bytes >> NTMM__PAGE_SHIFT;
	ph->nchunks = (uint32_t)(ph->bytes >> NTMM__CHUNK_SHIFT);

	/* calloc: untouched pages of a large table stay unbacked; only nodes
	   other than 0 write their chunks' node numbers below */
	ph->chunks = calloc(ph->nchunks, sizeof(*ph->chunks));
	if (!ph->chunks)
		return ntmm__error(NTMM_ENOMEM, "chunk table of %zu bytes for %zu bytes of pool",
		                   (size_t)ph->nchunks * sizeof(*ph->chunks), ph->bytes);
	/* the whole database as a reservation: PROT_NONE is neither committed
	   (overcommit accounting) nor readable, so a walker that forgets
	   ntmm__pfn_populated faults at once instead of reading zeros */
	ph->db_bytes = (size_t)ph->nchunks * CHUNK_DB_BYTES;
	void *db =
	    mmap(NULL, ph->db_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (db == MAP_FAILED) {
		int er = errno;
		free(ph->chunks);
		ph->chunks = NULL;
		return ntmm__error(NTMM_ENOMEM,
		                   "cannot reserve %zu bytes of address space for the PFN database "
		                   "of a %zu-byte pool: %s",
		                   ph->db_bytes, ph->bytes, strerror(er));
	}
	ph->pfndb = db;
	int err = map_pool(e);
	if (err) {
		munmap(ph->pfndb, ph->db_bytes);
		free(ph->chunks);
		ph->pfndb = NULL;
		ph->chunks = NULL;
		return err;
	}

	/* node n gets chunks/nnodes chunks, the first chunks%nnodes one more */
	uint32_t per = ph->nchunks / ph->nnodes, extra = ph->nchunks % ph->nnodes, c = 0;
	for (unsigned n = 0; n < ph->nnodes; n++) {
		ntmm__node_t *nd = &ph->nodes[n];
		nd->first_chunk = c;
		nd->nchunks = per + (n < extra ? 1 : 0);
		nd->first_pfn = c * NTMM__CHUNK_FRAMES;
		nd->nframes = (size_t)nd->nchunks * NTMM__CHUNK_FRAMES;
		for (uint32_t i = 0; i < nd->nchunks && n > 0; i++)
			ph->chunks[c + i].node = (uint8_t)n;
		if (ntmm__topo_bind(&ph->topo, n, ph->host + (size_t)c * NTMM__CHUNK_BYTES,
		                    (size_t)nd->nchunks * NTMM__CHUNK_BYTES) == 0 &&
		    !ph->topo.synthetic && ph->nnodes > 1)
			ph->bound = true;
		c += nd->nchunks;
	}
	return 0;
}

/* Makes chunk's PFN entries accessible and backed, and sets them OFFLINE.
   Caller holds the chunk's node grow_lock. MADV_POPULATE_WRITE turns a
   machine that cannot back the pages into an error here instead of an OOM
   kill at the first store. */
static int populate_chunk_db(ntmm__phys_t *ph, uint32_t chunk)
{
	ntmm__assert_mutex_held(&ph->nodes[ph->chunks[chunk].node].grow_lock);
	ntmm__pfn_entry_t *first = ph->pfndb + (size_t)chunk * NTMM__CHUNK_FRAMES;
	if (mprotect(first, CHUNK_DB_BYTES, PROT_READ | PROT_WRITE))
		return ntmm__error(NTMM_ENOMEM,
		                   "PFN database: cannot commit %zu bytes for chunk %u: %s",
		                   CHUNK_DB_BYTES, chunk, strerror(errno));
	if (madvise(first, CHUNK_DB_BYTES, MADV_POPULATE_WRITE) && errno != EINVAL) {
		int er = errno;
		mprotect(first, CHUNK_DB_BYTES, PROT_NONE);
		return ntmm__error(NTMM_ENOMEM,
		                   "PFN database: cannot back %zu bytes for chunk %u: %s",
		                   CHUNK_DB_BYTES, chunk, strerror(er));
	}
	for (size_t i = 0; i < NTMM__CHUNK_FRAMES; i++) {
		ntmm__pfn_entry_t *p = &first[i];
		atomic_init(&p->state, NTMM__LOC_OFFLINE);
		atomic_init(&p->pte, 0);
		atomic_init(&p->original_pte, 0);
		p->next = p->prev = NTMM__PFN_NONE;
	}
	/* release: pairs with the acquire in ntmm__pfn_populated, so a walker
	   that sees the flag sees the initialised entries */
	atomic_store_explicit(&ph->chunks[chunk].populated, 1, memory_order_release);
	return 0;
}

void ntmm__pool_fini(ntmm_engine_t *e)
{
	ntmm__phys_t *ph = &e->phys;
	if (ph->host)
		munmap(ph->host, ph->bytes);
	if (ph->memfd >= 0)
		close(ph->memfd);
	if (ph->pfndb)
		munmap(ph->pfndb, ph->db_bytes);
	free(ph->chunks);
	ph->host = NULL;
	ph->pfndb = NULL;
	ph->chunks = NULL;
	ph->memfd = -1;
}

/* Backs one chunk with memory. MADV_POPULATE_WRITE (Linux ≥ 5.14) faults
   every page in writable without touching it from user space; failure is
   reported, never a SIGBUS. */
static int commit_chunk(ntmm__phys_t *ph, uint32_t chunk)
{
	uint8_t *a = ph->host + (size_t)chunk * NTMM__CHUNK_BYTES;
	if (madvise(a, NTMM__CHUNK_BYTES, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno == EINVAL && ph->memfd < 0) {
		/* older kernel: touch each page (anonymous memory only; a touch
		   of a missing hugetlb page would be a SIGBUS) */
		for (size_t off = 0; off < NTMM__CHUNK_BYTES; off += 4096)
			((volatile uint8_t *)a)[off] = 0;
		return 0;
	}
	return -errno;
}

static int release_chunk(ntmm__phys_t *ph, uint32_t chunk)
{
	size_t off = (size_t)chunk * NTMM__CHUNK_BYTES;
	if (ph->memfd >= 0) {
		if (fallocate(ph->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
		              NTMM__CHUNK_BYTES))
			return -errno;
		return 0;
	}
	return madvise(ph->host + off, NTMM__CHUNK_BYTES, MADV_DONTNEED) ? -errno : 0;
}

bool ntmm__pool_grow(ntmm_engine_t *e, unsigned node)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__node_t *n = &ph->nodes[node];
	bool added = false;
	/* every chunk committed (the steady state under pressure): nothing to
	   grow, and no lock or chunk scan on the allocator's slow path (taking
	   grow_lock here on every allocation under pressure showed in the
	   demo's fault tail). relaxed: the caller found the lists empty in a
	   free_lock section; a release lowers the count in the free_lock
	   section that empties the lists of its chunk, so if the caller's
	   emptiness came from a release, the mutex made the lower count
	   visible here and we go on to recommit */
	if (atomic_load_explicit(&n->committed_chunks, memory_order_relaxed) >= n->nchunks)
		return false;
	pthread_mutex_lock(&n->grow_lock);
	pthread_mutex_lock(&n->free_lock);
	bool have = n->zeroed_count + n->free_count > 0;
	pthread_mutex_unlock(&n->free_lock);
	if (have) {
		/* another thread committed a chunk while we waited */
		pthread_mutex_unlock(&n->grow_lock);
		return true;
	}
	for (uint32_t i = 0; i < n->nchunks && !added; i++) {
		uint32_t c = n->first_chunk + (n->grow_hint + i) % n->nchunks;
		if (ph->chunks[c].committed)
			continue;
		/* relaxed: only grow_lock holders store the flag */
		if (!atomic_load_explicit(&ph->chunks[c].populated, memory_order_relaxed) &&
		    populate_chunk_db(ph, c))
			break; /* the detail names the size; try no further on this node */
		int err = commit_chunk(ph, c);
		if (err) {
			/* out of memory (or huge pages): try no further on this node */
			ntmm__error(NTMM_ENOMEM,
			            "cannot commit chunk %u (%llu bytes) of the pool: %s", c,
			            NTMM__CHUNK_BYTES, strerror(-err));
			break;
		}
		pthread_mutex_lock(&n->free_lock);
		ph->chunks[c].committed = 1;
		ntmm__pfn_t first = c * NTMM__CHUNK_FRAMES;
		for (ntmm__pfn_t pfn = first; pfn < first + NTMM__CHUNK_FRAMES; pfn++) {
			ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
			uint64_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
			ntmm__pfn_store(p, s, ntmm__pfn_listed(s, NTMM__LOC_ZEROED));
			ntmm__freelist_put(ph, n, true, pfn);
		}
		ntmm__node_pub_free(n);
		pthread_mutex_unlock(&n->free_lock);
		n->grow_hint = c - n->first_chunk + 1;
		atomic_fetch_add_explicit(&n->committed_chunks, 1, memory_order_relaxed);
		NTMM__STAT_ADD(&e->stats, chunk_commits, 1);
		added = true;
	}
	pthread_mutex_unlock(&n->grow_lock);
	return added;
}

size_t ntmm__pool_release(ntmm_engine_t *e, unsigned node, size_t keep)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__node_t *n = &ph->nodes[node];
	size_t released = 0;
	pthread_mutex_lock(&n->grow_lock);
	for (uint32_t i = 0; i < n->nchunks; i++) {
		uint32_t c = n->first_chunk + i;
		pthread_mutex_lock(&n->free_lock);
		if (n->zeroed_count + n->free_count < keep + NTMM__CHUNK_FRAMES) {
			pthread_mutex_unlock(&n->free_lock);
			break;
		}
		if (!ph->chunks[c].committed || ph->chunks[c].listed != NTMM__CHUNK_FRAMES) {
			pthread_mutex_unlock(&n->free_lock);
			continue;
		}
		ntmm__pfn_t first = c * NTMM__CHUNK_FRAMES;
		for (ntmm__pfn_t pfn = first; pfn < first + NTMM__CHUNK_FRAMES; pfn++) {
			ntmm__pfn_entry_t *p = ntmm__pfe(ph, pfn);
			uint64_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
			ntmm__assert(ntmm__pfn_loc(s) <= NTMM__LOC_FREE);
			ntmm__freelist_remove(ph, n, ntmm__pfn_loc(s) == NTMM__LOC_ZEROED, pfn);
			ntmm__pfn_store(p, s, ntmm__pfn_listed(s, NTMM__LOC_OFFLINE));
		}
		ph->chunks[c].committed = 0;
		/* lowered in the same free_lock section that took the frames off
		   the lists: an allocator that then finds the lists empty (in its
		   own free_lock section) sees the lower count (pool_grow) */
		atomic_fetch_sub_explicit(&n->committed_chunks, 1, memory_order_relaxed);
		ntmm__node_pub_free(n);
		pthread_mutex_unlock(&n->free_lock);
		/* outside free_lock: the frames are OFFLINE and grow_lock keeps the
		   chunk from being recommitted until the OS has it back */
		int err = release_chunk(ph, c);
		if (err)
			fprintf(stderr, "ntmm: releasing chunk %u: %s\n", c, strerror(-err));
		NTMM__STAT_ADD(&e->stats, chunk_releases, 1);
		released++;
	}
	pthread_mutex_unlock(&n->grow_lock);
	return released;
}
