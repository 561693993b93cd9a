/*
 * Sections, views, copy-on-write and clone (section.h). Not built yet:
 * every entry point refuses with NTMM_ENOTSUP until the section layer
 * lands.
 */
#include "engine.h"
#include "section/section.h"

int ntmm_section_create(ntmm_engine_t *e, int fd, uint64_t size, unsigned prot, unsigned flags,
                        ntmm_section_t **out)
{
	(void)e, (void)fd, (void)size, (void)prot, (void)flags;
	if (out)
		*out = NULL;
	return ntmm__error(NTMM_ENOTSUP, "sections are not built yet");
}

int ntmm_section_close(ntmm_section_t *s)
{
	(void)s;
	return ntmm__error(NTMM_ENOTSUP, "sections are not built yet");
}

int ntmm_map_view(ntmm_section_t *s, ntmm_process_t *p, uint64_t *base, uint64_t offset,
                  size_t size, unsigned prot)
{
	(void)s, (void)p, (void)base, (void)offset, (void)size, (void)prot;
	return ntmm__error(NTMM_ENOTSUP, "sections are not built yet");
}

int ntmm_unmap_view(ntmm_process_t *p, uint64_t base)
{
	(void)p, (void)base;
	return ntmm__error(NTMM_ENOTSUP, "sections are not built yet");
}

int ntmm_flush_view(ntmm_process_t *p, uint64_t va, size_t len)
{
	(void)p, (void)va, (void)len;
	return ntmm__error(NTMM_ENOTSUP, "sections are not built yet");
}

int ntmm_process_clone(ntmm_process_t *p, ntmm_process_t **child)
{
	(void)p;
	if (child)
		*child = NULL;
	return ntmm__error(NTMM_ENOTSUP, "clone is not built yet");
}

int ntmm__section_fail_io(ntmm_section_t *s, uint64_t read_in, uint64_t write_in)
{
	(void)s, (void)read_in, (void)write_in;
	return ntmm__error(NTMM_ENOTSUP, "sections are not built yet");
}
