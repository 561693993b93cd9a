/*
 * Engine counters: one X-macro list per layer, turned into a versioned
 * struct. Counters are kept per CPU inside the engine and summed when read
 * (ntmm_stats_get), so no hot path writes a shared cache line for them.
 * Gauges (list sizes, totals) are read from the structures they describe.
 */
#ifndef NTMM_STATS_H
#define NTMM_STATS_H

#include <ntmm.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NTMM_STATS_VERSION 3 /* 2: swap_in_pages; 3: reclaims, reclaim_trimmed, slots_released */

/* X(name, description) — event counters, summed over CPUs */
#define NTMM_STATS_COUNTERS_PHYS(X)                                      \
	X(frame_allocs, "frames handed out")                             \
	X(frame_frees, "frames returned")                                \
	X(frames_zeroed, "frames zeroed (zero page thread or inline)")   \
	X(frames_zeroed_inline, "frames zeroed inline by an allocator")  \
	X(standby_repurposed, "standby pages taken for another use")     \
	X(chunk_commits, "2 MiB chunks committed (MADV_POPULATE_WRITE)") \
	X(chunk_releases, "2 MiB chunks returned to the OS")             \
	X(frame_alloc_fails, "frame allocations refused (NTMM_ENOMEM)")

#define NTMM_STATS_COUNTERS_VIRT(X)                                                  \
	X(page_faults, "faults of every kind")                                       \
	X(demand_zero_faults, "demand-zero faults")                                  \
	X(soft_faults, "transition (soft) faults")                                   \
	X(hard_faults, "paging-file or file reads")                                  \
	X(collided_faults, "faults that found the page in progress")                 \
	X(access_violations, "faults refused with NTMM_EACCESS")                     \
	X(guard_faults, "guard-page faults")                                         \
	X(pages_trimmed, "working-set pages trimmed")                                \
	X(pagetable_pages, "page-table pages created")                               \
	X(rcu_shootdowns, "trim batches closed with a grace period")                 \
	X(reclaims, "inline reclaims by faults that found no frame")                 \
	X(reclaim_trimmed, "pages trimmed by inline reclaims")                       \
	X(slots_released, "read-back pages that gave their slot back (slots short)") \
	X(cow_faults, "copy-on-write faults (private copies made)")                  \
	X(section_reads, "mapped-file pages read by hard faults")

#define NTMM_STATS_COUNTERS_IO(X)                                           \
	X(pages_written, "pages written to paging files")                   \
	X(write_ios, "write I/Os issued")                                   \
	X(pages_read, "pages read from paging files")                       \
	X(read_ios, "read I/Os issued")                                     \
	X(io_errors, "failed reads or writes")                              \
	X(swap_outs, "processes out-swapped")                               \
	X(swap_ins, "processes in-swapped")                                 \
	X(swap_in_pages, "pages the swapper brought back at in-swap")       \
	X(mapped_pages_written, "mapped-file pages written to their files") \
	X(mapped_write_ios, "mapped-file write I/Os issued")

#define NTMM_STATS_COUNTERS(X)      \
	NTMM_STATS_COUNTERS_PHYS(X) \
	NTMM_STATS_COUNTERS_VIRT(X) \
	NTMM_STATS_COUNTERS_IO(X)

/* X(name, description) — gauges, read at the time of the call */
#define NTMM_STATS_GAUGES(X)                                                 \
	X(total_frames, "frames in the pool (all nodes)")                    \
	X(committed_chunk_frames, "frames in chunks backed by memory")       \
	X(zeroed_pages, "Zeroed list")                                       \
	X(free_pages, "Free list")                                           \
	X(standby_pages, "Standby lists, all priorities")                    \
	X(modified_pages, "Modified list")                                   \
	X(modified_nowrite_pages, "ModifiedNoWrite list")                    \
	X(modified_mapped_pages, "mapped Modified list (dirty file pages)")  \
	X(bad_pages, "Bad list")                                             \
	X(active_pages, "Active (in a working set, locked or a page table)") \
	X(transition_pages, "Transition (in flight)")                        \
	X(commit_pages, "system commit charge")                              \
	X(commit_limit_pages, "system commit limit")                         \
	X(pagefile_pages, "paging-file space in use")                        \
	X(pagefile_size_pages, "paging-file slots obtained")                 \
	X(processes, "live processes")

struct ntmm_stats {
	uint32_t version; /* NTMM_STATS_VERSION */
	uint32_t nodes;
#define NTMM__STATS_FIELD(name, desc) uint64_t name;
	NTMM_STATS_COUNTERS(NTMM__STATS_FIELD)
	NTMM_STATS_GAUGES(NTMM__STATS_FIELD)
#undef NTMM__STATS_FIELD
	uint64_t standby_by_priority[8];
};

#ifdef __cplusplus
}
#endif
#endif /* NTMM_STATS_H */
