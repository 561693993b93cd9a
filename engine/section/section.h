/*
 * The section layer (NTMM-REFERENCE.md §9): section objects, segments with
 * their prototype PTEs, views, faults through prototype PTEs, copy-on-write,
 * the mapped page writer's batches and flushes. The public API is in
 * include/ntmm.h ("sections, views, copy-on-write, clone").
 *
 * Objects
 *   section  (ntmm_section_t) a handle: its segment, size, the most any
 *            view may get (prot) and flags. Several sections may share a
 *            segment: one segment per file (found by device and inode in
 *            e->section.segments), so two sections of one file share its
 *            pages. A paging-file section has a segment of its own.
 *   segment  NT's control area and segment in one: the file (a dup of the
 *            caller's descriptor, or -1), the prototype PTEs, the commit
 *            charge of a paging-file section, and its references.
 *   view     what a mapped VAD points at (vad->view): the segment, the first
 *            segment page the view maps, its protection. A VAD copy made by
 *            protect shares the view; the view is freed by unmap or by the
 *            process's teardown, after the grace period that ends them.
 *
 * Prototype PTEs. A segment's prototype PTEs live in 4 KiB chunks of
 * NTMM__PROTO_PER_CHUNK entries, found through a two-level directory
 * (top → mid → chunk) whose levels are allocated on demand by CAS, so a
 * 1 TiB file costs a lazily backed directory until its pages are touched.
 * The first words of a chunk name its segment and first index, so a frame's
 * PTE address (the PFN entry's `pte`) leads back to the page's segment and
 * file offset. Formats (virt/pte.h):
 *   valid       the frame is in at least one working set (share ≥ 1)
 *   transition  the frame is on Standby/Modified, or in I/O
 *   pagefile    paging-file sections: the page is in a paging-file slot
 *   demand-zero paging-file sections: committed, never touched
 *   0           file sections: the page is in the file (read it at
 *               index × 4 KiB, the tail past the end of the file as zero);
 *               paging-file sections: committed if the segment is all
 *               committed (SEC_COMMIT), else not committed (SEC_RESERVE)
 * A frame holding a section page has its PFN `pte` pointing at the
 * prototype PTE and its OriginalPte is what the prototype returns to when
 * the frame is repurposed (0 for file pages, the pagefile PTE or
 * demand-zero for paging-file sections). File pages carry the PFN's MAPPED
 * flag, so dirty ones go to the mapped Modified list and reach their file
 * through the mapped page writer, never a paging file.
 *
 * Process PTEs of a view: 0 or a prototype PTE ("look it up through the
 * VAD", virt/pte.h) mean the fault goes to the prototype; a valid PTE maps
 * the shared frame directly (the frame's share count counts such PTEs); a
 * transition, pagefile or valid PTE whose frame names the process PTE
 * itself is a private copy (a WRITECOPY view's written page), handled like
 * private memory. Trimming a shared page makes the process PTE a prototype
 * PTE and drops the share; at share 0 the prototype becomes transition.
 *
 * Locks. A prototype PTE changes between valid and transition only under
 * its stripe lock (seg->stripe[]), together with the frame's share count:
 * a fault that finds it valid adds a share, a trim that drops the last
 * share makes it transition, and neither can see the other half done. The
 * stripe lock is a leaf: taken with ws_lock shared or exclusive held, never
 * held across I/O or a wait. e->section.lock guards the segment list and
 * references; e->section.write_lock serializes writes of file pages
 * (the mapped page writer, flushes) and segment deletion.
 */
#ifndef NTMM_SECTION_SECTION_H
#define NTMM_SECTION_SECTION_H

#include <ntmm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <urcu/list.h>

#include "phys/page.h"

typedef struct ntmm__segment ntmm__segment_t;
typedef struct ntmm__shootdown ntmm__shootdown_t;

#define NTMM__PROTO_PER_CHUNK 510u
#define NTMM__PROTO_MID       512u
#define NTMM__PROTO_TOP       65536u /* 65536 × 512 × 510 pages ≈ 64 TiB */
#define NTMM__PROTO_STRIPES   64u

typedef struct ntmm__proto_chunk {
	ntmm__segment_t *seg;
	uint64_t first; /* segment page index of ptes[0] */
	_Atomic uint64_t ptes[NTMM__PROTO_PER_CHUNK];
} ntmm__proto_chunk_t;
_Static_assert(sizeof(ntmm__proto_chunk_t) == 4096, "a prototype chunk is one page");

typedef _Atomic(ntmm__proto_chunk_t *) ntmm__proto_mid_t[NTMM__PROTO_MID];

#define NTMM__SECTION_MAGIC 0x6e746d6d53656374ull /* "ntmmSect" */

struct ntmm__segment {
	ntmm_engine_t *e;
	int fd;                            /* the file (dup), or -1: paging files */
	uint64_t dev, ino;                 /* the file's identity (fd >= 0) */
	bool writable;                     /* fd is open for writing */
	bool commit_all;                   /* paging-file SEC_COMMIT: every page committed */
	_Atomic uint64_t npages;           /* pages the sections on it cover */
	_Atomic uint64_t file_bytes;       /* the file's length as we keep it */
	_Atomic uint64_t charged;          /* paging-file sections: pages charged */
	_Atomic(ntmm__proto_mid_t *) *top; /* [NTMM__PROTO_TOP], lazily backed */
	pthread_mutex_t stripe[NTMM__PROTO_STRIPES];
	unsigned refs; /* sections + views (e->section.lock) */
	/* fault injection (ntmm__section_fail_io): countdowns, 0 = off */
	_Atomic uint64_t fail_read_in, fail_write_in;
	struct cds_list_head link; /* e->section.segments (e->section.lock) */
};

struct ntmm_section {
	uint64_t magic;
	ntmm__segment_t *seg;
	uint64_t size;  /* bytes */
	unsigned prot;  /* NTMM_PAGE_READONLY, _READWRITE or _WRITECOPY */
	unsigned flags; /* NTMM_SEC_* */
};

typedef struct ntmm__view {
	ntmm__segment_t *seg;
	uint64_t first; /* segment page index of the view's first page */
	uint64_t npages;
	unsigned prot;     /* the view's protection at map time */
	unsigned max_prot; /* the section's: what ntmm_protect may give */
	bool cow;          /* WRITECOPY: writes make private copies */
} ntmm__view_t;

/* Engine-wide state (inside ntmm_engine_t). */
typedef struct ntmm__section_layer {
	pthread_mutex_t lock;
	/* held across every write of file pages (the mapped page writer's
	   batches, flushes) and by a segment's deletion, which so never
	   meets a page in a write it did not start */
	pthread_mutex_t write_lock;
	struct cds_list_head segments;
	_Atomic size_t nsegments;
	/* the mapped page writer's list length at its previous pass: it
	   writes what has waited a whole pass (writer.c) */
	size_t aged;
} ntmm__section_layer_t;

int ntmm__section_init(ntmm_engine_t *e);
/* After every process is gone: writes what is dirty, frees the rest. */
void ntmm__section_fini(ntmm_engine_t *e);
/* Share counts against the process PTEs and prototypes; each segment's
   pages. Returns the number of problems (printed). Quiet engine only. */
int ntmm__section_audit(ntmm_engine_t *e);
/* Calls fn with the value and page index of every non-zero prototype PTE
   of every segment (e->section.lock held; the slot audit's walk). */
void ntmm__section_each_proto(ntmm_engine_t *e, void (*fn)(uint64_t pte, uint64_t idx, void *arg),
                              void *arg);

/* The prototype PTE of segment page idx; create: allocate missing levels
   (NULL only if host memory ran out). Without create, NULL means 0. */
_Atomic uint64_t *ntmm__proto(ntmm__segment_t *seg, uint64_t idx, bool create);
/* A prototype PTE's segment and page index (from a PFN's `pte`). */
ntmm__segment_t *ntmm__proto_segment(uint64_t pte_addr, uint64_t *idx);
static inline pthread_mutex_t *ntmm__proto_stripe(ntmm__segment_t *seg, uint64_t idx)
{
	return &seg->stripe[(idx >> 4) % NTMM__PROTO_STRIPES];
}

/* True if the frame named by a valid process PTE at pte_addr is a shared
   section page (its PFN names a prototype PTE, not pte_addr). */
bool ntmm__frame_is_shared(ntmm_engine_t *e, ntmm__pfn_t pfn, uint64_t pte_addr);
/* A process PTE that mapped shared frame pfn was invalidated: drops the
   share (dirty: the frame is modified). At share 0 the prototype PTE
   becomes transition and the frame joins s (released after its grace
   period). */
void ntmm__section_unshare(ntmm_engine_t *e, ntmm__pfn_t pfn, bool dirty, ntmm__shootdown_t *s);
/* The same from a fault (which cannot wait for a grace period): a frame
   left unshared is released after one, by call_rcu. */
void ntmm__section_unshare_deferred(ntmm_engine_t *e, ntmm__pfn_t pfn);
/* ntmm_allocate(MEM_COMMIT) inside a view of a SEC_RESERVE section:
   commits segment pages [first, first + n) (charged to the section). */
int ntmm__view_commit(ntmm_engine_t *e, const ntmm__view_t *view, uint64_t first, uint64_t n);

/* fault.c: the fault of a view page whose process PTE is 0 or a prototype
   PTE, or a write to a shared page of a WRITECOPY view (ws_lock shared).
   Returns 0, an NTMM_E* code, or one of fault.c's internal codes the
   caller acts on (NTMM__SFAULT_IO: read ctx's pages without ws_lock, then
   ntmm__section_fault_io_done). */
typedef struct ntmm__sfault {
	ntmm__segment_t *seg;
	uint64_t first;  /* segment page index of pfn[0] */
	unsigned n;      /* pages being read (file) or 1 (paging file) */
	unsigned self;   /* the faulting page's index in pfn[] */
	uint64_t pf_pte; /* paging-file read: the pagefile PTE */
	ntmm__pfn_t pfn[16];
	/* after a read: the faulting page's frame, ACTIVE with one share for
	   this fault and its prototype valid, for the retried dispatch to map
	   (NTMM__PFN_NONE: none); a fault that ends without mapping it drops
	   the share (ntmm__section_fault_end) */
	ntmm__pfn_t ready;
	ntmm_engine_t *e;
	unsigned view_prot;
	uint64_t flags;
} ntmm__sfault_t;
#define NTMM__SFAULT_IO      (-1100)
#define NTMM__SFAULT_RETRY   (-1101)
#define NTMM__SFAULT_WAIT    (-1102) /* prototype in I/O: wait on pfn[0] without ws_lock */
#define NTMM__SFAULT_NOFRAME (-1103) /* no frame: the caller's wait for frames */
int ntmm__section_fault(ntmm_process_t *p, const struct ntmm__vad *v, uint64_t page,
                        _Atomic uint64_t *pte, uint64_t old, bool write, uint64_t flags,
                        ntmm__sfault_t *c);
/* The same for private memory of a cloned process: its PTE is a prototype
   PTE naming a clone prototype (or valid, shared and copy-on-write, for a
   write). Writes copy. */
int ntmm__clone_fault(ntmm_process_t *p, uint64_t page, _Atomic uint64_t *pte, uint64_t old,
                      bool write, uint64_t flags, ntmm__sfault_t *c);
/* The end of a fault: drops the share of a frame read for it that it did
   not map (c->ready). */
void ntmm__section_fault_end(ntmm__sfault_t *c);
/* Reads the pages of c (no lock held): 0 or NTMM_EIO. */
int ntmm__section_fault_read(ntmm_engine_t *e, ntmm__sfault_t *c);
/* Finishes the prototypes after the read (ok: it succeeded). The faulting
   process PTE is filled by the retried dispatch (a soft fault now). */
void ntmm__section_fault_io_done(ntmm_engine_t *e, ntmm__sfault_t *c, bool ok);

/* writer.c: one batch of the mapped page writer (any thread holding no
   process lock): writes up to max pages of the mapped Modified lists to
   their files, contiguous runs in one request each. Returns pages written. */
size_t ntmm__section_write_batch(ntmm_engine_t *e, size_t max);
/* The mapped page writer's pass: writes what waited a whole pass, or
   everything when memory is low. */
size_t ntmm__section_writer_pass(ntmm_engine_t *e);
/* Writes the dirty pages of segment pages [first, first + n) and syncs
   the file. 0 or NTMM_EIO. */
int ntmm__segment_flush(ntmm__segment_t *seg, uint64_t first, uint64_t n, bool sync);

/* segment file I/O with fault injection: 0 or a negative errno */
int ntmm__segment_pread(ntmm__segment_t *seg, void **pages, unsigned n, uint64_t first);
int ntmm__segment_pwrite(ntmm__segment_t *seg, void **pages, unsigned n, uint64_t first);

/* Fault injection for tests: the read_in-th file read and the write_in-th
   file write of s's segment from now (1 = the next one) fail with EIO,
   moving no data; 0 leaves that kind alone. Paging-file sections: their
   I/O is the paging files', injected through the io layer's fault driver.
   Errors: NTMM_EINVAL (not a live file section). */
int ntmm__section_fail_io(ntmm_section_t *s, uint64_t read_in, uint64_t write_in);

/* ntmm_query of a view: whether segment page idx is committed (file and
   SEC_COMMIT sections: always; SEC_RESERVE: once committed in a view) and
   how many pages from it, up to max, share that state. */
uint64_t ntmm__view_run(const ntmm__view_t *view, uint64_t idx, uint64_t max, bool *committed);

/* clone.c / section.c: clone segments */
/* A paging-file segment of npages for a clone's pages, with one reference
   (the caller's); NULL if host memory ran out. */
ntmm__segment_t *ntmm__clone_segment_new(ntmm_engine_t *e, uint64_t npages);
void ntmm__clone_segment_put(ntmm__segment_t *seg);
/* p references seg's prototypes (once per segment; dropped at p's
   teardown). NTMM_ENOMEM. */
int ntmm__clone_link(ntmm_process_t *p, ntmm__segment_t *seg);

/* views (section.c), for vm.c and process.c */
/* The references a view holds go when the view is freed (unmap, process
   teardown), after the grace period that ended its mappings. */
void ntmm__view_free(ntmm_engine_t *e, ntmm__view_t *view);
/* True if v's committed pages are charged to its process (private memory,
   WRITECOPY views). */
bool ntmm__vad_charged(const struct ntmm__vad *v);

#endif
