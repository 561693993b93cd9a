/*
 * Assertions in tiers, chosen by NTMM_DEBUG (0 release, 1 cheap, 2 expensive):
 *   ntmm__assert          — our own invariants, cheap (debug and sanitizer builds)
 *   ntmm__assert_expensive — O(n) checks (debug preset only)
 * Never used for bad input: that gets an NTMM_E* code.
 *
 * NTMM__MISUSE is the one exception, for a programming error ntmm.h names
 * as one that cannot be reported and must not hang or corrupt (destroying
 * an engine from inside an access section; in debug builds, unpinning
 * twice or after the engine is gone): it prints what was misused to
 * stderr and aborts, in the builds its caller chooses.
 */
#ifndef NTMM_DEBUG_H
#define NTMM_DEBUG_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef NTMM_DEBUG
#ifdef NDEBUG
#define NTMM_DEBUG 0
#else
#define NTMM_DEBUG 1
#endif
#endif

#define NTMM__ASSERT_FAIL(expr)                                                               \
	(fprintf(stderr, "ntmm: assertion failed: %s (%s:%d %s)\n", expr, __FILE__, __LINE__, \
	         __func__),                                                                   \
	 abort())

#if NTMM_DEBUG >= 1
#define ntmm__assert(x) ((x) ? (void)0 : NTMM__ASSERT_FAIL(#x))
#else
#define ntmm__assert(x) ((void)0)
#endif
#if NTMM_DEBUG >= 2
#define ntmm__assert_expensive(x) ((x) ? (void)0 : NTMM__ASSERT_FAIL(#x))
#else
#define ntmm__assert_expensive(x) ((void)0)
#endif

__attribute__((noreturn, cold, format(printf, 1, 2))) static inline void
ntmm__misuse(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ntmm: misuse: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n", stderr);
	va_end(ap);
	fflush(stderr);
	abort();
}
#define NTMM__MISUSE(...) ntmm__misuse(__VA_ARGS__)

#define ntmm__likely(x)   __builtin_expect(!!(x), 1)
#define ntmm__unlikely(x) __builtin_expect(!!(x), 0)
#define NTMM__CACHELINE   64
#define NTMM__ALIGNED_CL  __attribute__((aligned(NTMM__CACHELINE)))

#endif
