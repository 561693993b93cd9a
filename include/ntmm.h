/*
 * ntmm — a user-space, NUMA-aware memory-manager engine modelled on the
 * Windows NT memory manager.
 *
 * This is the whole public API: opaque handles, flags and error codes. Every
 * function returns 0 or a negative NTMM_E* code unless its comment says
 * otherwise; results come back through out-parameters. Virtual addresses are
 * uint64_t in a process's own address space; host pointers are void *.
 *
 * Threads: any thread that calls ntmm_access_begin/translate/read/write/pin
 * must first call ntmm_thread_register on that engine (it registers the
 * thread with the engine's RCU flavour).
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
	const char *pagefile_path; /* first paging file; NULL = none */
	size_t pagefile_initial;   /* bytes */
	size_t pagefile_maximum;   /* bytes; growth up to this */
	int backing;               /* enum ntmm_backing */
	const char *topology;      /* NULL = this machine; else an hwloc synthetic
				      string such as "pack:2 numa:1 core:2 pu:1": at most
				      1024 PUs (the product of the counts), 8192 objects,
				      32 levels and 64 NUMA nodes, checked before hwloc
				      loads it. The machine's CPUs are dealt round-robin
				      over its nodes; memory is not bound */
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
   forced backing that this machine cannot give), NTMM_EIO (paging file). */
NTMM_API int ntmm_engine_create(const ntmm_config_t *cfg, ntmm_engine_t **out);
NTMM_API void ntmm_engine_destroy(ntmm_engine_t *e);
/* The calling thread may access engine memory (registers it with RCU).
   Nests: each register needs one unregister. */
NTMM_API int ntmm_thread_register(ntmm_engine_t *e);
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

NTMM_API void ntmm_access_begin(ntmm_engine_t *e);
NTMM_API void ntmm_access_end(ntmm_engine_t *e);
NTMM_API int ntmm_translate(ntmm_process_t *p, uint64_t va, unsigned access, void **host);
NTMM_API int ntmm_read(ntmm_process_t *p, uint64_t va, void *buf, size_t len);
NTMM_API int ntmm_write(ntmm_process_t *p, uint64_t va, const void *buf, size_t len);
NTMM_API int ntmm_pin(ntmm_process_t *p, uint64_t va, size_t len, unsigned access,
                      ntmm_pin_t **out);
NTMM_API void *ntmm_pin_page(const ntmm_pin_t *pin, size_t index);
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
