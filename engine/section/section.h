/*
 * The section layer (NTMM-REFERENCE.md §9): section objects, segments with
 * their prototype PTEs, views, faults through prototype PTEs, the mapped
 * page writer's work, copy-on-write and clone. The public API is in
 * include/ntmm.h ("sections, views, copy-on-write, clone").
 */
#ifndef NTMM_SECTION_SECTION_H
#define NTMM_SECTION_SECTION_H

#include <ntmm.h>
#include <stdint.h>

/* Fault injection for tests: the read_in-th file read and the write_in-th
   file write of s's segment from now (1 = the next one) fail with EIO,
   moving no data; 0 leaves that kind alone. Paging-file sections: their
   I/O is the paging files', injected through the io layer's fault driver.
   Errors: NTMM_EINVAL (not a live file section). */
int ntmm__section_fail_io(ntmm_section_t *s, uint64_t read_in, uint64_t write_in);

#endif
