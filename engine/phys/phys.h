/*
 * The physical-memory layer (DESIGN.md §2–3): topology, frame pool, PFN
 * database, per-node page lists with per-CPU caches, the zeroing pass and
 * the audit. This header holds the layer's structs and its cross-file
 * internals; the layers above use page.h only.
 *
 * Files: topology.c (hwloc), pool.c (the host mapping, backing, chunk
 * commit/release), pfn.c (state machine), pagelist.c (list primitives),
 * alloc.c (allocation order, per-CPU caches, free), page.c (unmap, release,
 * reclaim, references, writer), zero.c (zeroing), audit.c, phys.c
 * (init/fini/gauges).
 *
 * Lock order: per-CPU slot flag → node standby_lock → node free_lock;
 * grow_lock is taken with no other lock held and may take free_lock.
 */
#ifndef NTMM_PHYS_PHYS_H
#define NTMM_PHYS_PHYS_H

#include <ntmm.h>
#include <ntmm/stats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "debug.h"
#include "phys/page.h"
#include "sync/lockdep.h"
#include "sync/event.h"

#define NTMM__PAGE_SHIFT    12
#define NTMM__CHUNK_SHIFT   21 /* 2 MiB chunks */
#define NTMM__CHUNK_BYTES   (1ull << NTMM__CHUNK_SHIFT)
#define NTMM__CHUNK_FRAMES  (1u << (NTMM__CHUNK_SHIFT - NTMM__PAGE_SHIFT))
#define NTMM__MAX_NODES     64
#define NTMM__MAX_COLOURS   64
#define NTMM__STANDBY_PRIOS 8
/* Per-CPU magazine capacity (each kind) and frames moved per refill/drain.
   A refill's cost is mostly node-list lines another CPU wrote last, so
   fewer, larger refills: 128/64 against 64/32 made the demand-zero fault
   99 -> 93 ns on one thread and 61 -> 56 ns a fault on two, with the same
   demo tail. */
#define NTMM__MAG        128
#define NTMM__MAG_BATCH  64
#define NTMM__MAG_SCAN   32 /* entries searched for a colour match */
#define NTMM__ZERO_BATCH 16 /* frames per zeroing round */

/* ------------------------------------------------------------- topology */

/*
 * What hwloc told us (or the synthetic string described), read-only after
 * init. Node numbers are dense 0..nnodes-1 (hwloc logical indices).
 *   cpu_node[c]  node of OS CPU c for c < ncpus (the engine's CPU slots);
 *                with a synthetic topology the machine's CPUs are dealt
 *                round-robin over the synthetic nodes (c % nnodes), so
 *                multi-node logic runs on a one-node machine
 *   distance     NUMA distance (10 = local); from the OS matrix when hwloc
 *                has one, else 10 + 10 × (tree levels up to the nearest
 *                common ancestor)
 *   order[n]     all nodes sorted by distance from n (n itself first)
 */
typedef struct ntmm__topo {
	struct hwloc_topology *hw;
	bool synthetic;
	unsigned nnodes;
	unsigned ncpus;
	unsigned *cpu_node;
	unsigned distance[NTMM__MAX_NODES][NTMM__MAX_NODES];
	unsigned char order[NTMM__MAX_NODES][NTMM__MAX_NODES];
	unsigned ncolours;                 /* page colours: L2 size / (ways × 4 KiB), power of 2 */
	unsigned os_node[NTMM__MAX_NODES]; /* OS node number, for binding */
} ntmm__topo_t;

int ntmm__topo_init(ntmm__topo_t *t, const char *synthetic, unsigned ncpus);
void ntmm__topo_fini(ntmm__topo_t *t);
/* Binds [addr, addr+len) to node (no-op on synthetic or one-node
   topologies). Returns 0 or -errno (the caller decides whether it matters). */
int ntmm__topo_bind(ntmm__topo_t *t, unsigned node, void *addr, size_t len);

/* ------------------------------------------------------------ page lists */

/* A doubly-linked list of frames through ntmm__pfn_entry_t.next/prev (PFN
   indices, NTMM__PFN_NONE-terminated). Guarded by the lock of the node that
   owns it; count == number of frames reachable from head. */
typedef struct ntmm__plist {
	ntmm__pfn_t head, tail;
	size_t count;
} ntmm__plist_t;

/*
 * One 2 MiB chunk of the pool.
 *   committed — chunk is backed by memory; its frames are not OFFLINE.
 *               Changed under the node's grow_lock AND free_lock; read
 *               under either.
 *   listed    — how many of its frames are on the node's Free/Zeroed lists
 *               (free_lock). listed == NTMM__CHUNK_FRAMES means the whole
 *               chunk is free and not in any cache: it may be released.
 *   populated — the chunk's PFN entries are backed and initialised (see
 *               pfndb in ntmm__phys_t). Set once, under grow_lock, before
 *               the chunk is first committed (release store); never
 *               cleared. committed ⇒ populated; a walker of the PFN
 *               database reads an entry only if its chunk is populated
 *               (acquire load, ntmm__pfn_populated).
 */
typedef struct ntmm__chunk {
	uint16_t listed;
	uint8_t committed;
	uint8_t node;
	_Atomic uint8_t populated;
} ntmm__chunk_t;

/*
 * Per-node page lists and chunk bookkeeping. Cache-line aligned; the three
 * lock groups sit on separate lines.
 *
 * Why the lists are linked lists under a mutex (not lazy removal, not a
 * spinlock): a soft fault must remove one given Standby/Modified frame, and
 * chunk release must pull all 512 frames of a chunk off Free/Zeroed; with
 * index links under the list lock both are O(1) per frame and the audit can
 * check exact counts, while lazy removal would leave stale hints that every
 * reader has to skip and that keep chunks from ever looking wholly free.
 * The node lists are off the hot path (the per-CPU caches move frames in
 * batches of NTMM__MAG_BATCH), so the lock is taken about once per 32
 * allocations. It is a pthread mutex, not a spinlock: the zero page thread
 * and other system threads may run SCHED_FIFO on a 2-core machine, and a
 * FIFO thread spinning on a lock held by a preempted normal thread on the
 * same CPU never lets it run; the futex sleeps instead. (The pushlock is
 * not used: these sections are short and always exclusive.)
 *
 * Invariants (free_lock held):
 *   zeroed[c], free_[c]  frames of colour c in ZEROED / FREE location;
 *                        bit c of zeroed_mask / free_mask ⇔ list non-empty
 *   zeroed_count = Σ zeroed[c].count, free_count = Σ free_[c].count
 *   zbatch[0..zbatch_n)  FREE frames taken by the zeroing pass, off-list
 *   bad                  BAD frames (never handed out)
 *   Σ chunk.listed over the node = zeroed_count + free_count
 * Invariants (standby_lock held): standby[p] holds STANDBY frames of
 * priority p; modified / modified_nowrite hold MODIFIED / MODIFIED_NOWRITE
 * frames, modified_mapped the MODIFIED frames with MAPPED set.
 * Read without the lock: the *_pub mirrors (relaxed), for gauges and the
 * zero thread's wake test — approximate by design.
 */
typedef struct ntmm__node {
	/* free_lock group */
	pthread_mutex_t free_lock;
	ntmm__plist_t zeroed[NTMM__MAX_COLOURS];
	ntmm__plist_t free_[NTMM__MAX_COLOURS];
	uint64_t zeroed_mask, free_mask;
	size_t zeroed_count, free_count;
	ntmm__plist_t bad;
	unsigned colour_cursor; /* round-robin start for batch takes */
	ntmm__pfn_t zbatch[NTMM__ZERO_BATCH];
	unsigned zbatch_n;
	_Atomic size_t zeroed_pub, free_pub, bad_pub;

	/* standby_lock group */
	pthread_mutex_t standby_lock NTMM__ALIGNED_CL;
	ntmm__plist_t standby[NTMM__STANDBY_PRIOS];
	ntmm__plist_t modified, modified_nowrite;
	ntmm__plist_t modified_mapped; /* MODIFIED frames with MAPPED set */
	_Atomic size_t standby_pub[NTMM__STANDBY_PRIOS];
	_Atomic size_t modified_pub, modified_nowrite_pub, modified_mapped_pub;

	/* grow_lock group: chunk commit/release */
	pthread_mutex_t grow_lock NTMM__ALIGNED_CL;
	uint32_t first_chunk, nchunks; /* the node's chunks, read-only after init */
	uint32_t grow_hint;            /* next chunk to try (grow_lock) */
	_Atomic uint32_t committed_chunks;

	/* read-only after init, plus the zero thread hook */
	ntmm__pfn_t first_pfn NTMM__ALIGNED_CL;
	size_t nframes;
	size_t zero_high;                   /* zeroing stops above this many Zeroed */
	_Atomic(ntmm__event_t *) zero_wake; /* zero thread's wake event, or NULL */
} NTMM__ALIGNED_CL ntmm__node_t;

/*
 * Per-CPU cache (magazines) in front of the CPU's node lists. Indexed by
 * sched_getcpu(), which may be stale, so the slot is owned through `busy`
 * (a try-lock: acquire on taking, release on giving back). A thread that
 * finds it busy goes to the node lists instead — it does not wait, so a
 * preempted holder cannot stall a real-time thread; only an allocation
 * that finds nothing else at all (lists, pool, Standby) waits, sleeping,
 * for a busy cache that holds frames rather than fail with ENOMEM.
 *   zmag[0..nzero)  ZEROED frames of `node`; fmag[0..nfree) FREE frames
 *   allocs, frees   counters for ntmm_stats_get (relaxed stores by the
 *                   holder; summed without the flag)
 * nzero/nfree are atomics only so that gauges may read them unlocked.
 */
typedef struct ntmm__pcpu {
	_Atomic uint32_t busy;
	uint32_t node;
	_Atomic uint32_t nzero, nfree;
	_Atomic uint64_t allocs, frees;
	ntmm__pfn_t zmag[NTMM__MAG];
	ntmm__pfn_t fmag[NTMM__MAG];
} NTMM__ALIGNED_CL ntmm__pcpu_t;

/* --------------------------------------------------------------- layer */

/*
 * The physical layer, embedded in the engine. Everything is read-only
 * after ntmm__phys_init except what the structs above say.
 *   host        the pool's host mapping: frame pfn lives at
 *               host + pfn × 4 KiB; node n owns PFNs
 *               [nodes[n].first_pfn, + nodes[n].nframes), whole chunks
 *   pfndb       one 32-byte entry per frame, in one reservation of
 *               address space (PROT_NONE) made at init: entry pfn is at
 *               pfndb + pfn, and a chunk's 512 entries (16 KiB, whole
 *               pages) are made accessible and initialised (OFFLINE) when
 *               the chunk is first committed, so the database costs memory
 *               only for chunks the pool has used. Entries stay populated
 *               when their chunk is released: their generations must
 *               survive, so a stale word's CAS cannot succeed after the
 *               chunk comes back.
 *   repurpose   set by the virtual layer at create (NULL: none; Standby
 *               frames are then repurposed without telling anyone)
 */
typedef struct ntmm__phys {
	int backing;              /* NTMM_BACKING_HUGETLB / _THP / _4K: what we got */
	const char *backing_note; /* why AUTO chose it, or "" */
	unsigned nnodes;
	unsigned ncolours, colour_mask;
	unsigned ncpus;
	bool bound; /* node ranges bound with mbind */
	uint8_t *host;
	size_t bytes;
	int memfd; /* hugetlb backing: the memfd holding the pool; else -1 */
	ntmm__pfn_entry_t *pfndb;
	size_t db_bytes;
	size_t nframes;
	ntmm__chunk_t *chunks;
	uint32_t nchunks;
	ntmm__topo_t topo;
	ntmm__node_t *nodes; /* [nnodes] */
	ntmm__pcpu_t *pcpu;  /* [ncpus] */
	ntmm__repurpose_fn repurpose;
	/* paging hooks, set by the layers above (NULL: none):
	   original_gone — called with a frame's non-zero OriginalPte when the
	     frame goes to Free because its owner deleted it (the paging-file
	     slot it names must be released); no phys lock is held
	   writer_wake — the modified page writer's event: signalled when an
	     allocation finds no frame, when a repurpose finds Standby low with
	     Modified pages waiting, and when a node's Modified list reaches
	     modified_high (acquire loads; the event outlives the pointer) */
	void (*original_gone)(ntmm_engine_t *e, uint64_t original_pte);
	_Atomic(ntmm__event_t *) writer_wake;
	/* the mapped page writer's event, signalled with writer_wake */
	_Atomic(ntmm__event_t *) mapped_wake;
	_Atomic size_t modified_high; /* relaxed: a tunable mark */
	bool ready;
	/* low-memory notification (ntmm__phys_set_lowmem_wake): the balance
	   set manager's event, its mark (0 = off) and whether a signal may be
	   sent (cleared by the one sender, set again by rearm) */
	_Atomic(ntmm__event_t *) lowmem_wake;
	_Atomic size_t lowmem_mark;
	_Atomic bool lowmem_armed;
} ntmm__phys_t;

int ntmm__phys_init(ntmm_engine_t *e);
void ntmm__phys_fini(ntmm_engine_t *e);
int ntmm__phys_audit(ntmm_engine_t *e);
void ntmm__phys_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out);

/* Per-node figures for tools (`ntmm info`) and tests. */
typedef struct ntmm__node_info {
	size_t frames, committed_frames;
	size_t zeroed, free_, standby, modified, modified_nowrite, modified_mapped, bad;
	unsigned ncpus; /* CPU slots mapped to this node */
} ntmm__node_info_t;
void ntmm__phys_node_info(ntmm_engine_t *e, unsigned node, ntmm__node_info_t *out);

/* ------------------------------------------------------- for the threads */

/* One zeroing round on node: moves up to max_pages Free frames to Zeroed
   (non-temporal stores). Returns how many it zeroed; *more says whether
   another round has work (Free non-empty and Zeroed below its high-water
   mark). Takes free_lock briefly, never waits otherwise. */
size_t ntmm__phys_zero_pass(ntmm_engine_t *e, unsigned node, size_t max_pages, bool *more);
/* Whether the zero thread of node has work now (unlocked, approximate). */
bool ntmm__phys_zero_wanted(ntmm_engine_t *e, unsigned node);
/* Installs (or clears, with NULL) the event the phys layer signals when it
   puts frames on node's Free list while Zeroed is below its mark. */
void ntmm__phys_set_zero_wake(ntmm_engine_t *e, unsigned node, ntmm__event_t *ev);

/* Low-memory event: when an allocation refills a per-CPU cache or takes
   the slow path and finds available frames (ntmm__phys_available) below
   mark, ev is signalled, once until ntmm__phys_lowmem_rearm. NULL / 0 turns
   it off. */
void ntmm__phys_set_lowmem_wake(ntmm_engine_t *e, ntmm__event_t *ev, size_t mark);
void ntmm__phys_lowmem_rearm(ntmm_engine_t *e);
/* Available frames (NT: MmAvailablePages), the one definition every
   threshold uses: Zeroed + Free + Standby frames on the node lists, the
   Zeroed and Free frames in the per-CPU caches, and the frames of
   uncommitted chunks. Unlocked, approximate (relaxed loads of the
   published counts). */
size_t ntmm__phys_available(ntmm_engine_t *e);

/* Cache reduction: moves every per-CPU cache of node (ANY: all nodes) back
   to the node lists (busy slots are skipped), then returns wholly free
   committed chunks to the OS while the node keeps more than keep_frames
   Free+Zeroed frames. Returns the number of chunks released. */
size_t ntmm__phys_release_chunks(ntmm_engine_t *e, int node, size_t keep_frames);
/* Moves the per-CPU caches of node (ANY: all) back to the node lists.
   Returns how many caches holding frames were skipped because a thread
   had their slot at that moment. */
unsigned ntmm__phys_flush_caches(ntmm_engine_t *e, int node);

/* ------------------------------------------------------ layer internals */

static inline ntmm__pfn_entry_t *ntmm__pfe(const ntmm__phys_t *ph, ntmm__pfn_t pfn)
{
	return &ph->pfndb[pfn];
}
/* Whether pfn's entry may be read: its chunk's entries are populated.
   (ntmm__pfe itself does not check: every frame a list, a cache or a PTE
   names is in a committed, hence populated, chunk. Walkers over PFN ranges
   must check.) acquire: pairs with the release store in pool.c that
   follows the entries' initialisation. */
static inline bool ntmm__pfn_populated(const ntmm__phys_t *ph, ntmm__pfn_t pfn)
{
	return atomic_load_explicit(&ph->chunks[pfn / NTMM__CHUNK_FRAMES].populated,
	                            memory_order_acquire);
}
static inline unsigned ntmm__pfn_node(const ntmm__phys_t *ph, ntmm__pfn_t pfn)
{
	return ph->chunks[pfn / NTMM__CHUNK_FRAMES].node;
}
static inline unsigned ntmm__pfn_colour(const ntmm__phys_t *ph, ntmm__pfn_t pfn)
{
	return pfn & ph->colour_mask;
}
static inline void *ntmm__frame(const ntmm__phys_t *ph, ntmm__pfn_t pfn)
{
	return ph->host + ((size_t)pfn << NTMM__PAGE_SHIFT);
}

/* The engine's own state changes (inline: the hot path). Every change is
   checked in debug builds: ntmm__assert that it is legal (ntmm__pfn_legal:
   location move, generation, the new word's counts and flags), and in the
   expensive tier (NTMM_DEBUG >= 2, the debug preset) the whole step
   (ntmm__pfn_step_ok). cas: compare-exchange (acq_rel; failure reloads
   *old, acquire). store: for frames the caller holds exclusively (list
   lock, cache slot or zero batch), release. */
static inline uint64_t ntmm__pfn_relocate(uint64_t s, unsigned loc)
{
	return ((s & ~NTMM__PFN_LOC_MASK) | loc) + NTMM__PFN_GEN_ONE;
}
bool ntmm__pfn_legal(uint64_t from, uint64_t to);
/* The expensive per-transition check of entry p going from → to: both
   words satisfy their location's invariants (ntmm__pfn_word_ok: so a word
   some path wrote unchecked is caught at the next change), no count moves
   by more than one (a borrow or wrap between the packed counts shows as a
   jump), READ_IN_PROGRESS only in TRANSITION with a reference and the PTE
   being read named in the entry, WRITE_IN_PROGRESS only on an ACTIVE or
   TRANSITION frame holding its I/O reference and never with
   READ_IN_PROGRESS, IN_PAGE_ERROR only on a DELETED TRANSITION frame. */
bool ntmm__pfn_step_ok(const ntmm__pfn_entry_t *p, uint64_t from, uint64_t to);
static inline void ntmm__pfn_check(const ntmm__pfn_entry_t *p, uint64_t from, uint64_t to)
{
	ntmm__assert(ntmm__pfn_legal(from, to));
	ntmm__assert_expensive(ntmm__pfn_step_ok(p, from, to));
	(void)p;
	(void)from;
	(void)to;
}
static inline bool ntmm__pfn_cas(ntmm__pfn_entry_t *p, uint64_t *old, uint64_t desired)
{
	ntmm__pfn_check(p, *old, desired);
	/* acq_rel: release publishes the pte/original_pte/link writes made
	   before the change; acquire pairs with the previous changer's release
	   so the new holder sees them. */
	return atomic_compare_exchange_strong_explicit(&p->state, old, desired,
	                                               memory_order_acq_rel, memory_order_acquire);
}
/* As ntmm__pfn_cas, seq_cst: for a change a waiter checks after counting
   itself (ntmm__event_enter), so the changer may skip the signal when it
   sees no waiter counted. The same instruction as acq_rel on x86. */
static inline bool ntmm__pfn_cas_sc(ntmm__pfn_entry_t *p, uint64_t *old, uint64_t desired)
{
	ntmm__pfn_check(p, *old, desired);
	return atomic_compare_exchange_strong_explicit(&p->state, old, desired,
	                                               memory_order_seq_cst, memory_order_seq_cst);
}
static inline void ntmm__pfn_store(ntmm__pfn_entry_t *p, uint64_t old, uint64_t desired)
{
	ntmm__pfn_check(p, old, desired);
	ntmm__assert(atomic_load_explicit(&p->state, memory_order_relaxed) == old);
	/* release: pairs with the acquire load of whoever next takes the frame
	   (list lock or slot flag already order it; this keeps lock-free
	   readers such as reclaim and the gauges coherent too) */
	atomic_store_explicit(&p->state, desired, memory_order_release);
}

/*
 * The one read-modify-CAS loop for a state word that any thread may change
 * (ACTIVE and TRANSITION frames). next(s, arg) returns the word that
 * should replace s, or NTMM__PFN_DECLINE to leave the word as it is (it
 * may record why in *arg); it must have no other effect, since it runs
 * again with the new word each time the CAS loses a race. Each change is
 * checked as ntmm__pfn_cas checks it. Returns the word replaced, or
 * NTMM__PFN_DECLINE when next() declined (nothing changed). _sc: the
 * change is seq_cst (see ntmm__pfn_cas_sc).
 *
 * For loops that take or drop a list lock between attempts (a move onto
 * or off a list) the CAS stays in the caller: the lock, not the loop, is
 * what such a retry has to get right.
 */
#define NTMM__PFN_DECLINE UINT64_MAX /* location 15: never a state word */
typedef uint64_t ntmm__pfn_next_fn(uint64_t s, void *arg);

__attribute__((always_inline)) static inline uint64_t
ntmm__pfn_update_mo(ntmm__pfn_entry_t *p, ntmm__pfn_next_fn *next, void *arg, bool sc)
{
	/* acquire: pairs with the release of the last change, so pte and
	   original_pte written before it are seen by next() */
	uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
	for (;;) {
		uint64_t to = next(s, arg);
		if (to == NTMM__PFN_DECLINE)
			return to;
		if (sc ? ntmm__pfn_cas_sc(p, &s, to) : ntmm__pfn_cas(p, &s, to))
			return s;
	}
}
__attribute__((always_inline)) static inline uint64_t
ntmm__pfn_update(ntmm__pfn_entry_t *p, ntmm__pfn_next_fn *next, void *arg)
{
	return ntmm__pfn_update_mo(p, next, arg, false);
}
__attribute__((always_inline)) static inline uint64_t
ntmm__pfn_update_sc(ntmm__pfn_entry_t *p, ntmm__pfn_next_fn *next, void *arg)
{
	return ntmm__pfn_update_mo(p, next, arg, true);
}
/* The count and flag invariants a state word must satisfy in its location. */
bool ntmm__pfn_word_ok(uint64_t s);
/* A list-location word for loc with the old word's generation bumped and
   counts and flags cleared (priority kept). */
static inline uint64_t ntmm__pfn_listed(uint64_t s, unsigned loc)
{
	uint64_t keep = s & NTMM__PFN_PRIO_MASK;
	/* a mapped file's page stays one on Standby and Modified */
	if (loc == NTMM__LOC_STANDBY || loc == NTMM__LOC_MODIFIED ||
	    loc == NTMM__LOC_MODIFIED_NOWRITE)
		keep |= s & NTMM__PFN_MAPPED;
	uint64_t gen = (s & ~((1ull << NTMM__PFN_GEN_SHIFT) - 1)) + NTMM__PFN_GEN_ONE;
	return gen | keep | loc;
}

/* pagelist.c (caller holds the owning node lock; asserted in debug builds) */
void ntmm__plist_push_head(ntmm__phys_t *ph, ntmm__plist_t *l, ntmm__pfn_t pfn);
void ntmm__plist_push_tail(ntmm__phys_t *ph, ntmm__plist_t *l, ntmm__pfn_t pfn);
void ntmm__plist_unlink(ntmm__phys_t *ph, ntmm__plist_t *l, ntmm__pfn_t pfn);
ntmm__pfn_t ntmm__plist_pop_head(ntmm__phys_t *ph, ntmm__plist_t *l);
/* Free/Zeroed by colour (free_lock): insert keeps masks, counts and the
   chunk's `listed` in step; take removes one frame, preferring colour c
   (c ≥ ncolours: round-robin from the node's cursor). */
void ntmm__freelist_put(ntmm__phys_t *ph, ntmm__node_t *n, bool zeroed, ntmm__pfn_t pfn);
ntmm__pfn_t ntmm__freelist_take(ntmm__phys_t *ph, ntmm__node_t *n, bool zeroed, unsigned c);
/* The Free frame freed longest ago (the zero thread's pick: zeroing a warm
   frame with non-temporal stores would throw its cached lines away). */
ntmm__pfn_t ntmm__freelist_take_cold(ntmm__phys_t *ph, ntmm__node_t *n);
void ntmm__freelist_remove(ntmm__phys_t *ph, ntmm__node_t *n, bool zeroed, ntmm__pfn_t pfn);
/* Standby/Modified/ModifiedNoWrite/Bad: the list a listed location names. */
ntmm__plist_t *ntmm__node_list(ntmm__node_t *n, unsigned loc, unsigned prio);
/* The list a listed state word's frame is on (MAPPED Modified frames are on
   modified_mapped). */
ntmm__plist_t *ntmm__node_list_of(ntmm__node_t *n, uint64_t s);
void ntmm__node_pub_standby(ntmm__node_t *n);
void ntmm__node_pub_free(ntmm__node_t *n);

/* pool.c */
int ntmm__pool_init(ntmm_engine_t *e);
void ntmm__pool_fini(ntmm_engine_t *e);
/* Commits one uncommitted chunk of node n (its frames enter Zeroed).
   true if frames were added (or another thread added some meanwhile). */
bool ntmm__pool_grow(ntmm_engine_t *e, unsigned node);
/* Releases wholly free chunks of node while more than keep frames stay. */
size_t ntmm__pool_release(ntmm_engine_t *e, unsigned node, size_t keep);

/* zero.c: the zeroing routine (non-temporal stores + fence on x86-64) */
void ntmm__zero_page_nt(void *page);
void ntmm__zero_fence(void);

/* alloc.c */
void ntmm__free_to_node(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t s);
void ntmm__zero_wake(ntmm__node_t *n);
/* Signals phys.writer_wake if set (the allocator is short of frames or of
   Standby pages, Modified is large, or a paging file grew). */
void ntmm__writer_wake(ntmm__phys_t *ph);

#endif
