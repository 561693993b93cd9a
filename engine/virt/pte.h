/*
 * The 64-bit software PTE formats of an ntmm address space, after the NT
 * x64 layouts (NTMM-REFERENCE.md §3), and the 4-level page-table geometry.
 * Hardware never walks these tables; the engine does (access.c, fault.c),
 * so the bit positions are ours, but the formats and their meaning are NT's.
 *
 * Valid (V=1):
 *   bit 0 V, bit 1 W (write allowed), bit 2 R (read allowed; clear for a
 *   resident page that is NOACCESS or GUARD now: the fault path decides),
 *   bit 5 Accessed, bit 6 Dirty, bit 9 CopyOnWrite,
 *   bits 12..43 PFN, bits 44..63 working-set index (leaf PTEs only).
 *   Upper-level entries (PXE/PPE/PDE) are valid PTEs naming the PFN of the
 *   next table, with W|R set.
 * Invalid (V=0), protection code in bits 5..9 (NT MM_* codes, below):
 *   Transition  T(bit 11)=1, P=0: PFN in bits 12..43, page still in memory
 *   Prototype   P(bit 10)=1: bits 16..63 = prototype PTE address >> 3, or
 *               all ones = "look it up through the VAD"
 *   Pagefile    T=0, P=0: paging-file index bits 1..4, page offset bits
 *               32..63 (offset 0 with index 0 is demand-zero); the two
 *               fields hold an io/pfloc.h location (ntmm__pfloc_to_pte)
 *   Demand-zero the pagefile format with index 0, offset 0, protection ≠ 0
 *   Zero        0: nothing recorded; the VAD decides (reserved, committed)
 *
 * Every change of a PTE that other threads may touch at the same time is a
 * CAS (fault.c, wsl.c); a 0 → non-zero change bumps the table's used-entry
 * count, a non-zero → 0 change drops it (pagetable.c).
 */
#ifndef NTMM_VIRT_PTE_H
#define NTMM_VIRT_PTE_H

#include <stdbool.h>
#include <stdint.h>

#include "io/pfloc.h"
#include "phys/page.h"

#define NTMM__PTE_VALID           (1ull << 0)
#define NTMM__PTE_WRITE           (1ull << 1)
#define NTMM__PTE_READ            (1ull << 2)
#define NTMM__PTE_ACCESSED        (1ull << 5)
#define NTMM__PTE_DIRTY           (1ull << 6)
#define NTMM__PTE_COW             (1ull << 9)
#define NTMM__PTE_PROTOTYPE       (1ull << 10)
#define NTMM__PTE_TRANSITION      (1ull << 11)
#define NTMM__PTE_PFN_SHIFT       12
#define NTMM__PTE_PFN_MASK        (0xffffffffull << NTMM__PTE_PFN_SHIFT)
#define NTMM__PTE_WSI_SHIFT       44
#define NTMM__PTE_WSI_BITS        20
#define NTMM__PTE_WSI_MASK        (((1ull << NTMM__PTE_WSI_BITS) - 1) << NTMM__PTE_WSI_SHIFT)
#define NTMM__PTE_PROT_SHIFT      5
#define NTMM__PTE_PROT_MASK       (0x1full << NTMM__PTE_PROT_SHIFT)
#define NTMM__PTE_PF_INDEX_SHIFT  1
#define NTMM__PTE_PF_INDEX_MASK   ((uint64_t)(NTMM__PF_MAX_FILES - 1) << NTMM__PTE_PF_INDEX_SHIFT)
#define NTMM__PTE_PF_OFFSET_SHIFT 32
#define NTMM__PTE_PF_OFFSET_MASK  (0xffffffffull << NTMM__PTE_PF_OFFSET_SHIFT)
#define NTMM__PTE_PF_MASK         (NTMM__PTE_PF_INDEX_MASK | NTMM__PTE_PF_OFFSET_MASK)
#define NTMM__PTE_PROTO_SHIFT     16
#define NTMM__PTE_PROTO_LOOKUP    (0xffffffffffffull) /* "find it through the VAD" */

/* A location's file index and slot are exactly as wide as the PTE's index
   (bits 1..4, below the protection) and offset (bits 32..63) fields. */
_Static_assert(NTMM__PF_FILE_BITS == 4, "paging-file index field is bits 1..4");
_Static_assert(NTMM__PF_SLOT_BITS == 64 - NTMM__PTE_PF_OFFSET_SHIFT,
               "paging-file offset field is bits 32..63");

/* NT protection codes (MM_*), 5 bits */
#define NTMM__MM_ZERO_ACCESS 0u
#define NTMM__MM_READONLY    1u
#define NTMM__MM_READWRITE   4u
#define NTMM__MM_WRITECOPY   5u
#define NTMM__MM_NOCACHE     8u
#define NTMM__MM_GUARD       0x10u
#define NTMM__MM_DECOMMIT    0x10u /* GUARD | ZERO_ACCESS */
#define NTMM__MM_NOACCESS    0x18u /* NOCACHE | ZERO_ACCESS */

/* Geometry: 4 levels × 9 bits over 4 KiB pages = 48-bit VAs. */
#define NTMM__PT_LEVELS  4
#define NTMM__PT_ENTRIES 512u
#define NTMM__PAGE_SHIFT 12
/* user space, as on x64 Windows: [64 KiB, 0x7FFF'FFFF'0000) */
#define NTMM__VA_START 0x10000ull
#define NTMM__VA_END   0x7fffffff0000ull

/* index of va in the table at `level` (0 = leaf PT, 3 = root) */
static inline unsigned ntmm__pt_index(uint64_t va, int level)
{
	return (unsigned)((va >> (NTMM__PAGE_SHIFT + 9 * level)) & 511u);
}

static inline bool ntmm__pte_is_valid(uint64_t pte)
{
	return (pte & NTMM__PTE_VALID) != 0;
}
static inline bool ntmm__pte_is_transition(uint64_t pte)
{
	return (pte & (NTMM__PTE_VALID | NTMM__PTE_PROTOTYPE | NTMM__PTE_TRANSITION)) ==
	       NTMM__PTE_TRANSITION;
}
static inline bool ntmm__pte_is_prototype(uint64_t pte)
{
	return (pte & (NTMM__PTE_VALID | NTMM__PTE_PROTOTYPE)) == NTMM__PTE_PROTOTYPE;
}
/* pagefile format (incl. demand-zero): not valid, not transition, not prototype */
static inline bool ntmm__pte_is_software(uint64_t pte)
{
	return pte != 0 &&
	       (pte & (NTMM__PTE_VALID | NTMM__PTE_PROTOTYPE | NTMM__PTE_TRANSITION)) == 0;
}
static inline unsigned ntmm__pte_pf_index(uint64_t pte)
{
	return (unsigned)((pte & NTMM__PTE_PF_INDEX_MASK) >> NTMM__PTE_PF_INDEX_SHIFT);
}
static inline uint32_t ntmm__pte_pf_offset(uint64_t pte)
{
	return (uint32_t)(pte >> NTMM__PTE_PF_OFFSET_SHIFT);
}
static inline bool ntmm__pte_is_demand_zero(uint64_t pte)
{
	return ntmm__pte_is_software(pte) && ntmm__pte_pf_index(pte) == 0 &&
	       ntmm__pte_pf_offset(pte) == 0;
}
static inline unsigned ntmm__pte_prot(uint64_t pte)
{
	return (unsigned)((pte & NTMM__PTE_PROT_MASK) >> NTMM__PTE_PROT_SHIFT);
}
static inline ntmm__pfn_t ntmm__pte_pfn(uint64_t pte)
{
	return (ntmm__pfn_t)((pte & NTMM__PTE_PFN_MASK) >> NTMM__PTE_PFN_SHIFT);
}
static inline uint32_t ntmm__pte_wsi(uint64_t pte)
{
	return (uint32_t)((pte & NTMM__PTE_WSI_MASK) >> NTMM__PTE_WSI_SHIFT);
}

static inline uint64_t ntmm__pte_make_valid(ntmm__pfn_t pfn, uint32_t wsi, uint64_t bits)
{
	return NTMM__PTE_VALID | bits | ((uint64_t)pfn << NTMM__PTE_PFN_SHIFT) |
	       ((uint64_t)wsi << NTMM__PTE_WSI_SHIFT);
}
static inline uint64_t ntmm__pte_make_transition(ntmm__pfn_t pfn, unsigned mmprot)
{
	return NTMM__PTE_TRANSITION | ((uint64_t)pfn << NTMM__PTE_PFN_SHIFT) |
	       ((uint64_t)(mmprot & 0x1f) << NTMM__PTE_PROT_SHIFT);
}
static inline uint64_t ntmm__pte_make_demand_zero(unsigned mmprot)
{
	return (uint64_t)(mmprot & 0x1f) << NTMM__PTE_PROT_SHIFT;
}
static inline uint64_t ntmm__pte_make_pagefile(unsigned index, uint32_t offset, unsigned mmprot)
{
	return ((uint64_t)(index & (NTMM__PF_MAX_FILES - 1)) << NTMM__PTE_PF_INDEX_SHIFT) |
	       ((uint64_t)offset << NTMM__PTE_PF_OFFSET_SHIFT) |
	       ((uint64_t)(mmprot & 0x1f) << NTMM__PTE_PROT_SHIFT);
}
/* The pagefile-PTE bits for a paging-file location (all other bits 0): OR
   them into a software PTE that carries the protection. */
static inline uint64_t ntmm__pfloc_to_pte(ntmm__pfloc_t loc)
{
	return ((uint64_t)ntmm__pfloc_file(loc) << NTMM__PTE_PF_INDEX_SHIFT) |
	       (ntmm__pfloc_slot(loc) << NTMM__PTE_PF_OFFSET_SHIFT);
}
/* The paging-file location in a software PTE's index and offset fields
   (other bits ignored). A slot of 0 (demand-zero) is no location:
   ntmm__pfloc_valid says false. */
static inline ntmm__pfloc_t ntmm__pfloc_from_pte(uint64_t pte)
{
	return ntmm__pfloc_make(ntmm__pte_pf_index(pte), ntmm__pte_pf_offset(pte));
}

/* proto_addr: host address of the prototype PTE (8-byte aligned), or 0 for
   "look it up through the VAD" */
static inline uint64_t ntmm__pte_make_prototype(uint64_t proto_addr, unsigned mmprot)
{
	uint64_t a =
	    proto_addr ? (proto_addr >> 3) & NTMM__PTE_PROTO_LOOKUP : NTMM__PTE_PROTO_LOOKUP;
	return NTMM__PTE_PROTOTYPE | (a << NTMM__PTE_PROTO_SHIFT) |
	       ((uint64_t)(mmprot & 0x1f) << NTMM__PTE_PROT_SHIFT);
}
static inline uint64_t ntmm__pte_proto_addr(uint64_t pte)
{
	uint64_t a = pte >> NTMM__PTE_PROTO_SHIFT;
	return a == NTMM__PTE_PROTO_LOOKUP ? 0 : a << 3;
}

/* API protection (NTMM_PAGE_*) → NT protection code */
static inline unsigned ntmm__mmprot_from_page(unsigned prot)
{
	unsigned base = prot & 0xffu, code;
	switch (base) {
	case NTMM_PAGE_READONLY:
		code = NTMM__MM_READONLY;
		break;
	case NTMM_PAGE_READWRITE:
		code = NTMM__MM_READWRITE;
		break;
	case NTMM_PAGE_WRITECOPY:
		code = NTMM__MM_WRITECOPY;
		break;
	default:
		code = NTMM__MM_NOACCESS;
		break;
	}
	if (prot & NTMM_PAGE_GUARD)
		code |= NTMM__MM_GUARD;
	return code;
}

/* The access bits a valid PTE carries for an API protection: READ for any
   accessible protection, WRITE for READWRITE/WRITECOPY (private memory is
   already the private copy), none for NOACCESS or GUARD (such a page may
   stay resident; every access goes to the fault path). */
static inline uint64_t ntmm__pte_bits_for(unsigned prot)
{
	if (prot & NTMM_PAGE_GUARD)
		return 0;
	switch (prot & 0xffu) {
	case NTMM_PAGE_READONLY:
		return NTMM__PTE_READ;
	case NTMM_PAGE_READWRITE:
	case NTMM_PAGE_WRITECOPY:
		return NTMM__PTE_READ | NTMM__PTE_WRITE;
	default:
		return 0;
	}
}

/* NT protection code recorded in a transition PTE from a valid PTE's bits */
static inline unsigned ntmm__mmprot_from_bits(uint64_t pte)
{
	if (pte & NTMM__PTE_WRITE)
		return NTMM__MM_READWRITE;
	if (pte & NTMM__PTE_READ)
		return NTMM__MM_READONLY;
	return NTMM__MM_NOACCESS;
}

#endif
