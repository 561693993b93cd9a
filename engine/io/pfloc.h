/*
 * Paging-file locations: where a page lives on the backing store, as a
 * paging-file index and a 4 KiB slot in that file. The io layer hands
 * locations out (ntmm__pagefile_alloc) and reads and writes through them;
 * it knows nothing of PTEs. The virtual layer keeps a location in a
 * pagefile-format software PTE; the bit layout and the conversion in both
 * directions live with the other PTE formats in virt/pte.h.
 *
 * A location is (slot << NTMM__PF_FILE_BITS) | file: 4 bits of paging-file
 * index (up to NTMM__PF_MAX_FILES files) and 32 bits of slot offset, the
 * widths of the PTE's fields. Slot 0 of every paging file is reserved and
 * never handed out, so a location whose slot is 0 names no page (NT uses
 * offset 0 for demand-zero); NTMM__PFLOC_NONE is that value.
 */
#ifndef NTMM_IO_PFLOC_H
#define NTMM_IO_PFLOC_H

#include <stdbool.h>
#include <stdint.h>

/* the most paging files an engine can have: the index is NTMM__PF_FILE_BITS wide */
#define NTMM__PF_FILE_BITS 4u
#define NTMM__PF_MAX_FILES (1u << NTMM__PF_FILE_BITS)
#define NTMM__PF_SLOT_BITS 32u
/* exclusive upper bound of slot numbers (slot 0 reserved, so 2^32 - 1 usable) */
#define NTMM__PF_MAX_SLOTS (1ull << NTMM__PF_SLOT_BITS)

typedef uint64_t ntmm__pfloc_t;
#define NTMM__PFLOC_NONE ((ntmm__pfloc_t)0)

static inline ntmm__pfloc_t ntmm__pfloc_make(unsigned file, uint64_t slot)
{
	return (slot << NTMM__PF_FILE_BITS) | (file & (NTMM__PF_MAX_FILES - 1));
}
static inline unsigned ntmm__pfloc_file(ntmm__pfloc_t loc)
{
	return (unsigned)(loc & (NTMM__PF_MAX_FILES - 1));
}
static inline uint64_t ntmm__pfloc_slot(ntmm__pfloc_t loc)
{
	return loc >> NTMM__PF_FILE_BITS;
}
/* true if loc names a slot (slot 0 never does) within NTMM__PF_SLOT_BITS */
static inline bool ntmm__pfloc_valid(ntmm__pfloc_t loc)
{
	uint64_t s = ntmm__pfloc_slot(loc);
	return s != 0 && s < NTMM__PF_MAX_SLOTS;
}
/* the location n slots further on in the same file */
static inline ntmm__pfloc_t ntmm__pfloc_add(ntmm__pfloc_t loc, uint64_t n)
{
	return loc + (n << NTMM__PF_FILE_BITS);
}

#endif
