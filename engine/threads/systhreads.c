/* PLACEHOLDER — the system threads arrive with issues 3 and 5. */
#include "engine.h"
int ntmm__systhreads_start(ntmm_engine_t *e)
{
	return 0;
}
void ntmm__systhreads_stop(ntmm_engine_t *e)
{
}
