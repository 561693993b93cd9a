/*
 * The per-thread software TLB: a direct-mapped cache of (process, page) →
 * host frame translations, so a translate that hits costs two loads and no
 * page-table walk.
 *
 * The grace-period rule (DESIGN.md §2) holds because entries live for one
 * access section only: ntmm_access_begin (outermost) bumps the thread's
 * generation, and an entry is used only while its generation is current
 * and the thread is still inside that section. A trimmer, decommit or
 * protect that invalidates a PTE hands the frame on (or returns) only after
 * a grace period, which waits for this section — exactly the guarantee a
 * pointer returned by translate already has. Calls that need a grace period
 * refuse to run inside a section (NTMM_EBUSY), so a thread never sees its
 * own mapping shrink under its TLB. A TLB hit does not set Accessed (as
 * with a hardware TLB); an entry is writable only if the PTE was Dirty and
 * writable when it was filled.
 *
 * State is thread-local (like liburcu's reader registration), one per
 * thread for every engine: entries are tagged with the process pointer,
 * which cannot be freed while a section that used it is open.
 */
#ifndef NTMM_VIRT_TLB_H
#define NTMM_VIRT_TLB_H

#include <stdint.h>

#include "debug.h"
#include "sync/rcu.h"

#define NTMM__TLB_ENTRIES 1024u /* direct-mapped by page number */

typedef struct ntmm__tlb_entry {
	uint64_t page;  /* virtual page address */
	const void *p;  /* process */
	uintptr_t host; /* frame host address | 1 if writable */
	uint64_t gen;   /* section generation it was filled in */
} ntmm__tlb_entry_t;

/*
 *   depth   — access-section nesting of this thread
 *   gen     — bumped at each outermost ntmm_access_begin (and when a fault
 *             leaves the section to wait for frames: fault.c)
 *   held    — the gen in which translate last handed out a host pointer;
 *             a section whose gen differs holds no pointer, so a fault in
 *             it may leave the read side while it waits for frames
 *   e       — NTMM__TLB_ENTRIES entries, allocated at the first fill, freed
 *             when the thread stops being an RCU reader (its last
 *             ntmm_thread_unregister outside a section) or exits
 */
typedef struct ntmm__tlb {
	uint32_t depth;
	uint64_t gen;
	uint64_t held;
	ntmm__tlb_entry_t *e;
} ntmm__tlb_t;

extern __thread ntmm__tlb_t ntmm__tlb __attribute__((tls_model("initial-exec")));

static inline void ntmm__tlb_section_begin(void)
{
	if (ntmm__tlb.depth++ == 0)
		ntmm__tlb.gen++;
}

static inline void ntmm__tlb_section_end(void)
{
	ntmm__assert(ntmm__tlb.depth > 0);
	ntmm__tlb.depth--;
}

/*
 * The access API's thread lifecycle (access.c). Every entry point that
 * takes a read-side lock (access_begin, translate, read, write, pin) first
 * makes sure the calling thread is an RCU reader, adopting it if nobody
 * registered it: the check is one thread-local load. A registered or
 * adopted thread carries a thread-specific value whose destructor runs at
 * thread exit: it ends the thread's access sections (TLB depth and every
 * read-side level, waking a grace period that waits for them), frees its
 * TLB entries and takes it out of liburcu's registry. Nothing of it
 * points into an engine, so engines may be destroyed before or after.
 */
/* Arms the exit destructor for the calling thread: 0, or NTMM_ENOMEM if
   no thread-specific-data key could be had. */
int ntmm__access_thread_hook(void);
/* Adopts the calling thread as a reader until it exits (and arms the
   destructor if it can). */
void ntmm__access_thread_adopt(void);
/* Frees the thread's entries if it is no longer a reader and is outside
   every section (its last ntmm_thread_unregister). */
void ntmm__tlb_thread_release(void);

static inline void ntmm__access_thread_ensure(void)
{
	if (ntmm__unlikely(!ntmm__rcu_thread_is_reader()))
		ntmm__access_thread_adopt();
}

#endif
