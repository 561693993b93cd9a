/* The io layer inside an engine: the first paging file from the config,
   ntmm_pagefile_add/remove, gauges, bad paths at creation, the backend knob,
   and create/destroy cycles. */
#include "iotest.h"

#include <ntmm/stats.h>

#include "engine.h"

static ntmm_config_t small_config(void)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = 8u << 20;
	c.start_threads = 0;
	return c;
}

static void config_creates_the_first_paging_file(void **state)
{
	char *dir = io_tmpdir();
	char *path = io_path(dir, "pagefile.sys");
	ntmm_config_t c = small_config();
	c.pagefile_path = path;
	c.pagefile_initial = 1 << 20;
	c.pagefile_maximum = 8 << 20;
	ntmm_engine_t *e;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	assert_int_equal(file_size(path), 1 << 20);
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	assert_int_equal(st.pagefile_size_pages, 255);
	assert_int_equal(st.pagefile_pages, 0);
	assert_int_equal(ntmm__pagefile_maximum_pages(&e->io), 2047);

	/* use it through the engine's io */
	assert_int_equal(ntmm_thread_register(e), 0);
	ntmm__pfloc_t loc;
	size_t got;
	assert_int_equal(ntmm__pagefile_alloc(&e->io, 16, 16, &loc, &got), 0);
	void *buf = page_alloc(16);
	void *pv[16];
	for (unsigned p = 0; p < 16; p++) {
		pv[p] = (char *)buf + p * PAGE;
		page_fill(pv[p], p, 5);
	}
	assert_int_equal(ntmm__pagefile_write(&e->io, loc, pv, 16), 0);
	memset(buf, 0, 16 * PAGE);
	assert_int_equal(ntmm__pagefile_read(&e->io, loc, pv, 16), 0);
	for (unsigned p = 0; p < 16; p++)
		assert_true(page_check(pv[p], p, 5));
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	assert_int_equal(st.pagefile_pages, 16);
	assert_int_equal(st.pages_written, 16);
	assert_int_equal(st.write_ios, 1);
	assert_int_equal(st.pages_read, 16);
	assert_int_equal(st.read_ios, 1);

	/* busy: the public remove refuses and changes nothing */
	assert_int_equal(ntmm_pagefile_remove(e, path), NTMM_EBUSY);
	ntmm__pagefile_free(&e->io, loc, 16);
	ntmm_thread_unregister(e);
	free(buf);

	ntmm_engine_destroy(e); /* deletes the paging file */
	assert_int_equal(file_size(path), -1);
	free(path);
	io_rmtree(dir);
}

static void public_add_and_remove(void **state)
{
	char *dir = io_tmpdir();
	ntmm_config_t c = small_config();
	ntmm_engine_t *e;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	assert_int_equal(st.pagefile_size_pages, 0);

	char *a = io_path(dir, "a"), *b = io_path(dir, "b");
	assert_int_equal(ntmm_pagefile_add(e, a, 2 << 20, 4 << 20), 0);
	assert_int_equal(ntmm_pagefile_add(e, b, 1 << 20, 1 << 20), 0);
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	assert_int_equal(st.pagefile_size_pages, 511 + 255);
	assert_int_equal(ntmm_pagefile_add(e, a, 2 << 20, 4 << 20), NTMM_EINVAL);
	assert_int_equal(ntmm_pagefile_remove(e, a), 0);
	assert_int_equal(ntmm_pagefile_remove(e, a), NTMM_EINVAL);
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	assert_int_equal(st.pagefile_size_pages, 255);

	char *bad = io_path(dir, "missing/dir/pf");
	assert_int_equal(ntmm_pagefile_add(e, bad, 1 << 20, 1 << 20), NTMM_EIO);
	assert_non_null(strstr(ntmm_error_detail(), bad));
	assert_int_equal(ntmm_pagefile_add(NULL, b, 1 << 20, 1 << 20), NTMM_EINVAL);
	assert_int_equal(ntmm_pagefile_remove(NULL, b), NTMM_EINVAL);
	assert_int_equal(ntmm_pagefile_add(e, NULL, 1 << 20, 1 << 20), NTMM_EINVAL);
	assert_int_equal(ntmm_pagefile_remove(e, NULL), NTMM_EINVAL);
	ntmm_engine_destroy(e);
	assert_int_equal(file_size(b), -1);
	free(a), free(b), free(bad);
	io_rmtree(dir);
}

static void bad_paging_file_fails_engine_creation_cleanly(void **state)
{
	char *dir = io_tmpdir();
	char *reg = io_path(dir, "file");
	FILE *fp = fopen(reg, "w");
	fclose(fp);
	char *path = io_path(dir, "file/pagefile.sys");
	ntmm_config_t c = small_config();
	c.pagefile_path = path;
	ntmm_engine_t *e = (ntmm_engine_t *)1;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EIO);
	assert_null(e);
	assert_non_null(strstr(ntmm_error_detail(), "Not a directory"));
	c.pagefile_initial = 4 << 20;
	c.pagefile_maximum = 1 << 20;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);
	free(reg), free(path);
	io_rmtree(dir);
}

static void backend_knob_forces_preadv_pwritev(void **state)
{
	ntmm_config_t c = small_config();
	c.io_backend = NTMM__IO_SYNC;
	ntmm_engine_t *e;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	assert_string_equal(ntmm__io_backend(&e->io), "preadv/pwritev");
	ntmm_engine_destroy(e);

	setenv("NTMM_IO_BACKEND", "2", 1);
	c = small_config();
	unsetenv("NTMM_IO_BACKEND");
	assert_int_equal(c.io_backend, NTMM__IO_SYNC);

	c = small_config();
	c.io_backend = NTMM__IO_URING;
	int err = ntmm_engine_create(&c, &e);
	assert_true(err == 0 || err == NTMM_ENOTSUP);
	if (!err) {
		assert_string_equal(ntmm__io_backend(&e->io), "io_uring");
		ntmm_engine_destroy(e);
	}
	c.io_backend = 3;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EINVAL);
}

static void create_destroy_cycles_leave_nothing(void **state)
{
	char *dir = io_tmpdir();
	char *path = io_path(dir, "cycle");
	long cycles = scaled(20);
	for (long i = 0; i < cycles; i++) {
		ntmm_config_t c = small_config();
		c.pagefile_path = path;
		c.pagefile_initial = 256 << 10;
		c.pagefile_maximum = 1 << 20;
		ntmm_engine_t *e;
		assert_int_equal(ntmm_engine_create(&c, &e), 0);
		ntmm_engine_destroy(e);
		assert_int_equal(file_size(path), -1);
	}
	free(path);
	io_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(config_creates_the_first_paging_file),
	    cmocka_unit_test(public_add_and_remove),
	    cmocka_unit_test(bad_paging_file_fails_engine_creation_cleanly),
	    cmocka_unit_test(backend_knob_forces_preadv_pwritev),
	    cmocka_unit_test(create_destroy_cycles_leave_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
