/*
 * Error names (one X-macro list in ntmm.h) and the per-thread detail string
 * that says which argument or resource an error was about.
 */
#include "engine.h"

#include <stdarg.h>
#include <stdio.h>

const char *ntmm_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define NTMM__ERR_CASE(name, value, text) \
	case NTMM_##name:                 \
		return "NTMM_" #name ": " text;
		NTMM_ERRORS(NTMM__ERR_CASE)
#undef NTMM__ERR_CASE
	default:
		return "unknown ntmm error";
	}
}

static _Thread_local char error_detail[256];

const char *ntmm_error_detail(void)
{
	return error_detail;
}

int ntmm__error(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(error_detail, sizeof(error_detail), fmt, ap);
	va_end(ap);
	return err;
}
