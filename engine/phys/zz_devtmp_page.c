/* TEMPORARY in h-virt (removed when h-phys is merged): one mutex, global
   state for one engine at a time. Replaced by h-phys. */
#include "engine.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static struct {
	ntmm_engine_t *e;
	char *pool;
	ntmm__pfn_entry_t *db;
	size_t n;
	pthread_mutex_t mu;
	ntmm__pfn_t free_head;
	ntmm__pfn_t sb_head, sb_tail;
} D = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define ST(p) atomic_load_explicit(&D.db[p].state, memory_order_relaxed)
static void setst(ntmm__pfn_t p, uint64_t s)
{
	uint64_t old = ST(p);
	if (ntmm__pfn_loc(old) != ntmm__pfn_loc(s))
		s += NTMM__PFN_GEN_ONE;
	atomic_store_explicit(&D.db[p].state, s, memory_order_release);
}
static void push_free(ntmm__pfn_t p)
{
	setst(p, (ST(p) & ~(NTMM__PFN_LOC_MASK | NTMM__PFN_MODIFIED | NTMM__PFN_DELETED |
	                    NTMM__PFN_SHARE_MASK | NTMM__PFN_REF_MASK)) |
	             NTMM__LOC_FREE);
	atomic_store_explicit(&D.db[p].pte, 0, memory_order_relaxed);
	D.db[p].next = D.free_head;
	D.free_head = p;
}
static void sb_push(ntmm__pfn_t p)
{
	setst(p, (ST(p) & ~NTMM__PFN_LOC_MASK) | NTMM__LOC_STANDBY);
	D.db[p].next = NTMM__PFN_NONE;
	D.db[p].prev = D.sb_tail;
	if (D.sb_tail != NTMM__PFN_NONE)
		D.db[D.sb_tail].next = p;
	else
		D.sb_head = p;
	D.sb_tail = p;
}
static void sb_unlink(ntmm__pfn_t p)
{
	ntmm__pfn_entry_t *x = &D.db[p];
	if (x->prev != NTMM__PFN_NONE)
		D.db[x->prev].next = x->next;
	else
		D.sb_head = x->next;
	if (x->next != NTMM__PFN_NONE)
		D.db[x->next].prev = x->prev;
	else
		D.sb_tail = x->prev;
}

int ntmm__devtmp_phys_init(ntmm_engine_t *e)
{
	D.e = e;
	D.n = e->cfg.physical_bytes / 4096;
	D.pool = mmap(NULL, e->cfg.physical_bytes, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	D.db = calloc(D.n, sizeof(*D.db));
	D.free_head = NTMM__PFN_NONE;
	D.sb_head = D.sb_tail = NTMM__PFN_NONE;
	for (size_t i = D.n; i-- > 0;)
		push_free((ntmm__pfn_t)i);
	return 0;
}
void ntmm__devtmp_phys_fini(ntmm_engine_t *e)
{
	munmap(D.pool, D.n * 4096);
	free(D.db);
	D.e = NULL;
}
int ntmm__devtmp_phys_audit(ntmm_engine_t *e)
{
	size_t active = 0, fr = 0, sb = 0, tr = 0;
	for (size_t i = 0; i < D.n; i++) {
		unsigned l = ntmm__pfn_loc(ST(i));
		active += l == NTMM__LOC_ACTIVE;
		fr += l == NTMM__LOC_FREE;
		sb += l == NTMM__LOC_STANDBY;
		tr += l == NTMM__LOC_TRANSITION;
	}
	if (getenv("NTMM_DEVTMP_VERBOSE"))
		fprintf(stderr, "devphys: active %zu free %zu standby %zu transition %zu\n", active,
		        fr, sb, tr);
	return tr ? NTMM_EINVAL : 0;
}
size_t ntmm__devtmp_active(void)
{
	size_t active = 0;
	for (size_t i = 0; i < D.n; i++)
		active += ntmm__pfn_loc(ST(i)) == NTMM__LOC_ACTIVE;
	return active;
}
ntmm__pfn_entry_t *ntmm__pfn(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	return &D.db[pfn];
}
void *ntmm__pfn_host(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	return D.pool + (size_t)pfn * 4096;
}
ntmm__pfn_t ntmm__host_pfn(ntmm_engine_t *e, const void *host)
{
	const char *h = host;
	if (h < D.pool || h >= D.pool + D.n * 4096)
		return NTMM__PFN_NONE;
	return (ntmm__pfn_t)((size_t)(h - D.pool) / 4096);
}
int ntmm__page_alloc(ntmm_engine_t *e, unsigned flags, int node, uint32_t colour_hint,
                     ntmm__pfn_t *out)
{
	pthread_mutex_lock(&D.mu);
	ntmm__pfn_t p = D.free_head;
	if (p != NTMM__PFN_NONE) {
		D.free_head = D.db[p].next;
	} else if (!(flags & NTMM__ALLOC_NO_STANDBY) && D.sb_head != NTMM__PFN_NONE) {
		p = D.sb_head;
		sb_unlink(p);
		ntmm__pfn_entry_t *x = &D.db[p];
		setst(p, (ST(p) & ~NTMM__PFN_LOC_MASK) | NTMM__LOC_ACTIVE);
		if (e->phys.repurpose)
			e->phys.repurpose(e, p, atomic_load(&x->pte),
			                  atomic_load(&x->original_pte));
	} else {
		pthread_mutex_unlock(&D.mu);
		return NTMM_ENOMEM;
	}
	setst(p, (ST(p) & ~(NTMM__PFN_LOC_MASK | NTMM__PFN_MODIFIED | NTMM__PFN_DELETED |
	                    NTMM__PFN_SHARE_MASK | NTMM__PFN_REF_MASK)) |
	             NTMM__LOC_ACTIVE | NTMM__PFN_SHARE_ONE);
	atomic_store(&D.db[p].pte, 0);
	atomic_store(&D.db[p].original_pte, 0);
	pthread_mutex_unlock(&D.mu);
	memset(D.pool + (size_t)p * 4096, 0, 4096);
	*out = p;
	return 0;
}
void ntmm__page_free(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	pthread_mutex_lock(&D.mu);
	ntmm__assert(ntmm__pfn_loc(ST(pfn)) == NTMM__LOC_ACTIVE);
	push_free(pfn);
	pthread_mutex_unlock(&D.mu);
}
static void move_on(ntmm__pfn_t p)
{
	if (ST(p) & NTMM__PFN_DELETED)
		push_free(p);
	else if (ST(p) & NTMM__PFN_MODIFIED)
		setst(p, (ST(p) & ~NTMM__PFN_LOC_MASK) | NTMM__LOC_MODIFIED);
	else
		sb_push(p);
}
bool ntmm__page_unmap(ntmm_engine_t *e, ntmm__pfn_t pfn, bool dirty, bool deleted)
{
	pthread_mutex_lock(&D.mu);
	uint64_t s = ST(pfn);
	ntmm__assert(ntmm__pfn_loc(s) == NTMM__LOC_ACTIVE && ntmm__pfn_shares(s) >= 1);
	s -= NTMM__PFN_SHARE_ONE;
	if (dirty)
		s |= NTMM__PFN_MODIFIED;
	if (deleted)
		s |= NTMM__PFN_DELETED;
	bool tr = ntmm__pfn_shares(s) == 0 && ntmm__pfn_refs(s) == 0;
	if (tr)
		s = (s & ~NTMM__PFN_LOC_MASK) | NTMM__LOC_TRANSITION;
	setst(pfn, s);
	pthread_mutex_unlock(&D.mu);
	return tr;
}
void ntmm__page_release_batch(ntmm_engine_t *e, const ntmm__pfn_t *pfns, size_t n)
{
	pthread_mutex_lock(&D.mu);
	for (size_t i = 0; i < n; i++) {
		uint64_t s = ST(pfns[i]);
		if (ntmm__pfn_loc(s) == NTMM__LOC_TRANSITION && ntmm__pfn_refs(s) == 0 &&
		    ntmm__pfn_shares(s) == 0)
			move_on(pfns[i]);
	}
	pthread_mutex_unlock(&D.mu);
}
int ntmm__page_reclaim(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr, bool write)
{
	pthread_mutex_lock(&D.mu);
	uint64_t s = ST(pfn);
	unsigned l = ntmm__pfn_loc(s);
	int r = NTMM_ECONFLICT;
	if ((l == NTMM__LOC_STANDBY || l == NTMM__LOC_MODIFIED || l == NTMM__LOC_TRANSITION) &&
	    atomic_load(&D.db[pfn].pte) == pte_addr) {
		if (l == NTMM__LOC_STANDBY)
			sb_unlink(pfn);
		setst(pfn, (s & ~(NTMM__PFN_LOC_MASK | NTMM__PFN_DELETED)) | NTMM__LOC_ACTIVE |
		               NTMM__PFN_SHARE_ONE);
		r = 0;
	}
	pthread_mutex_unlock(&D.mu);
	return r;
}
bool ntmm__page_delete_transition(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr)
{
	pthread_mutex_lock(&D.mu);
	uint64_t s = ST(pfn);
	unsigned l = ntmm__pfn_loc(s);
	bool r = false;
	if ((l == NTMM__LOC_STANDBY || l == NTMM__LOC_MODIFIED || l == NTMM__LOC_TRANSITION) &&
	    atomic_load(&D.db[pfn].pte) == pte_addr) {
		ntmm__assert(l != NTMM__LOC_TRANSITION);
		if (l == NTMM__LOC_STANDBY)
			sb_unlink(pfn);
		push_free(pfn);
		r = true;
	}
	pthread_mutex_unlock(&D.mu);
	return r;
}
void ntmm__page_ref(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	pthread_mutex_lock(&D.mu);
	setst(pfn, ST(pfn) + NTMM__PFN_REF_ONE);
	pthread_mutex_unlock(&D.mu);
}
void ntmm__page_unref(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
	pthread_mutex_lock(&D.mu);
	uint64_t s = ST(pfn) - NTMM__PFN_REF_ONE;
	setst(pfn, s);
	if (ntmm__pfn_refs(s) == 0 && ntmm__pfn_shares(s) == 0)
		move_on(pfn);
	pthread_mutex_unlock(&D.mu);
}
void ntmm__page_set_modified(ntmm_engine_t *e, ntmm__pfn_t pfn)
{
}
void ntmm__page_set_priority(ntmm_engine_t *e, ntmm__pfn_t pfn, unsigned prio)
{
}
