/*
 * Paging-file locations: where a page lives on the backing store, in the
 * form the pagefile PTE carries (NTMM-REFERENCE.md §3). The virtual layer
 * stores these bits in a software PTE; the io layer turns them back into a
 * file and a 4 KiB slot.
 *
 * A location is (slot << 4) | file: 4 bits of paging-file index (up to 16
 * files) and 32 bits of slot offset. Slot 0 of every paging file is reserved
 * and never handed out, so a PTE whose offset field is 0 is not a pagefile
 * PTE (NT uses offset 0 for demand-zero); NTMM__PFLOC_NONE is that value.
 *
 * In the PTE the fields sit where the NT x64 software PTE has them:
 * PageFileLow (file index) in bits 1..4 and PageFileHigh (offset) in bits
 * 32..63, leaving bit 0 (Valid), bits 5..9 (Protection), bit 10 (Prototype)
 * and bit 11 (Transition) to the PTE code.
 */
#ifndef NTMM_IO_PFLOC_H
#define NTMM_IO_PFLOC_H

#include <stdbool.h>
#include <stdint.h>

#define NTMM__PF_MAX_FILES 16u
#define NTMM__PF_FILE_BITS 4u
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
/* true if loc names a slot (slot 0 never does) that fits the PTE field */
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

/* ---- the PTE fields (NT x64 MMPTE_SOFTWARE layout) */
#define NTMM__PTE_PAGEFILE_LOW_SHIFT  1
#define NTMM__PTE_PAGEFILE_HIGH_SHIFT 32
/* every bit the location occupies in a PTE */
#define NTMM__PTE_PAGEFILE_MASK                                                 \
	((((uint64_t)NTMM__PF_MAX_FILES - 1) << NTMM__PTE_PAGEFILE_LOW_SHIFT) | \
	 (0xffffffffull << NTMM__PTE_PAGEFILE_HIGH_SHIFT))

/* The PTE bits for loc (all other bits 0): OR them into a software PTE. */
static inline uint64_t ntmm__pfloc_to_pte(ntmm__pfloc_t loc)
{
	return ((uint64_t)ntmm__pfloc_file(loc) << NTMM__PTE_PAGEFILE_LOW_SHIFT) |
	       (ntmm__pfloc_slot(loc) << NTMM__PTE_PAGEFILE_HIGH_SHIFT);
}
/* The location held in a software PTE's pagefile fields (other bits ignored).
   NTMM__PFLOC_NONE-slot (offset 0) means "not in a paging file". */
static inline ntmm__pfloc_t ntmm__pfloc_from_pte(uint64_t pte)
{
	unsigned file = (unsigned)(pte >> NTMM__PTE_PAGEFILE_LOW_SHIFT) & (NTMM__PF_MAX_FILES - 1);
	return ntmm__pfloc_make(file, pte >> NTMM__PTE_PAGEFILE_HIGH_SHIFT);
}

#endif
