/* PLACEHOLDER — replaced by the physical-memory layer (issue 3). In h-virt it forwards to the temporary zz_devtmp_page.c until h-phys is merged. */
#include "engine.h"
int ntmm__devtmp_phys_init(ntmm_engine_t *e);
void ntmm__devtmp_phys_fini(ntmm_engine_t *e);
int ntmm__devtmp_phys_audit(ntmm_engine_t *e);
int ntmm__phys_init(ntmm_engine_t *e)
{
	return ntmm__devtmp_phys_init(e);
}
void ntmm__phys_fini(ntmm_engine_t *e)
{
	ntmm__devtmp_phys_fini(e);
}
int ntmm__phys_audit(ntmm_engine_t *e)
{
	return ntmm__devtmp_phys_audit(e);
}
void ntmm__phys_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out)
{
}
