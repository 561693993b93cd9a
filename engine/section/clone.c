/*
 * ntmm_process_clone (fork). Not built: it refuses with NTMM_ENOTSUP.
 */
#include "engine.h"

int ntmm_process_clone(ntmm_process_t *p, ntmm_process_t **child)
{
	(void)p;
	if (child)
		*child = NULL;
	return ntmm__error(NTMM_ENOTSUP, "ntmm_process_clone is not built yet");
}
