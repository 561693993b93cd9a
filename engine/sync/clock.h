/*
 * The engine's one clock: monotonic nanoseconds (CLOCK_MONOTONIC), for
 * deadlines (event waits, the balance set manager's tick), idle times (the
 * swapper) and bounds on waiting (a fault that finds no frame). Not wall
 * time: it never jumps with a clock change, and only differences of two
 * readings mean anything.
 */
#ifndef NTMM_SYNC_CLOCK_H
#define NTMM_SYNC_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic time now, in nanoseconds since an unspecified start. */
static inline uint64_t ntmm__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
