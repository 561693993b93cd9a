/*
 * Per-CPU counter adds without a locked instruction: a restartable sequence
 * (rseq, Linux ≥ 4.18, registered for every thread by glibc ≥ 2.35).
 *
 * A per-CPU slot written with a locked add costs a full barrier each time
 * (a hard fault made six of them for counters alone). With rseq the add is
 * a plain `addq` that the kernel makes atomic with respect to this CPU: the
 * sequence checks that the thread still runs on the slot's CPU and then
 * commits with the single add; a preemption, migration or signal before
 * the commit sends the thread to the abort handler, which retries. Two
 * threads therefore never write one slot at once, and readers on other
 * CPUs see whole 8-byte values (aligned stores).
 *
 * The counter arrays have one slot per CPU plus a shared slot at index
 * nslots, written only with locked adds: a thread whose CPU number is not
 * below nslots (a synthetic topology smaller than the machine), or without
 * rseq (the glibc.pthread.rseq=0 tunable, valgrind), adds there. A locked
 * add never lands on a per-CPU slot, which the plain add would race with.
 * Readers sum slots 0..nslots.
 *
 * The same sequence also takes one slot from a per-CPU batch word
 * (ntmm__percpu_take_batch, the working-set list's slot batches): a load,
 * a compare and a plain store, again with no locked instruction.
 *
 * Written here rather than taken from librseq, which Debian does not
 * package; the sequence follows the kernel's documented ABI
 * (Documentation/userspace-api/rseq.rst): a struct rseq_cs descriptor in
 * its own section, the abort handler preceded by the RSEQ_SIG signature.
 */
#ifndef NTMM_SYNC_PERCPU_H
#define NTMM_SYNC_PERCPU_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync/cpu.h"

#if defined(NTMM__HAVE_RSEQ) && defined(__x86_64__) && defined(RSEQ_SIG) && \
    !defined(NTMM_NO_RSEQ_ADD)
#define NTMM__RSEQ_ADD 1
#endif

#ifdef NTMM__RSEQ_ADD
/* The calling thread's rseq area (glibc's registration). */
static inline struct rseq *ntmm__rseq_area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/* The frame every sequence here shares, around its body. Operands: [cs]
   the area's rseq_cs, [cpu_id] its cpu_id, [cpu] the CPU the body's slot
   belongs to, [sig] RSEQ_SIG; goto label `aborted`; clobbers rax.
   Begin: the descriptor (version 0, flags 0, begin, length of [begin,
   end) — end just past the body's commit store — abort) is armed, and the
   thread must still run on [cpu]. */
#define NTMM__RSEQ_BEGIN                                                  \
	".pushsection __rseq_cs, \"aw\"\n\t"                              \
	".balign 32\n\t"                                                  \
	".Lrs_desc%=:\n\t"                                                \
	".long 0, 0\n\t"                                                  \
	".quad .Lrs_begin%=, .Lrs_end%= - .Lrs_begin%=, .Lrs_abort%=\n\t" \
	".popsection\n\t"                                                 \
	"leaq .Lrs_desc%=(%%rip), %%rax\n\t"                              \
	"movq %%rax, %[cs]\n\t"                                           \
	".Lrs_begin%=:\n\t"                                               \
	"cmpl %[cpu], %[cpu_id]\n\t"                                      \
	"jne .Lrs_abort%=\n\t"
/* End: the abort handler, out of line; the kernel checks the four bytes
   before it against RSEQ_SIG (here the operand of a ud1, so disassembly
   stays sane). */
#define NTMM__RSEQ_END                            \
	".Lrs_end%=:\n\t"                         \
	".pushsection __rseq_failure, \"ax\"\n\t" \
	".byte 0x0f, 0xb9, 0x3d\n\t"              \
	".long %c[sig]\n\t"                       \
	".Lrs_abort%=:\n\t"                       \
	"jmp %l[aborted]\n\t"                     \
	".popsection\n\t"
#endif

/* Adds n to the slot of the current CPU: slot0 is slot 0's counter, the
   slots are `stride` bytes apart, and slot nslots is the shared one. */
static inline void ntmm__percpu_add(_Atomic uint64_t *slot0, size_t stride, unsigned nslots,
                                    uint64_t n)
{
#ifdef NTMM__RSEQ_ADD
	if (__rseq_size > 0) {
		struct rseq *rs = ntmm__rseq_area();
	again:;
		/* cpu_id is negative (as signed) when this thread's registration
		   failed; the sequence re-checks it before the commit */
		uint32_t cpu = __atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
		if (cpu < nslots) {
			uint64_t *v = (uint64_t *)((char *)slot0 + (size_t)cpu * stride);
			__asm__ goto(NTMM__RSEQ_BEGIN "addq %[n], (%[v])\n\t" NTMM__RSEQ_END
			             :
			             : [cs] "m"(rs->rseq_cs), [cpu_id] "m"(rs->cpu_id),
			               [cpu] "r"(cpu), [v] "r"(v), [n] "r"(n), [sig] "i"(RSEQ_SIG)
			             : "memory", "cc", "rax"
			             : aborted);
			/* no descriptor stays armed: the library may be unloaded */
			__atomic_store_n(&rs->rseq_cs, 0, __ATOMIC_RELAXED);
			return;
		aborted:
			goto again;
		}
	}
#endif
	_Atomic uint64_t *shared = (_Atomic uint64_t *)((char *)slot0 + (size_t)nslots * stride);
	atomic_fetch_add_explicit(shared, n, memory_order_relaxed);
}

/* A take from a per-CPU batch word (next in the low 32 bits, end in the
   high 32): on the current CPU's slot, if next < end, store next + 1 in one
   restartable sequence and return true with *next set. false otherwise,
   with *cpu the slot to refill: the current CPU's (its batch is used up),
   or nslots when no sequence can run (no rseq, or a CPU past the slots) —
   the caller then takes from the shared slot with CAS. A CAS on a per-CPU
   slot is safe beside these takes only when it expects a used-up batch (a
   take stores only over an unused one). */
static inline bool ntmm__percpu_take_batch(_Atomic uint64_t *slot0, size_t stride, unsigned nslots,
                                           uint32_t *next, unsigned *cpu)
{
#ifdef NTMM__RSEQ_ADD
	if (__rseq_size > 0) {
		struct rseq *rs = ntmm__rseq_area();
	again:;
		uint32_t c = __atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
		if (c < nslots) {
			uint64_t *v = (uint64_t *)((char *)slot0 + (size_t)c * stride);
			uint64_t old = 0;
			/* load; used up (next >= end): leave to used_up; else note
			   the word and commit next + 1 */
			__asm__ goto(
			    NTMM__RSEQ_BEGIN "movq (%[v]), %%rax\n\t"
			                     "movq %%rax, %%rcx\n\t"
			                     "shrq $32, %%rcx\n\t"
			                     "cmpl %%ecx, %%eax\n\t"
			                     "jae %l[used_up]\n\t"
			                     "movq %%rax, (%[old])\n\t"
			                     "addq $1, %%rax\n\t"
			                     "movq %%rax, (%[v])\n\t" NTMM__RSEQ_END
			    :
			    : [cs] "m"(rs->rseq_cs), [cpu_id] "m"(rs->cpu_id), [cpu] "r"(c),
			      [v] "r"(v), [old] "r"(&old), [sig] "i"(RSEQ_SIG)
			    : "memory", "cc", "rax", "rcx"
			    : aborted, used_up);
			__atomic_store_n(&rs->rseq_cs, 0, __ATOMIC_RELAXED);
			*next = (uint32_t)old;
			return true;
		used_up:
			__atomic_store_n(&rs->rseq_cs, 0, __ATOMIC_RELAXED);
			*cpu = c;
			return false;
		aborted:
			goto again;
		}
	}
#else
	(void)slot0;
	(void)stride;
#endif
	(void)next;
	*cpu = nslots;
	return false;
}

#endif
