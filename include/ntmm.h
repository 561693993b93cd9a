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
	size_t physical_bytes;     /* size of the frame pool (all nodes), multiple of 2 MiB */
	const char *pagefile_path; /* first paging file; NULL = none */
	size_t pagefile_initial;   /* bytes */
	size_t pagefile_maximum;   /* bytes; growth up to this */
	int backing;               /* enum ntmm_backing */
	const char *topology;      /* NULL = this machine; else an hwloc synthetic
				      string such as "pack:2 numa:1 core:2 pu:1" */
	int start_threads;         /* 1 = start the system threads */

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
} ntmm_config_t;

/* Fills cfg with defaults, then applies NTMM_<NAME> environment overrides
   (sizes accept K/M/G suffixes). */
NTMM_API void ntmm_config_init(ntmm_config_t *cfg);
/* Errors: NTMM_EINVAL (bad config: 0 bytes, size not a multiple of 2 MiB,
   unknown backing, malformed topology, priority outside 0..31, CPU not on
   this machine), NTMM_ENOMEM (no memory for the pool), NTMM_ENOTSUP (a
   forced backing that this machine cannot give), NTMM_EIO (paging file). */
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

/* Adds a paging file at run time (up to 16 per engine). The file is created
   at path with `initial` bytes really allocated (an existing file is used
   only if it is empty or an earlier engine's paging file, marked with the
   user.ntmm.pagefile extended attribute; any other file is refused with
   NTMM_EIO and left as it was), grows on
   demand up to `maximum` (both rounded down to 4 KiB pages; initial at least
   8 KiB), and is deleted when removed or when the engine is destroyed. Only
   space actually obtained counts toward the commit limit.
   Errors: NTMM_EINVAL (NULL engine or path, maximum below 8 KiB or from
   16 TiB, initial > maximum, path already a paging file of this engine),
   NTMM_EBUSY (16 paging files already, or the file is in use by another
   engine), NTMM_EIO (the file cannot be created, opened or extended to
   `initial`: missing directory, a parent that is not a directory, no
   permission, full disk; ntmm_error_detail names the path and the reason),
   NTMM_ENOMEM. */
NTMM_API int ntmm_pagefile_add(ntmm_engine_t *e, const char *path, size_t initial, size_t maximum);
/* Removes a paging file (the path as given to add, or the same file by
   another name). Refuses while any page is stored in it; nothing changes
   then (pages are not migrated to another file).
   Errors: NTMM_EINVAL (NULL, or not a paging file of this engine),
   NTMM_EBUSY (pages stored in it). */
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

/* protections */
#define NTMM_PAGE_NOACCESS  0x01u
#define NTMM_PAGE_READONLY  0x02u
#define NTMM_PAGE_READWRITE 0x04u
#define NTMM_PAGE_WRITECOPY 0x08u
#define NTMM_PAGE_GUARD     0x100u

/* access kinds */
#define NTMM_ACCESS_READ  0u
#define NTMM_ACCESS_WRITE 1u

NTMM_API int ntmm_process_create(ntmm_engine_t *e, ntmm_process_t **out);
NTMM_API int ntmm_process_destroy(ntmm_process_t *p);

NTMM_API int ntmm_allocate(ntmm_process_t *p, uint64_t *base, size_t size, unsigned type,
                           unsigned prot);
NTMM_API int ntmm_free(ntmm_process_t *p, uint64_t base, size_t size, unsigned type);
NTMM_API int ntmm_protect(ntmm_process_t *p, uint64_t base, size_t size, unsigned prot,
                          unsigned *old_prot);

typedef struct ntmm_region_info {
	uint64_t base, allocation_base, size;
	unsigned allocation_prot, prot;
	unsigned state;
	unsigned type;
} ntmm_region_info_t;
NTMM_API int ntmm_query(ntmm_process_t *p, uint64_t va, ntmm_region_info_t *info);

/* ------------------------------------------------------------------ access */

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

/* ------------------------------------------------- working sets, information */

NTMM_API int ntmm_ws_set_limits(ntmm_process_t *p, size_t min_pages, size_t max_pages);
NTMM_API int ntmm_ws_empty(ntmm_process_t *p);
typedef struct ntmm_process_info {
	size_t ws_pages, ws_peak_pages, commit_pages, page_faults, hard_faults;
	size_t swap_outs, swap_ins; /* times the swapper out-swapped it / it came back */
	size_t swap_in_pages;       /* pages the swapper's in-swaps brought back */
} ntmm_process_info_t;
NTMM_API int ntmm_process_info(ntmm_process_t *p, ntmm_process_info_t *out);
/* Standby priority (0..7) the process's pages get when trimmed from its
   working set; repurposing takes the lowest priority first. The default is
   5. Errors: NTMM_EINVAL (bad handle, prio above 7). */
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
