/* PLACEHOLDER — replaced by the physical-memory layer (issue 3). */
#ifndef NTMM_PHYS_PHYS_H
#define NTMM_PHYS_PHYS_H
#include <ntmm.h>
#include <ntmm/stats.h>
typedef struct ntmm__phys {
	int placeholder;
} ntmm__phys_t;
int ntmm__phys_init(ntmm_engine_t *e);
void ntmm__phys_fini(ntmm_engine_t *e);
int ntmm__phys_audit(ntmm_engine_t *e);
void ntmm__phys_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out);
#endif
