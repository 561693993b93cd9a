/*
 * ntmm — a user-space, NUMA-aware memory-manager engine modelled on the
 * Windows NT memory manager.
 *
 * This is the whole public API: opaque handles, flags and error codes. Every
 * function returns 0 or a negative NTMM_E* code unless its comment says
 * otherwise; results come back through out-parameters. Virtual addresses are
 * uint64_t in a process's own address space; host pointers are void *.
 *
 * Threads: the access calls (ntmm_access_begin, ntmm_translate, ntmm_read,
 * ntmm_write, ntmm_pin) run on RCU read-side sections, and a thread must be
 * registered with the engine's RCU flavour (liburcu memb) for its sections
 * to protect anything. A thread that never called ntmm_thread_register is
 * registered by its first access call and stays registered until it exits;
 * ntmm_thread_register makes the registration explicit. Either way it is
 * undone when the thread exits (pthread_exit or a return from its start
 * routine): a thread-specific-data destructor ends any access section the
 * thread left open (a grace period waiting for it then proceeds) and
 * unregisters it, so a thread may exit without ntmm_access_end or
 * ntmm_thread_unregister. Registration is per thread, shared by every
 * engine of the process (as liburcu's is), and keeps no reference to an
 * engine: engines may be destroyed before or after the threads that used
 * them exit.
 *
 * Calls that wait for a grace period (ntmm_free, ntmm_protect,
 * ntmm_process_destroy, ntmm_ws_empty) refuse with NTMM_EBUSY inside the
 * calling thread's own access section; ntmm_engine_destroy there is a
 * programming error that aborts (see it).
 */
#ifndef NTMM_H
#define NTMM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(NTMM_BUILDING) && defined(__GNUC__)
#define NTMM_API __attribute__((visibility("default")))
#else
#define NTMM_API
#endif

#define NTMM_VERSION_MAJOR 0
#define NTMM_VERSION_MINOR 1

/* ------------------------------------------------------------------ errors */

/* X(name, value, text): one list, used for the enum and for ntmm_strerror. */
#define NTMM_ERRORS(X)                                                                   \
	X(EINVAL, -1, "invalid argument (size, alignment, flags, protection or handle)") \
	X(ENOMEM, -2, "out of memory: no frames and nothing reclaimable")                \
	X(ECOMMIT, -3, "commit limit reached")                                           \
	X(EACCESS, -4, "access violation")                                               \
	X(EGUARD, -5, "guard page hit (the guard is now cleared)")                       \
	X(ECONFLICT, -6, "range overlaps or is not wholly reserved/committed")           \
	X(EIO, -7, "in-page error: the backing store failed")                            \
	X(EBUSY, -8, "resource busy")                                                    \
	X(ENOTSUP, -9, "operation not supported here")

enum ntmm_error {
	NTMM_OK = 0,
#define NTMM__ERR_ENUM(name, value, text) NTMM_##name = value,
	NTMM_ERRORS(NTMM__ERR_ENUM)
#undef NTMM__ERR_ENUM
};

/* A static string naming err (0 and unknown codes included). */
NTMM_API const char *ntmm_strerror(int err);
/* The calling thread's description of its most recent ntmm error (which
   argument, file or resource it was about); "" if none. */
NTMM_API const char *ntmm_error_detail(void);

/* ------------------------------------------------------------------ handles */

typedef struct ntmm_engine ntmm_engine_t;
typedef struct ntmm_process ntmm_process_t;
typedef struct ntmm_pin ntmm_pin_t;
typedef struct ntmm_stats ntmm_stats_t; /* defined in <ntmm/stats.h> */

/* ------------------------------------------------------------------ engine */

enum ntmm_backing {
	NTMM_BACKING_AUTO = 0, /* hugetlb if reserved, else THP, else 4 KiB */
	NTMM_BACKING_HUGETLB = 1,
	NTMM_BACKING_THP = 2,
	NTMM_BACKING_4K = 3,
};

/* The six system threads, in the order of ntmm_config_t.thread_priority. */
enum ntmm_system_thread {
	NTMM_THREAD_BALANCE_SET = 0,
	NTMM_THREAD_SWAPPER = 1,
	NTMM_THREAD_MODIFIED_WRITER = 2,
	NTMM_THREAD_MAPPED_WRITER = 3,
	NTMM_THREAD_SEGMENT_DEREF = 4,
	NTMM_THREAD_ZERO_PAGE = 5,
	NTMM_THREAD_COUNT = 6,
};

typedef struct ntmm_config {
	size_t physical_bytes;     /* size of the frame pool (all nodes), multiple of 2 MiB,
				      from 2 MiB (one chunk per NUMA node) to below 16 TiB
				      (2^32 frames). Only address space is reserved at create:
				      memory (the frames and their PFN entries, 16 KiB per
				      2 MiB chunk) is committed as chunks are first used, so
				      a pool far larger than the machine costs nothing
				      until it is used, and running out is NTMM_ENOMEM */
	const char *pagefile_path; /* first paging file; NULL = none. Resolved once, at
				      create, as ntmm_pagefile_add resolves it */
	size_t pagefile_initial;   /* bytes */
	size_t pagefile_maximum;   /* bytes; growth up to this */
	int backing;               /* enum ntmm_backing */
	const char *topology;      /* NULL = this machine; else an hwloc synthetic
				      string such as "pack:2 numa:1 core:2 pu:1": at most
				      1024 PUs (the product of the counts), 8192 objects,
				      32 levels and 64 NUMA nodes, checked before hwloc
				      loads it. The machine's CPUs are dealt round-robin
				      over its nodes; memory is not bound */
	int start_threads;         /* 1 = start the system threads (0: the engine still
				      pages, inline in the faulting threads) */

	/* ---- additions beside the contract ---- */
	int thread_priority[NTMM_THREAD_COUNT]; /* NT priority 0..31 per system thread */
	int thread_cpu[NTMM_THREAD_COUNT];      /* -1 = no pinning; else a PU index */
	uint64_t aslr_seed;                     /* randomized placement seed (0 = fixed default) */
	size_t ws_min_pages, ws_max_pages;      /* default working-set limits */
	unsigned swap_idle_ms;    /* swapper: out-swap after this idle time (0: never) */
	unsigned balance_tick_ms; /* balance set manager period (NT: 1000) */
	int io_backend;           /* paging-file I/O: 0 auto (io_uring for batched reads if
			   it works, pwritev for writes), 1 io_uring for all
			   (NTMM_ENOTSUP if unavailable), 2 preadv/pwritev */
	/* Set by ntmm_config_init: "" or the first NTMM_<NAME> variable it
	   could not apply, its value and why (e.g. `NTMM_BALANCE_TICK_MS=
	   "4294967297": outside [1, 60000]`). While non-empty,
	   ntmm_engine_create refuses the config with NTMM_EINVAL and this text
	   as the detail; clear it (env_error[0] = 0) to accept the defaults
	   the bad variables left in place. */
	char env_error[128];
} ntmm_config_t;

/* Fills cfg with defaults, then applies NTMM_<NAME> environment overrides
   (`ntmm help` lists them). Numbers are decimal only: digits (a leading 0
   is still decimal; no "0x", no blanks, no '+'), a '-' only for options
   that take negative values (the cpu_* pinning), and sizes may end in one
   K, M, G or T suffix (powers of 1024, optionally followed by "iB" or "B").
   A value that is empty, not such a number, has trailing characters, does
   not fit 63 bits (64 for aslr_seed), is outside the option's range, or
   (backing) is not one of auto, hugetlb, thp, 4k leaves the field at its
   default and is recorded in cfg->env_error, so that ntmm_engine_create
   fails with NTMM_EINVAL naming the variable: nothing is silently changed.
   String values (pagefile_path, topology) point into the environment.
   A NULL cfg is ignored. */
NTMM_API void ntmm_config_init(ntmm_config_t *cfg);
/* As ntmm_config_init, and returns 0, or NTMM_EINVAL (NULL cfg, or an
   environment variable was rejected: ntmm_error_detail() names it, as
   cfg->env_error does). */
NTMM_API int ntmm_config_init_checked(ntmm_config_t *cfg);
/* Errors: NTMM_EINVAL (bad config: 0 bytes, size not a multiple of 2 MiB
   or from 16 TiB, unknown backing, malformed topology or one beyond its
   limits, priority outside 0..31, CPU not on this machine, cfg->env_error
   set by ntmm_config_init), NTMM_ENOMEM (no address space for the pool or
   its PFN database, or no memory for the engine's tables), NTMM_ENOTSUP (a
   forced backing that this machine cannot give), NTMM_EIO (paging file),
   NTMM_EBUSY (the paging file is locked by another engine; as
   ntmm_pagefile_add). */
NTMM_API int ntmm_engine_create(const ntmm_config_t *cfg, ntmm_engine_t **out);
/* Stops the system threads and frees everything the engine owns: its
   processes, frames, paging files (deleted) and page tables. NULL is a
   no-op. When it is called, no other thread may be using the engine or
   any of its processes (no call into it running or starting), and every
   pin of it should be unpinned: a pin that outlives its engine may not be
   used or unpinned (undefined; debug builds abort with a message).
   Threads still registered with it need not unregister first.
   Calling it inside an access section of the calling thread (between
   ntmm_access_begin and ntmm_access_end, on any engine) is a programming
   error: destruction waits for grace periods, which that section would
   block forever, so it prints a message naming the misuse to stderr and
   calls abort() instead, in every build. */
NTMM_API void ntmm_engine_destroy(ntmm_engine_t *e);
/* Registers the calling thread with the engine's RCU flavour, so its access
   sections protect what it reads. Optional: the first access call of an
   unregistered thread does the same (see the paragraph at the top).
   Nests, across engines too: each register needs one unregister, or none
   at all if the thread is about to exit (its exit undoes every
   registration). Any thread, any time, inside an access section too.
   Errors: NTMM_EINVAL (e NULL), NTMM_ENOMEM (no thread-specific-data key
   left for the exit hook). */
NTMM_API int ntmm_thread_register(ntmm_engine_t *e);
/* Undoes one ntmm_thread_register (no-op for e NULL or when the thread has
   no registration left). At the last one the thread leaves RCU, unless it
   is inside an access section or was registered by an access call: it then
   stays registered until it exits. */
NTMM_API void ntmm_thread_unregister(ntmm_engine_t *e);
/* Walks the PFN database, the page lists and the page tables and checks
   every invariant. 0 = all hold; otherwise NTMM_EINVAL, with each broken
   invariant printed to stderr. Exact only while the engine is quiet (no
   concurrent faults or frees); the system threads are paused while it runs. */
NTMM_API int ntmm_audit(ntmm_engine_t *e);

/* ------------------------------------------------------------- paging files */

/* Adds a paging file at run time (up to 16 per engine).
   The path is resolved once, here: the real path of its directory, then its
   last component (the whole real path when it names an existing file), so
   a later chdir, or another file that comes to carry the name, changes
   nothing. The file has no name while the engine runs: it is created
   unnamed in that directory (O_TMPFILE), or, on a file system without it,
   at the name, locked and unlinked at once. So nothing on disk needs
   cleaning up, and nothing is left behind by a removal, a destroy or a
   crash (kill -9): closing the file frees its space, and the engine never
   unlinks a name later. A file already at the name is taken over (locked,
   unlinked, truncated) only if it is empty or a paging file an engine left
   behind (marked with the user.ntmm.pagefile extended attribute): what a
   crash left is reclaimed at the next start. Any other file is refused
   with NTMM_EIO and left as it was; one locked by another engine, with
   NTMM_EBUSY. Two engines given the same path each get a file of their
   own. The file has `initial` bytes really allocated and grows on demand
   up to `maximum` (both rounded down to 4 KiB pages; initial at least
   8 KiB). Only space actually obtained counts toward the commit limit.
   Errors: NTMM_EINVAL (NULL engine or path, maximum below 8 KiB or from
   16 TiB, initial > maximum, path already a paging file of this engine:
   the same resolved path, or a name of the same file), NTMM_EBUSY (16
   paging files already, or the file at the name is locked by another
   engine), NTMM_EIO (the directory cannot be resolved, or the file cannot
   be created, opened, taken over or extended to `initial`: missing
   directory, a parent that is not a directory, a symbolic link to nothing,
   not a regular file, somebody's data at the name, no permission, full
   disk; ntmm_error_detail names the path and the reason), NTMM_ENOMEM. */
NTMM_API int ntmm_pagefile_add(ntmm_engine_t *e, const char *path, size_t initial, size_t maximum);
/* Removes a paging file and frees its space (the file has no name, so
   nothing is unlinked). path is resolved when remove is called, as add
   does, and names the paging file added under the same resolved path (an
   absolute path whose directory has been renamed or removed since is
   compared as it is written). Refuses while any page is stored in it;
   nothing changes then (pages are not migrated to another file).
   Errors: NTMM_EINVAL (NULL, or not a paging file of this engine),
   NTMM_EBUSY (pages stored in it, or the commit charge needs its space). */
NTMM_API int ntmm_pagefile_remove(ntmm_engine_t *e, const char *path);

/* ------------------------------------------------- processes, virtual memory */

#define NTMM_PAGE_SIZE              4096u
#define NTMM_ALLOCATION_GRANULARITY 65536u

/* type bits */
#define NTMM_MEM_COMMIT   0x1000u
#define NTMM_MEM_RESERVE  0x2000u
#define NTMM_MEM_DECOMMIT 0x4000u
#define NTMM_MEM_RELEASE  0x8000u
#define NTMM_MEM_FREE     0x10000u
#define NTMM_MEM_PRIVATE  0x20000u
#define NTMM_MEM_MAPPED   0x40000u
#define NTMM_MEM_TOP_DOWN 0x100000u

/* protections: the Windows PAGE_* values. Private memory takes exactly one
   of NOACCESS, READONLY, READWRITE, optionally | GUARD (not with NOACCESS).
   WRITECOPY is for views of sections: on private memory it is NTMM_EINVAL,
   as on Windows. */
#define NTMM_PAGE_NOACCESS  0x01u
#define NTMM_PAGE_READONLY  0x02u
#define NTMM_PAGE_READWRITE 0x04u
#define NTMM_PAGE_WRITECOPY 0x08u
#define NTMM_PAGE_GUARD     0x100u
/* Windows values that ntmm does not model (it executes nothing and has no
   cache attributes): a protection Windows grants on private memory with
   one of these (EXECUTE, EXECUTE_READ, EXECUTE_READWRITE; NOCACHE or
   WRITECOMBINE with an otherwise valid protection) is NTMM_ENOTSUP; one
   Windows refuses too (EXECUTE_WRITECOPY, two kinds at once, two
   modifiers at once, a modifier with NOACCESS) is NTMM_EINVAL. */
#define NTMM_PAGE_EXECUTE           0x10u
#define NTMM_PAGE_EXECUTE_READ      0x20u
#define NTMM_PAGE_EXECUTE_READWRITE 0x40u
#define NTMM_PAGE_EXECUTE_WRITECOPY 0x80u
#define NTMM_PAGE_NOCACHE           0x200u
#define NTMM_PAGE_WRITECOMBINE      0x400u

/* access kinds */
#define NTMM_ACCESS_READ  0u
#define NTMM_ACCESS_WRITE 1u

/*
 * Commit charge and commit limit (NT's). Committed memory is a promise:
 * every page committed within the limit can be written and read back at
 * any time, whatever else is committed, with the system threads running
 * or not (without them a fault that finds no frame trims and writes
 * inline: slower, never refused). So the limit counts only what committed
 * pages can really use:
 *   commit limit = (frames of the pool − a resident reserve)
 *                  + paging-file slots actually obtained
 * The resident reserve is a few frames reclaim needs to turn pages over
 * (32 + 1/1024 of the pool). The charge counts each committed page once,
 * and also the page-table pages committed pages need (they are not
 * pageable): one per 2 MiB span holding a committed page (and one per
 * 1 GiB and per 512 GiB span), charged by the commit that first needs one
 * and given back by the decommit or release that leaves it empty, plus
 * one top-level table per process. Sparse commits cost more than their
 * pages: one page committed alone in a 2 MiB span costs two. The charge
 * and limit are in ntmm_stats_t (commit_pages, commit_limit_pages).
 * Growable paging files grow when a commit would not fit otherwise.
 *
 * Processes and their address spaces (NtAllocateVirtualMemory semantics).
 *
 * A process handle is valid from ntmm_process_create until
 * ntmm_process_destroy returns; using it afterwards is undefined. Every
 * function below refuses a pointer that is not a live process with
 * NTMM_EINVAL (best effort: a destroyed process is caught only while its
 * memory has not been reused). None of them needs ntmm_thread_register:
 * those that publish or wait for RCU register the calling thread for the
 * duration of the call themselves.
 *
 * Locks of a process (never visible to the caller, but they say what runs
 * beside what): the address-space pushlock (as_lock) guards the VAD map
 * and the working-set limits; the working-set pushlock (ws_lock) is taken
 * shared by page faults (one slot per CPU, so faults on several threads
 * run together) and exclusive to change PTEs of a range; trim_lock orders
 * the episodes that invalidate PTEs and hand frames back (decommit,
 * release, trims, destroy). Translating a valid page takes none of them.
 *   ntmm_allocate, ntmm_free, ntmm_protect: as_lock exclusive — one at a
 *     time per process, and ntmm_query waits for them; faults and
 *     translates of the same process go on beside them, waiting only
 *     while ws_lock is held exclusive to fix the PTEs of the range.
 *   ntmm_query, ntmm_ws_set_limits: as_lock shared / exclusive, briefly.
 *   ntmm_free, ntmm_ws_empty, ntmm_process_destroy: trim_lock too.
 *   Different processes share only the engine-wide commit charge (a CAS)
 *   and the engine's process list (ntmm_process_create/destroy).
 * A call that takes a permission away from resident pages (ntmm_free,
 * ntmm_protect, a recommit with another protection, ntmm_ws_empty,
 * ntmm_process_destroy) returns only after a grace period: every access
 * section in progress on any thread when it unmapped the pages has ended,
 * so no host pointer from before the call is still in use with the old
 * permission. Such calls therefore refuse to run inside the caller's own
 * access section (NTMM_EBUSY), where they would wait for themselves.
 * Pins (ntmm_pin) keep their frames and host pointers until ntmm_unpin,
 * whatever happens to the range meanwhile.
 */

/* Creates a process: an empty user address space [64 KiB,
   0x7FFF'FFFF'0000), a top-level page table (one frame, charged to
   commit), the working-set limits ws_min_pages/ws_max_pages of the engine's
   config, standby page priority 5, and, when the config's aslr_seed is not
   0, placement (ntmm_allocate with *base == 0) starting at a random 64 KiB
   granule of its own. Any thread, beside any other call.
   Errors: NTMM_EINVAL (e or out NULL), NTMM_ECOMMIT (no room in the
   commit limit for its top-level page table), NTMM_ENOMEM (host memory, or no
   frame for the page table); *out is NULL then. */
NTMM_API int ntmm_process_create(ntmm_engine_t *e, ntmm_process_t **out);
/* Destroys p: every frame, page-table page, paging-file slot and page of
   commit charge it holds is given back, and the handle becomes invalid.
   Waits for the working set manager and the swapper to finish any pass
   over p, then for one grace period. No other call may use p during or
   after it (undefined). Errors: NTMM_EINVAL (not a live process),
   NTMM_EBUSY (inside an access section; nothing changes). */
NTMM_API int ntmm_process_destroy(ntmm_process_t *p);

/* Reserves and/or commits (NtAllocateVirtualMemory / VirtualAlloc).
   type: NTMM_MEM_RESERVE, NTMM_MEM_COMMIT or both, optionally
   | NTMM_MEM_TOP_DOWN. prot: see the protections above.
   Reserve (RESERVE, RESERVE|COMMIT, or COMMIT alone with *base == 0, which
   reserves and commits as VirtualAlloc does): *base == 0 lets the engine
   choose a 64 KiB aligned base (bottom-up, or from the top with TOP_DOWN)
   for size rounded up to pages; otherwise *base rounds down to 64 KiB and
   the reservation covers every page holding a byte of [*base, *base +
   size) — a one-page reservation is one page, and the rest of its 64 KiB
   granule stays unusable. prot becomes the region's allocation_prot; with
   COMMIT every page is committed with it. A reservation may be as large as
   the whole user address space (128 TiB less 128 KiB); reserving costs no
   frame and no commit charge, only host memory for its VAD (a word per
   run of pages with equal state), so a sparse reservation costs what its
   committed pages and their page-table pages cost (see the commit charge
   above).
   Commit alone (*base != 0): every page holding a byte of [*base, *base +
   size) must lie in one existing reservation. Pages not yet committed are
   charged to the commit limit and read as zeros (a frame is taken at the
   first touch). Pages already committed keep their contents and are not
   charged again, but take prot, as on Windows: ntmm_query then shows the
   range as its own region, a resident page made read-only refuses writes
   (NTMM_EACCESS) and one made GUARD faults with NTMM_EGUARD at the next
   access; when a permission was taken away the call ends with a grace
   period (see above).
   On success *base is the rounded base (of the reservation, or of the
   first page committed). On failure nothing changes and *base is as given.
   Errors: NTMM_EINVAL (base NULL; size 0; type with other bits or with
   neither RESERVE nor COMMIT; a protection Windows refuses, WRITECOPY
   included; a range past the user address space or below 64 KiB; with
   *base == 0, a size larger than the user address space), NTMM_ENOTSUP (an EXECUTE, NOCACHE or
   WRITECOMBINE protection), NTMM_ECONFLICT (a reservation overlapping
   another after rounding; a commit not wholly inside one reservation),
   NTMM_ECOMMIT (the new pages do not fit the commit limit, even with the
   paging files grown to their maximum), NTMM_ENOMEM (no free range of
   that size for an engine-chosen base, though the size fits the user
   address space; host memory), NTMM_EBUSY
   (recommitting pages with another protection inside an access section;
   reserving and committing new pages there is fine). A commit also
   charges the page-table pages the new pages need (see the commit charge
   above); committing takes no frame, so NTMM_ENOMEM never means a
   shortage of frames. */
NTMM_API int ntmm_allocate(ntmm_process_t *p, uint64_t *base, size_t size, unsigned type,
                           unsigned prot);
/* Decommits or releases (NtFreeVirtualMemory / VirtualFree). type:
   NTMM_MEM_DECOMMIT with size > 0: every page holding a byte of [base,
   base + size) must lie in one reservation; its committed pages are
   decommitted (uncharged; contents, frames and paging-file slots given
   back), pages only reserved stay so. Size 0 names the whole reservation
   by an address in its first page (base rounds down to its page, which
   must be the allocation base): DECOMMIT then decommits every page of it,
   NTMM_MEM_RELEASE frees the range (RELEASE takes size 0 only). After the
   call, accesses to the range fail with NTMM_EACCESS, and the frames were
   reused only after a grace period (see above); the PTEs are torn down one
   2 MiB table at a time, so faults elsewhere in p wait only briefly.
   Errors: NTMM_EINVAL (type not exactly DECOMMIT or RELEASE; RELEASE with
   size != 0; base or the range outside the user address space),
   NTMM_ECONFLICT (size 0 with base not in the first page of a
   reservation; a range not wholly inside one reservation), NTMM_ENOMEM
   (host memory), NTMM_EBUSY (inside an access section). On failure
   nothing changes. */
NTMM_API int ntmm_free(ntmm_process_t *p, uint64_t base, size_t size, unsigned type);
/* Changes the protection of committed pages (NtProtectVirtualMemory /
   VirtualProtect): every page holding a byte of [base, base + size) must
   be committed, in one reservation. *old_prot gets the protection the
   first page had. Resident pages get the new permissions before the call
   returns (a grace period ends it when one was taken away); GUARD makes
   the next access to each page NTMM_EGUARD, which clears it for that page.
   Errors: NTMM_EINVAL (old_prot NULL; size 0; a protection Windows
   refuses, WRITECOPY included; a range past the user address space),
   NTMM_ENOTSUP (an EXECUTE, NOCACHE or WRITECOMBINE protection),
   NTMM_ECONFLICT (a page not committed, or the range not in one
   reservation), NTMM_ENOMEM (host memory), NTMM_EBUSY (inside an access
   section). On failure nothing changes and *old_prot is as given. */
NTMM_API int ntmm_protect(ntmm_process_t *p, uint64_t base, size_t size, unsigned prot,
                          unsigned *old_prot);

typedef struct ntmm_region_info { /* MEMORY_BASIC_INFORMATION */
	uint64_t base;            /* the page holding va */
	uint64_t allocation_base; /* the reservation's base (0 when free) */
	uint64_t size;            /* bytes from base to the end of the run of pages
	                              with the same state and protection */
	unsigned allocation_prot; /* prot given at reservation (0 when free) */
	unsigned prot;            /* committed: the protection now (GUARD cleared
	                              once hit); reserved: 0; free: NOACCESS */
	unsigned state;           /* NTMM_MEM_COMMIT, _RESERVE or _FREE */
	unsigned type;            /* NTMM_MEM_PRIVATE (0 when free) */
} ntmm_region_info_t;
/* Describes the region holding va (NtQueryVirtualMemory /
   VirtualQuery): in a reservation, the run of pages from va's page with
   one state and protection, as ntmm_allocate and ntmm_protect split and
   merge them; outside, the free range up to the next reservation or the
   end of user space (below 64 KiB: up to 64 KiB). Takes as_lock shared:
   beside faults and other queries, also inside an access section; it waits
   for an ntmm_allocate/free/protect of p in progress. The answer may be
   stale as soon as another thread changes p's address space.
   Errors: NTMM_EINVAL (info NULL, va at or past 0x7FFF'FFFF'0000). */
NTMM_API int ntmm_query(ntmm_process_t *p, uint64_t va, ntmm_region_info_t *info);

/* ------------------------------------------------------------------ access */

/* Faults (translate, read, write, pin) on committed pages do not fail for
   want of memory: a fault that finds no frame has pages written to the
   paging files and working sets trimmed (by the system threads, or inline)
   and retries. NTMM_ENOMEM from an access means nothing could be made
   free: every frame is pinned or holds a page table, or the only way to
   free one is a grace period the caller itself blocks (it holds a pointer
   from ntmm_translate inside its access section while faulting again). */

/* An access section: an RCU read-side section of the calling thread (it
   registers the thread if needed). Host pointers from ntmm_translate stay
   valid until the matching ntmm_access_end; a trim, decommit or protect
   on another thread takes the page away from the process at once but
   hands its frame on only after a grace period, which waits for this
   section. Sections nest (the outermost end closes it) and cost a few
   thread-local operations; keep them short, since every grace period
   (trimming, freeing) waits for them. Inside one, calls that wait for a
   grace period return NTMM_EBUSY, and ntmm_engine_destroy aborts. A
   thread that exits inside a section has it ended for it. e is not
   dereferenced: sections are per thread, not per engine. */
NTMM_API void ntmm_access_begin(ntmm_engine_t *e);
NTMM_API void ntmm_access_end(ntmm_engine_t *e);
/* Resolves va in p for access (NTMM_ACCESS_READ or NTMM_ACCESS_WRITE),
   taking any fault it needs, and sets *host to the host address of va. The
   pointer covers the rest of va's page and is valid until the calling
   thread's ntmm_access_end: call it inside an access section. Outside
   one, nothing keeps the frame (a trim on another thread may reuse it at
   once), so the pointer must not be dereferenced. Writes through a READ
   translation are undefined. Any registered or unregistered thread.
   Errors: NTMM_EINVAL (bad handle, host NULL, access unknown),
   NTMM_EACCESS (va outside the user address space, not committed, or a
   protection that forbids the access), NTMM_EGUARD (a guard page: the
   guard is cleared, a retry succeeds), NTMM_ENOMEM (no frame could be had
   or the working set is full), NTMM_EIO (the paging-file read failed). */
NTMM_API int ntmm_translate(ntmm_process_t *p, uint64_t va, unsigned access, void **host);
NTMM_API int ntmm_read(ntmm_process_t *p, uint64_t va, void *buf, size_t len);
NTMM_API int ntmm_write(ntmm_process_t *p, uint64_t va, const void *buf, size_t len);
/* Probe and lock (an MDL): faults in every page of [va, va + len) for
   access and takes a reference on its frame, so the pages stay resident
   and their host pointers (ntmm_pin_page) stay valid until ntmm_unpin,
   outside any access section and even if the range is decommitted or the
   process destroyed meanwhile (the frames are released at the unpin).
   On failure nothing stays pinned.
   Errors: NTMM_EINVAL (bad handle, out NULL, len 0, access unknown),
   NTMM_EACCESS (range outside the user address space, not committed, or
   protected against the access), NTMM_EGUARD, NTMM_ENOMEM (also: no host
   memory for the pin), NTMM_EIO — as for ntmm_translate. */
NTMM_API int ntmm_pin(ntmm_process_t *p, uint64_t va, size_t len, unsigned access,
                      ntmm_pin_t **out);
/* Host address of the pin's page `index` (0 = the page holding va), valid
   until ntmm_unpin; NULL if pin is NULL or index is past the last page. */
NTMM_API void *ntmm_pin_page(const ntmm_pin_t *pin, size_t index);
/* Releases the pin's frames and frees it; NULL is a no-op. Any thread.
   Unpinning a pin twice, or after its engine was destroyed, is undefined:
   debug builds (NTMM_DEBUG >= 1, the default without NDEBUG) detect both
   and abort with a message naming the misuse. */
NTMM_API void ntmm_unpin(ntmm_pin_t *pin);

/* What the calling thread's most recent ntmm_translate / ntmm_read /
   ntmm_write / ntmm_pin resolved: the kind of its last fault, or
   NTMM_FAULT_NONE when every page was already valid. COLLIDED: the fault
   found the page in another thread's I/O and waited for it. One
   thread-local word, set by the fault handler (for tools and the demo). */
enum ntmm_fault_kind {
	NTMM_FAULT_NONE = 0,
	NTMM_FAULT_DEMAND_ZERO,
	NTMM_FAULT_SOFT,
	NTMM_FAULT_HARD,
	NTMM_FAULT_COLLIDED,
	NTMM_FAULT_COPY_ON_WRITE,
	NTMM_FAULT_KINDS
};
NTMM_API unsigned ntmm_last_fault_kind(void);

/* ------------------------------------------- sections, views, copy-on-write, clone */

/* A section is memory that several processes can map (NtCreateSection /
   CreateFileMapping): backed by a file, or by the paging files (shared
   memory). Its pages are described by prototype PTEs in the section's
   segment (one segment per file, whoever creates sections on it, so two
   sections of one file share its pages); a view's process PTEs point at
   them and are filled on fault, never at map time. The engine caches file
   pages in its own frames: the file as read(2) sees it is current after
   ntmm_flush_view, or once the mapped page writer has written the page; a
   change made to the file from outside after a page was brought in is not
   seen while that page is in memory. */
typedef struct ntmm_section ntmm_section_t;
#define NTMM_SEC_COMMIT \
	0x8000000u /* paging-file backed: the whole size is charged at create (default) */
#define NTMM_SEC_RESERVE \
	0x4000000u /* paging-file backed: pages are committed later, in a view, with ntmm_allocate(MEM_COMMIT) */

/* fd >= 0: backed by that file (the engine dups fd; the caller may close
   its own). size 0 = the file's size; a size past the file's end grows the
   file when prot allows writing, else NTMM_EINVAL. fd < 0: backed by the
   paging files; size required. prot: the most any view may get —
   NTMM_PAGE_READONLY, _READWRITE or _WRITECOPY. flags: NTMM_SEC_COMMIT or
   NTMM_SEC_RESERVE for paging-file sections (0 = COMMIT), 0 for files.
   Errors: NTMM_EINVAL, NTMM_ECOMMIT (SEC_COMMIT past the limit), NTMM_EIO
   (the file), NTMM_ENOMEM. */
NTMM_API int ntmm_section_create(ntmm_engine_t *e, int fd, uint64_t size, unsigned prot,
                                 unsigned flags, ntmm_section_t **out);
/* Drops the caller's reference; the section lives while a view maps it.
   Errors: NTMM_EINVAL (not a live section). */
NTMM_API int ntmm_section_close(ntmm_section_t *s);

/* Maps [offset, offset + size) of s into p (NtMapViewOfSection). offset: a
   multiple of 64 KiB; size 0 = to the section's end, else rounded up to
   pages, and the range must lie in the section (NTMM_EINVAL). *base: 0 =
   the engine chooses (64 KiB granular), else the address wanted (64 KiB
   aligned; a range not wholly free is NTMM_ECONFLICT). prot: READONLY (any
   section), READWRITE (a READWRITE section), WRITECOPY (a READWRITE or
   WRITECOPY section); any other pairing is NTMM_EACCESS. A WRITECOPY view
   charges commit for its whole size at map time (NTMM_ECOMMIT); a write to
   it makes a private copy (NTMM_FAULT_COPY_ON_WRITE), which is paged to the
   paging files, never to the section's file. ntmm_query reports a view as
   one region of type NTMM_MEM_MAPPED with allocation_base = the view's
   base; ntmm_protect works inside a view within what the section allows;
   ntmm_free on a view is NTMM_EINVAL. */
NTMM_API int ntmm_map_view(ntmm_section_t *s, ntmm_process_t *p, uint64_t *base, uint64_t offset,
                           size_t size, unsigned prot);
/* base: a view's base (else NTMM_EINVAL). Dirty file pages stay in memory
   for the mapped page writer: unmapping loses nothing and waits for no
   write. Errors: NTMM_EINVAL, NTMM_EBUSY (inside an access section). */
NTMM_API int ntmm_unmap_view(ntmm_process_t *p, uint64_t base);
/* Writes every dirty page of [va, va + len) of one view (len 0 = to the
   view's end) to the section's file and returns once the data is durable
   (written and fdatasync'ed). Paging-file-backed views: 0, nothing to do.
   Errors: NTMM_EINVAL (not inside a view), NTMM_EIO (a write or the sync
   failed: the pages stay dirty and are written again later). */
NTMM_API int ntmm_flush_view(ntmm_process_t *p, uint64_t va, size_t len);

/* fork(): a new process with p's address space. Private committed pages
   are shared copy-on-write (the first write on either side copies the
   page); views are mapped again at the same addresses (shared; WRITECOPY
   views stay copy-on-write); reservations, protections and guard pages are
   kept. The child is charged p's private commit (NTMM_ECOMMIT if it does
   not fit; nothing is created then). */
NTMM_API int ntmm_process_clone(ntmm_process_t *p, ntmm_process_t **child);

/* ------------------------------------------------- working sets, information */

/* Sets p's working-set minimum and maximum (pages; SetProcessWorkingSetSize).
   They are targets for the working set manager, not a cap: on its passes
   it trims a set above its maximum down to it, and when available memory
   is low it trims sets above their minimum toward it, taking only pages
   not accessed since the previous aging. The call itself trims nothing and
   a fault never waits for it. The maximum also bounds what the swapper
   records for bringing an out-swapped set back. Takes as_lock exclusive
   briefly. Errors: NTMM_EINVAL (min_pages 0, min_pages > max_pages,
   max_pages above 1 Mi pages — the working-set list's capacity). */
NTMM_API int ntmm_ws_set_limits(ntmm_process_t *p, size_t min_pages, size_t max_pages);
/* Trims every resident page of p's working set that is not pinned
   (EmptyWorkingSet): each goes to the Standby list, or to the Modified
   list if dirty (the modified page writer writes it to a paging file
   later); nothing is lost, the next access is a soft fault, or a hard
   fault once the frame was repurposed. Faults on p go on meanwhile (the
   trim drops ws_lock every 2048 entries); the call ends with a grace
   period. Errors: NTMM_EINVAL (not a live process), NTMM_EBUSY (inside an
   access section). */
NTMM_API int ntmm_ws_empty(ntmm_process_t *p);
typedef struct ntmm_process_info {
	size_t ws_pages;            /* resident pages in the working set (valid PTEs) */
	size_t ws_peak_pages;       /* the largest ws_pages seen (>= ws_pages) */
	size_t commit_pages;        /* pages of commit charge held */
	size_t page_faults;         /* faults taken, those that ended in an error included */
	size_t hard_faults;         /* faults that read a page from a paging file */
	size_t swap_outs, swap_ins; /* times the swapper out-swapped it / it came back */
	size_t swap_in_pages;       /* pages the swapper's in-swaps brought back */
} ntmm_process_info_t;
/* p's counters (GetProcessMemoryInfo), read without a lock: each field is
   exact at some moment of the call, not all at the same one. Any thread,
   any time (inside an access section too).
   Errors: NTMM_EINVAL (not a live process, out NULL). */
NTMM_API int ntmm_process_info(ntmm_process_t *p, ntmm_process_info_t *out);
/* Standby priority (0..7) the process's pages get when trimmed from its
   working set; repurposing takes the lowest priority first. The default is
   5; pages already on Standby keep theirs. Any thread, no lock.
   Errors: NTMM_EINVAL (not a live process, prio above 7). */
NTMM_API int ntmm_process_set_page_priority(ntmm_process_t *p, unsigned prio);
NTMM_API int ntmm_stats_get(ntmm_engine_t *e, ntmm_stats_t *out);
/* Which paging I/O backend the engine uses for reads and for writes, and
   why, as one line of text in buf: "io_uring for ..." or "preadv/pwritev
   for ...", e.g. "io_uring for read batches of >= 2 requests; preadv/pwritev
   for single reads and all writes (io_uring_queue_init succeeded (8 rings))"
   or "preadv/pwritev for all reads and writes: io_uring unavailable:
   io_uring_queue_init: Operation not permitted". Always NUL-terminated;
   cut at len - 1 characters (512 bytes hold any description). Any thread,
   any time between create and destroy; takes no lock.
   Errors: NTMM_EINVAL (NULL engine or buf, len 0). */
NTMM_API int ntmm_engine_io_backend(ntmm_engine_t *e, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* NTMM_H */
