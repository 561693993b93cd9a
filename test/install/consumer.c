/* Install test: a program that only sees the installed ntmm (public headers
   and library) creates an engine with an 8 MiB frame pool, a process and,
   through <ntmm/win32.h>, a VirtualAlloc'ed region, and destroys them. */
#include <ntmm.h>
#include <ntmm/stats.h>
#include <ntmm/win32.h>
#include <stdio.h>

int main(void)
{
	ntmm_config_t cfg;
	ntmm_config_init(&cfg);
	cfg.physical_bytes = 8u << 20;
	ntmm_engine_t *e = NULL;
	int err = ntmm_engine_create(&cfg, &e);
	if (err) {
		fprintf(stderr, "ntmm_engine_create: %s (%s)\n", ntmm_strerror(err),
		        ntmm_error_detail());
		return 1;
	}
	ntmm_stats_t st;
	err = ntmm_stats_get(e, &st);
	if (err || st.version != NTMM_STATS_VERSION) {
		fprintf(stderr, "ntmm_stats_get: %s\n", ntmm_strerror(err));
		ntmm_engine_destroy(e);
		return 1;
	}
	ntmm_process_t *p = NULL;
	err = ntmm_process_create(e, &p);
	if (err) {
		fprintf(stderr, "ntmm_process_create: %s\n", ntmm_strerror(err));
		ntmm_engine_destroy(e);
		return 1;
	}
	ntmm_win32_set_process(p);
	LPVOID va = VirtualAlloc(NULL, 65536, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	if (!va || !VirtualFree(va, 0, MEM_RELEASE)) {
		fprintf(stderr, "VirtualAlloc/VirtualFree: error %u\n", GetLastError());
		ntmm_engine_destroy(e);
		return 1;
	}
	ntmm_win32_set_process(NULL);
	ntmm_process_destroy(p);
	err = ntmm_audit(e);
	ntmm_engine_destroy(e);
	if (err) {
		fprintf(stderr, "ntmm_audit: %s\n", ntmm_strerror(err));
		return 1;
	}
	printf("consumer: engine of 8 MiB created and destroyed\n");
	return 0;
}
