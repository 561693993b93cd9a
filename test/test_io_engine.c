/* The io layer inside an engine: the first paging file from the config,
   ntmm_pagefile_add/remove, gauges, bad paths at creation, a directory the
   caller may not write, the backend knob and its public query, and
   create/destroy cycles. */
#include "iotest.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <sys/wait.h>

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
	/* the file is there, with its space, but has no name */
	assert_int_equal(pf_size(&e->io, 0), 1 << 20);
	assert_int_equal(file_size(path), -1);
	assert_int_equal(dir_entries(dir), 0);
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

	uint64_t dev = e->io.files[0]->dev, ino = e->io.files[0]->ino;
	ntmm_engine_destroy(e); /* closes the paging file: its space is freed */
	assert_int_equal(io_fd_on(dev, ino), -1);
	assert_int_equal(dir_entries(dir), 0);
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

static bool names_a_backend(const char *s)
{
	return !strncmp(s, "io_uring for ", 13) || !strncmp(s, "preadv/pwritev for ", 19);
}

static void io_backend_query_says_which_backend_and_why(void **state)
{
	char *dir = io_tmpdir();
	char *path = io_path(dir, "pagefile.sys");
	ntmm_config_t c = small_config();
	c.pagefile_path = path;
	c.pagefile_initial = 1 << 20;
	c.pagefile_maximum = 4 << 20;
	ntmm_engine_t *e;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	char buf[512];
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(ntmm_engine_io_backend(e, buf, sizeof(buf)), 0);
	assert_true(names_a_backend(buf));
	assert_true(strchr(buf, '(') || strstr(buf, ": ")); /* says why */
	/* the text agrees with the backend the engine set up */
	assert_int_equal(strncmp(buf, ntmm__io_backend(&e->io), strlen(ntmm__io_backend(&e->io))),
	                 0);

	/* a short buffer gets a cut, NUL-terminated prefix */
	char small[9];
	memset(small, 'x', sizeof(small));
	assert_int_equal(ntmm_engine_io_backend(e, small, sizeof(small)), 0);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(strncmp(small, buf, sizeof(small) - 1), 0);

	assert_int_equal(ntmm_engine_io_backend(NULL, buf, sizeof(buf)), NTMM_EINVAL);
	assert_int_equal(ntmm_engine_io_backend(e, NULL, sizeof(buf)), NTMM_EINVAL);
	assert_int_equal(ntmm_engine_io_backend(e, buf, 0), NTMM_EINVAL);
	ntmm_engine_destroy(e);

	/* forced to the sync backend: preadv/pwritev for everything, and why */
	c.io_backend = NTMM__IO_SYNC;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	assert_int_equal(ntmm_engine_io_backend(e, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "preadv/pwritev for all reads and writes"));
	assert_non_null(strstr(buf, "configured"));
	assert_null(strstr(buf, "io_uring"));
	ntmm_engine_destroy(e);

	/* forced to io_uring (where the kernel allows it): every request */
	c.io_backend = NTMM__IO_URING;
	int err = ntmm_engine_create(&c, &e);
	assert_true(err == 0 || err == NTMM_ENOTSUP);
	if (!err) {
		assert_int_equal(ntmm_engine_io_backend(e, buf, sizeof(buf)), 0);
		assert_non_null(strstr(buf, "io_uring for all reads and all writes"));
		assert_null(strstr(buf, "preadv/pwritev"));
		ntmm_engine_destroy(e);
	}
	free(path);
	io_rmtree(dir);
}

/* Exit statuses of the unprivileged child below: which check failed. */
enum {
	NOPERM_OK = 0,
	NOPERM_CREATE_NOT_EIO = 10,
	NOPERM_CREATE_LEFT_ENGINE,
	NOPERM_CREATE_DETAIL,
	NOPERM_PLAIN_CREATE_FAILED,
	NOPERM_ADD_NOT_EIO,
	NOPERM_ADD_DETAIL,
	NOPERM_ADD_COUNTED_SPACE,
	NOPERM_SKIP = 77, /* could not drop privileges, or the directory is writable anyway */
};

static bool detail_says_permission_denied(const char *path)
{
	const char *d = ntmm_error_detail();
	return strstr(d, "Permission denied") && strstr(d, path);
}

/* In the child: without write permission on dir, a paging file there fails
   engine creation and ntmm_pagefile_add with NTMM_EIO and a detail naming
   the path and "Permission denied". Returns a NOPERM_* status. */
static int noperm_child(const char *dir, bool drop_root)
{
	if (drop_root && (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
		return NOPERM_SKIP;
	if (access(dir, W_OK) == 0 || errno != EACCES)
		return NOPERM_SKIP; /* e.g. CAP_DAC_OVERRIDE kept */
	char *path = io_path(dir, "pagefile.sys");
	ntmm_config_t c = small_config();
	c.pagefile_path = path;
	c.pagefile_initial = 1 << 20;
	c.pagefile_maximum = 4 << 20;
	ntmm_engine_t *e = (ntmm_engine_t *)1;
	if (ntmm_engine_create(&c, &e) != NTMM_EIO)
		return NOPERM_CREATE_NOT_EIO;
	if (e)
		return NOPERM_CREATE_LEFT_ENGINE;
	if (!detail_says_permission_denied(path))
		return NOPERM_CREATE_DETAIL;

	c.pagefile_path = NULL;
	if (ntmm_engine_create(&c, &e))
		return NOPERM_PLAIN_CREATE_FAILED;
	int rc = NOPERM_OK;
	ntmm_stats_t st;
	if (ntmm_pagefile_add(e, path, 1 << 20, 4 << 20) != NTMM_EIO)
		rc = NOPERM_ADD_NOT_EIO;
	else if (!detail_says_permission_denied(path))
		rc = NOPERM_ADD_DETAIL;
	else if (ntmm_stats_get(e, &st) || st.pagefile_size_pages != 0)
		rc = NOPERM_ADD_COUNTED_SPACE;
	ntmm_engine_destroy(e);
	free(path);
	return rc;
}

static void paging_file_without_permission_is_eio_not_a_crash(void **state)
{
	/* As root permission checks are bypassed, so a child drops to nobody
	   and the directory stays root's with mode 0700. Not root: the
	   directory is the caller's own, made read-only (0500). */
	char *dir = io_tmpdir(); /* mode 0700 (mkdtemp), owned by the caller */
	bool root = geteuid() == 0;
	if (!root)
		assert_int_equal(chmod(dir, 0500), 0);
	fflush(NULL); /* nothing buffered is written twice */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(noperm_child(dir, root)); /* _exit: no cmocka or atexit handlers */
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!root)
		assert_int_equal(chmod(dir, 0700), 0);

	/* the child left nothing in the directory */
	unsigned entries = 0;
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *de; (de = readdir(d));)
		entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	io_rmtree(dir);

	if (!WIFEXITED(status))
		fail_msg("child died of signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	assert_int_equal(entries, 0);
	if (WEXITSTATUS(status) == NOPERM_SKIP)
		skip();
	assert_int_equal(WEXITSTATUS(status), NOPERM_OK);
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
	    cmocka_unit_test(io_backend_query_says_which_backend_and_why),
	    cmocka_unit_test(paging_file_without_permission_is_eio_not_a_crash),
	    cmocka_unit_test(create_destroy_cycles_leave_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
