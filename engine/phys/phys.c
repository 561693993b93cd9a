/* PLACEHOLDER — replaced by the physical-memory layer (issue 3). */
#include "engine.h"
int ntmm__phys_init(ntmm_engine_t *e)
{
	return 0;
}
void ntmm__phys_fini(ntmm_engine_t *e)
{
}
int ntmm__phys_audit(ntmm_engine_t *e)
{
	return 0;
}
void ntmm__phys_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out)
{
}
