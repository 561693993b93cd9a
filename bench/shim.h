/*
 * The thin C shim over google-benchmark: benchmark bodies are written in C
 * against this header and registered with NTMM_BENCH; bench/shim.cc turns
 * each definition into a google-benchmark registration. Names are fixed so
 * results compare over time; a `threads` list gives `/threads:N` variants,
 * which always use real time.
 */
#ifndef NTMM_BENCH_SHIM_H
#define NTMM_BENCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ntmm_bench_state ntmm_bench_state_t; /* a benchmark::State */

typedef struct ntmm_bench_def {
	const char *name;
	/* The timed body; every thread of a run calls it with the shared ctx. */
	void (*run)(ntmm_bench_state_t *st, void *ctx);
	/* Optional, once per run (before its threads start / after they end). */
	void *(*setup)(int threads);
	void (*teardown)(void *ctx);
	int threads[4]; /* thread counts; all 0 = one thread, plain name */
	int64_t arg;    /* passed as range(0) when has_arg */
	int has_arg;
	double min_time; /* seconds; 0 = the library default */
	int real_time;   /* 1 = time (and rates) by the wall clock: for work done
			    partly by other threads (kernel I/O workers, handlers) */
	void *ctx;       /* set by setup for the running instance */
	struct ntmm_bench_def *next;
} ntmm_bench_def_t;

void ntmm_bench_register(ntmm_bench_def_t *def);

/* Registers a static definition at program start. */
#define NTMM_BENCH(ident, ...)                                               \
	static ntmm_bench_def_t ident##_def = {.name = #ident, __VA_ARGS__}; \
	__attribute__((constructor)) static void ident##_register(void)      \
	{                                                                    \
		ntmm_bench_register(&ident##_def);                           \
	}

/* Loop: while (ntmm_bench_keep_running_batch(st, 64)) { 64 iterations }. */
int ntmm_bench_keep_running_batch(ntmm_bench_state_t *st, uint64_t batch);
int ntmm_bench_keep_running(ntmm_bench_state_t *st);
int ntmm_bench_thread_index(ntmm_bench_state_t *st);
int ntmm_bench_threads(ntmm_bench_state_t *st);
int64_t ntmm_bench_range(ntmm_bench_state_t *st);
uint64_t ntmm_bench_iterations(ntmm_bench_state_t *st);
void ntmm_bench_set_items(ntmm_bench_state_t *st, int64_t items);
void ntmm_bench_set_bytes(ntmm_bench_state_t *st, int64_t bytes);
void ntmm_bench_pause(ntmm_bench_state_t *st);
void ntmm_bench_resume(ntmm_bench_state_t *st);
void ntmm_bench_counter(ntmm_bench_state_t *st, const char *name, double value);
/* Marks the run skipped with a reason (e.g. a peer this machine lacks). */
void ntmm_bench_skip(ntmm_bench_state_t *st, const char *why);
/* Keeps the compiler from discarding a value. */
static inline void ntmm_bench_escape(void *p)
{
	__asm__ __volatile__("" : : "g"(p) : "memory");
}

#ifdef __cplusplus
}
#endif
#endif
