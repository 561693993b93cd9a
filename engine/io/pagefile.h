/*
 * Paging files: up to NTMM__PF_MAX_FILES per engine, added and removed at run time, each a
 * store opened through a backing-store driver, with a slot allocator, growth
 * from its initial size toward its maximum, and shrink when its tail is
 * free. This is the internal API the modified page writer and the hard-fault
 * path use: they hand in host buffers (4 KiB pages) and get pagefile
 * locations (io/pfloc.h) back.
 *
 * Space allocator (per file): a bitmap of 4 KiB slots, bit set = in use.
 * Lock-free: a slot or a run of contiguous slots is claimed by CAS on the
 * bitmap words (a run that spans words is claimed word by word and rolled
 * back if a word turns out taken), searched next-fit from a hint so that
 * successive clusters land one after another in the file. Slot 0 is
 * reserved (a PTE offset of 0 means "not in a paging file"). Only slots
 * below size_pages are ever searched. Growth and shrink take the file's
 * resize_lock (a mutex, held across the fallocate/ftruncate), never the
 * allocation path: grow extends the store, clears the new slots' bits, then
 * publishes the larger size; shrink first claims the free tail's bits (so no
 * allocator can take them), cuts the store, then publishes the smaller size.
 * Hence a bit that is clear below the size an allocator read is always a
 * slot with real storage behind it.
 *
 * Removal: the file list io->files[] is RCU-protected. ntmm__pagefile_remove
 * marks the file draining (no new allocations), waits a grace period (so any
 * allocator that missed the mark is done), and then, if slots are still in
 * use, either undoes the mark and refuses with NTMM_EBUSY or, with
 * NTMM__PF_REMOVE_KEEP_DRAINING, leaves the file draining so its slots empty
 * out as their pages are read back and freed, and a later remove succeeds.
 * Migrating in-use slots to another file needs the PTEs that point at them,
 * which belong to the virtual layer: the io layer does not migrate.
 *
 * Names: a paging file is known by the path it was added under, resolved
 * once at add into an absolute one (so a later chdir changes nothing), and
 * by its store's identity (device and inode). The store itself keeps no
 * name on disk (driver.h, filedrv.c): removal and teardown close it and
 * unlink nothing.
 *
 * Threads: alloc must be called from an RCU-registered thread (it walks the
 * file list under ntmm__rcu_read_lock). read/write/free on slots the caller
 * holds need no RCU: a file with allocated slots cannot be removed, so the
 * pointer stays valid while the caller holds them.
 */
#ifndef NTMM_IO_PAGEFILE_H
#define NTMM_IO_PAGEFILE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io/driver.h"
#include "io/pfloc.h"
#include "sync/event.h"

#define NTMM__PF_PAGE 4096u
/* the largest run ntmm__pagefile_alloc hands out (and the largest cluster
   a single read/write takes): 1 MiB */
#define NTMM__PF_MAX_CLUSTER 256u

/*
 * One paging file.
 * Invariants (at rest, i.e. with no resize in progress):
 *   popcount(bits of slots [0, size_pages)) == used + 1        (slot 0)
 *   initial_pages <= size_pages <= max_pages <= max_cfg_pages < 2^32
 * Fields: fixed after add unless said otherwise.
 */
typedef struct ntmm__pagefile {
	unsigned index;           /* position in io->files[]; the PTE's file index */
	char *path;               /* resolved at add: the real path of the directory given
				     and the file's name there (names no file on disk) */
	bool has_id;              /* the driver told the store's identity: */
	uint64_t dev, ino;        /* its device and inode */
	ntmm__bsdriver_t *drv;    /* its driver (drv->users counts this file) */
	void *store;              /* the driver's handle */
	int direct_fd[2];         /* [write]: the driver's direct_fd, or -1 (fixed) */
	uint64_t initial_pages;   /* shrink never goes below this */
	uint64_t max_cfg_pages;   /* the maximum asked for */
	uint64_t nwords;          /* bitmap words, covering max_cfg_pages */
	_Atomic uint64_t *bitmap; /* 1 = in use/reserved; CAS acquire to claim, release to free */
	pthread_mutex_t resize_lock; /* serializes grow and shrink (may block in fallocate) */
	_Atomic uint64_t size_pages; /* slots with storage; stored (release) under resize_lock */
	_Atomic uint64_t max_pages;  /* growth limit; lowered (under resize_lock) to size_pages
					if the store refused growth (disk full), so the commit
					limit never counts space the disk does not have */
	_Atomic uint64_t used;       /* slots held by callers (relaxed; exact at rest) */
	_Atomic uint64_t hint;       /* next-fit start slot (relaxed; only a hint) */
	_Atomic bool draining;       /* removal in progress: allocators skip the file
					(relaxed; ordered by remove's grace period) */
	_Atomic uint64_t grows, shrinks; /* counts, for tests and tools (relaxed) */
} ntmm__pagefile_t;

/* ntmm__pagefile_add: path is resolved once, here (the real path of its
   directory, then its last component; the whole real path when it names an
   existing file), and must be new to this io; initial/maximum in bytes
   (rounded down to pages; initial at least 2 pages, maximum below 2^32
   pages). driver NULL = "file". *index_out (may be NULL) gets its index.
   Errors: NTMM_EINVAL (bad size, NULL path, unknown driver, path already a
   paging file here), NTMM_EBUSY (NTMM__PF_MAX_FILES files already, or the file at path is
   locked by another engine), NTMM_EIO (the directory cannot be resolved, or
   the store could not be created, locked or extended to initial, or a file
   that is not a paging file is at path: detail names the path and the
   system's reason), NTMM_ENOMEM. */
int ntmm__pagefile_add(ntmm__io_t *io, const char *path, size_t initial, size_t maximum,
                       const char *driver, unsigned *index_out);

/* The index of the live paging file that path names, or -1: path is
   resolved now, as add does, and names a file if it resolves to the path
   the file was added under, or if it names (on disk) the file itself (same
   device and inode). Takes io->lock. */
int ntmm__pagefile_index_of(ntmm__io_t *io, const char *path);

#define NTMM__PF_REMOVE_KEEP_DRAINING 1u
/* Removes the paging file path names (as ntmm__pagefile_index_of).
   Errors: NTMM_EINVAL (no such paging file), NTMM_EBUSY (slots in use; see
   the header comment for what the flag changes; or the commit charge
   needs the file's space: the files left would hold fewer slots than
   io->commit_floor says — nothing changes then). Waits for grace periods:
   do not call inside an RCU read-side section. */
int ntmm__pagefile_remove(ntmm__io_t *io, const char *path, unsigned flags);
/* Same, by index. */
int ntmm__pagefile_remove_index(ntmm__io_t *io, unsigned index, unsigned flags);

/* Removes every paging file, held slots or not (engine teardown). */
void ntmm__pagefile_remove_all(ntmm__io_t *io);

/* Allocates a run of contiguous slots in one file: `want` if it can, else
   the longest it finds down to `min` (1 <= min <= want <= MAX_CLUSTER),
   growing a file toward its maximum when every file is full. *loc is the
   first slot, *got the run length. RCU-registered callers only.
   Errors: NTMM_EINVAL (bad want/min), NTMM_ECOMMIT (no paging file has
   room and none can grow: all at maximum, or the disk refused growth; under
   heavy contention also when racing allocators took the runs the search
   saw — treat it as "no space now"). */
int ntmm__pagefile_alloc(ntmm__io_t *io, size_t want, size_t min, ntmm__pfloc_t *loc, size_t *got);
/* The index of the paging file with the most room left to grow (below its
   maximum, not being removed), or -1. A hint for a growth request. */
int ntmm__pagefile_growable(ntmm__io_t *io);
/* Like alloc, but never grows a file (for callers that must not block on
   fallocate); NTMM_ECOMMIT when no file has a run of `min` free. */
int ntmm__pagefile_alloc_nogrow(ntmm__io_t *io, size_t want, size_t min, ntmm__pfloc_t *loc,
                                size_t *got);
/* Frees n slots from loc (all must be held by the caller). */
void ntmm__pagefile_free(ntmm__io_t *io, ntmm__pfloc_t loc, size_t n);

/* Writes / reads n pages (host buffers of 4 KiB each, in slot order) at the
   n consecutive slots from loc: one request, one vectored I/O.
   Errors: NTMM_EINVAL (loc not a held range of a live file, n outside
   1..MAX_CLUSTER), NTMM_EIO (the store failed or moved fewer bytes; detail
   says which; a failed write leaves other slots untouched, a failed read
   leaves the slots' data in place for a retry). */
int ntmm__pagefile_write(ntmm__io_t *io, ntmm__pfloc_t loc, void *const *pages, size_t n);
int ntmm__pagefile_read(ntmm__io_t *io, ntmm__pfloc_t loc, void *const *pages, size_t n);

/* A batch: several clusters, possibly in several files, submitted together
   (one io_uring submission per file). Each entry gets its own result. */
typedef struct ntmm__pfio {
	ntmm__pfloc_t loc;
	void *const *pages;
	unsigned npages;
	int result; /* out: 0 or NTMM_E* as for ntmm__pagefile_write/read */
} ntmm__pfio_t;
/* Returns 0 if every entry succeeded, else the first failing entry's code. */
int ntmm__pagefile_io(ntmm__io_t *io, bool write, ntmm__pfio_t *v, unsigned n);

/* Makes every completed write of every paging file durable. NTMM_EIO on failure. */
int ntmm__pagefile_flush(ntmm__io_t *io);

/* Grows file `index` by at least `pages` slots (not past its maximum).
   Errors: NTMM_EINVAL (no such file), NTMM_ECOMMIT (already at maximum),
   NTMM_EIO (the store refused: the maximum is lowered to the size reached). */
int ntmm__pagefile_grow(ntmm__io_t *io, unsigned index, uint64_t pages);
/* Like grow, but by what room is left when that is less than `pages`
   (growth asked for on behalf of others: some room beats none). */
int ntmm__pagefile_grow_upto(ntmm__io_t *io, unsigned index, uint64_t pages);
/* Shrinks every file whose free tail reaches below its size, down to its
   initial size at most, while the files together keep at least `keep`
   slots and at least what io->commit_floor says the commit charge needs
   (checked after the total is lowered, so a charge racing the shrink is
   never left without space); returns the slots released (0 if none), or
   NTMM_EIO. */
int64_t ntmm__pagefile_shrink(ntmm__io_t *io, uint64_t keep);
/* Gives every file whose maximum a refused growth lowered (disk full) its
   configured maximum back, so the next growth tries the store again; the
   commit limit still counts only space obtained. Returns the files
   changed. */
unsigned ntmm__pagefile_retry_growth(ntmm__io_t *io);

/* Totals over live files (draining ones included), for the commit limit:
   usable slots now (storage actually obtained, slot 0 excluded) and usable
   slots at maximum — both lock-free, callable anywhere, including inside an
   RCU read-side section — and slots in use (takes io->lock: not inside an
   RCU read-side section; for statistics). */
/* Both at once, consistent with each other (size <= max). */
void ntmm__pagefile_totals(ntmm__io_t *io, uint64_t *size, uint64_t *max);
uint64_t ntmm__pagefile_total_pages(ntmm__io_t *io);
/* How many times any paging file grew (relaxed; a hint for the shrink's
   hold-off). */
uint64_t ntmm__pagefile_grow_count(ntmm__io_t *io);
/* The slots obtained (the paging files' share of the commit limit), read
   seq_cst: for the charger's check after its seq_cst charge (io.h). */
uint64_t ntmm__pagefile_obtained_sc(ntmm__io_t *io);
uint64_t ntmm__pagefile_maximum_pages(ntmm__io_t *io);
uint64_t ntmm__pagefile_used_pages(ntmm__io_t *io);

/* The commit charge's floor on the obtained space (io.h: commit_floor):
   set by the virtual layer at its init, cleared (NULL) at its fini. */
void ntmm__pagefile_set_commit_floor(ntmm__io_t *io, uint64_t (*floor)(void *arg), void *arg);

/* Free slots now over the live files that take allocations (not draining),
   and in *room (may be NULL) the free slots plus what the files may still
   grow by. Lock-free (an RCU read-side section of its own): approximate
   under concurrent allocation, for policies (when the slots are short). */
uint64_t ntmm__pagefile_free_slots(ntmm__io_t *io, uint64_t *room);

/* The modified page writer's wait for space (io.h: space_wanted). arm:
   asks to be woken when a slot is freed or a file grows, then returns
   true if still no file has a free slot (the caller sleeps on the event
   it installed with set_space_wake; a free or growth after the arm
   signals it), false if one has (nothing to wait for). Frees and growth
   signal at most once per arm. */
bool ntmm__pagefile_space_arm(ntmm__io_t *io);
void ntmm__pagefile_set_space_wake(ntmm__io_t *io, ntmm__event_t *ev);

/* Checks every file's bitmap against its counts; 0 or NTMM_EINVAL with the
   broken invariant on stderr. Exact only while no allocation runs. */
int ntmm__pagefile_audit(ntmm__io_t *io);

/* Slot ownership (the io half of the audit in virt/pfaudit.c, which finds
   the owners: the io layer knows which slots are in use, only the layers
   above know who holds them).
   The sort key of a location: file, then slot. */
static inline uint64_t ntmm__pfloc_key(ntmm__pfloc_t loc)
{
	return ((uint64_t)ntmm__pfloc_file(loc) << NTMM__PF_SLOT_BITS) | ntmm__pfloc_slot(loc);
}
enum ntmm__pf_badref {
	NTMM__PF_REF_FREE,     /* the slot is not in use */
	NTMM__PF_REF_NO_FILE,  /* no live paging file has that index */
	NTMM__PF_REF_PAST_END, /* the slot is at or past its file's size */
};
typedef void (*ntmm__pf_badref_fn)(void *arg, size_t i, enum ntmm__pf_badref why);
/* refs[0..n): every location some owner names, ascending by ntmm__pfloc_key,
   without duplicates. For each ref that names no live paging file, a slot
   at or past its file's size, or a slot not in use, calls bad(arg, i, why)
   once. Every slot in use (slot 0 aside) that no ref names is a leak: the
   count goes to *leaks and the first few per file to stderr. Takes io->lock
   and each file's resize_lock (not inside an RCU read-side section). Exact
   only while no slot is allocated or freed meanwhile. */
void ntmm__pagefile_check_refs(ntmm__io_t *io, const ntmm__pfloc_t *refs, size_t n,
                               ntmm__pf_badref_fn bad, void *arg, uint64_t *leaks);

#endif
