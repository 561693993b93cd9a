/* Paging files and names on disk: a path is resolved once, when the file
   is added, so a later chdir changes nothing and another file that comes to
   carry the name is never touched; the file has no name while the engine
   runs, so a destroy, a removal or a kill -9 leaves nothing behind; what a
   crashed engine left behind is reclaimed, a file another engine holds
   locked is refused with NTMM_EBUSY, and somebody's data with NTMM_EIO. */
#include "iotest.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "engine.h"

typedef struct fixture {
	char *dir; /* scratch directory */
	int cwd;   /* the working directory to return to */
} fixture_t;

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));
	f->dir = io_tmpdir();
	f->cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->cwd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	assert_int_equal(fchdir(f->cwd), 0);
	close(f->cwd);
	io_rmtree(f->dir);
	free(f);
	return 0;
}

static ntmm_config_t small_config(const char *pagefile)
{
	ntmm_config_t c;
	ntmm_config_init(&c);
	c.physical_bytes = 8u << 20;
	c.start_threads = 0;
	c.pagefile_path = pagefile;
	c.pagefile_initial = 1 << 20;
	c.pagefile_maximum = 4 << 20;
	return c;
}

static char *subdir(fixture_t *f, const char *name)
{
	char *d = io_path(f->dir, name);
	assert_int_equal(mkdir(d, 0700), 0);
	return d;
}

static void write_file(const char *path, const void *bytes, size_t n)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(bytes, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
}

static void assert_file_holds(const char *path, const void *bytes, size_t n)
{
	char *back = calloc(1, n + 1);
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, n + 1, fp), n); /* no more, no less */
	fclose(fp);
	assert_memory_equal(back, bytes, n);
	free(back);
}

static const char user_text[] = "the user's own pagefile.sys: not the engine's\n";

/* --------------------------------------------------------- resolution */

/* The engine is created with a relative path in d1; the program moves to
   d2, where a user's file has the same name; destroying the engine leaves
   the user's file as it was, and the engine's own file is gone. */
static void relative_path_is_resolved_at_create_and_destroy_spares_other_files(void **state)
{
	fixture_t *f = *state;
	char *d1 = subdir(f, "d1"), *d2 = subdir(f, "d2");
	char *users = io_path(d2, "pagefile.sys"), *mine = io_path(d1, "pagefile.sys");
	write_file(users, user_text, sizeof(user_text));

	assert_int_equal(chdir(d1), 0);
	ntmm_config_t c = small_config("pagefile.sys");
	ntmm_engine_t *e;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	assert_int_equal(chdir("../d2"), 0);
	ntmm_engine_destroy(e);

	assert_file_holds(users, user_text, sizeof(user_text));
	assert_int_equal(file_size(mine), -1);
	assert_int_equal(dir_entries(d1), 0);
	assert_int_equal(dir_entries(d2), 1);
	free(users), free(mine), free(d1), free(d2);
}

/* A path given to remove is resolved when remove is called: after a
   chdir, the same relative text names another place, not the file. The
   file is found by its resolved path, absolute or relative. */
static void remove_resolves_the_path_when_called(void **state)
{
	fixture_t *f = *state;
	char *d1 = subdir(f, "d1"), *d2 = subdir(f, "d2");
	char *users = io_path(d2, "pf");
	write_file(users, user_text, sizeof(user_text));
	ntmm_config_t c = small_config(NULL);
	ntmm_engine_t *e;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);

	assert_int_equal(chdir(d1), 0);
	assert_int_equal(ntmm_pagefile_add(e, "pf", 1 << 20, 1 << 20), 0);
	assert_int_equal(ntmm_pagefile_add(e, "./pf", 1 << 20, 1 << 20), NTMM_EINVAL);
	assert_non_null(strstr(ntmm_error_detail(), "already paging file"));
	assert_int_equal(chdir(d2), 0);
	assert_int_equal(ntmm_pagefile_remove(e, "pf"), NTMM_EINVAL); /* d2/pf: not ours */
	assert_file_holds(users, user_text, sizeof(user_text));
	char *abs = io_path(d1, "pf");
	assert_int_equal(ntmm_pagefile_remove(e, "../d1/./pf"), 0);
	assert_int_equal(ntmm_pagefile_remove(e, abs), NTMM_EINVAL); /* gone */

	/* a file whose directory was renamed since is still found by the
	   absolute path it was added under */
	assert_int_equal(ntmm_pagefile_add(e, abs, 1 << 20, 1 << 20), 0);
	char *moved = io_path(f->dir, "d1-moved");
	assert_int_equal(rename(d1, moved), 0);
	assert_int_equal(ntmm_pagefile_remove(e, abs), 0);
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	assert_int_equal(st.pagefile_size_pages, 0);
	ntmm_engine_destroy(e);
	assert_int_equal(dir_entries(moved), 0);
	assert_file_holds(users, user_text, sizeof(user_text));
	free(users), free(abs), free(moved), free(d1), free(d2);
}

/* ------------------------------------------------------ no name on disk */

/* While the engine runs the paging file has no name: the directory is
   empty, the store is an unlinked file the engine holds open. Without
   O_TMPFILE (the fallback, forced here) the same holds: the file is
   created at the name and unlinked at once. */
static void paging_file_has_no_name_while_the_engine_runs(void **state)
{
	fixture_t *f = *state;
	char *path = io_path(f->dir, "pagefile.sys");
	for (int named = 0; named < 2; named++) {
		ntmm_config_t c = small_config(NULL);
		ntmm_engine_t *e;
		assert_int_equal(ntmm_engine_create(&c, &e), 0);
		e->io.filedrv_named = named;
		assert_int_equal(ntmm_pagefile_add(e, path, 1 << 20, 4 << 20), 0);
		assert_int_equal(dir_entries(f->dir), 0);
		int fd = pf_fd(&e->io, 0);
		assert_true(fd >= 0);
		struct stat st;
		assert_int_equal(fstat(fd, &st), 0);
		assert_int_equal(st.st_nlink, 0);
		assert_int_equal(st.st_size, 1 << 20);
		/* the engine pages through it as before */
		assert_int_equal(ntmm_thread_register(e), 0);
		ntmm__pfloc_t loc;
		size_t got;
		assert_int_equal(ntmm__pagefile_alloc(&e->io, 1, 1, &loc, &got), 0);
		void *pg = page_alloc(1);
		page_fill(pg, 7, named);
		assert_int_equal(ntmm__pagefile_write(&e->io, loc, &pg, 1), 0);
		memset(pg, 0, PAGE);
		assert_int_equal(ntmm__pagefile_read(&e->io, loc, &pg, 1), 0);
		assert_true(page_check(pg, 7, named));
		ntmm__pagefile_free(&e->io, loc, 1);
		ntmm_thread_unregister(e);
		free(pg);
		assert_int_equal(ntmm_pagefile_remove(e, path), 0);
		assert_int_equal(io_fd_on(st.st_dev, st.st_ino), -1);
		ntmm_engine_destroy(e);
		assert_int_equal(dir_entries(f->dir), 0);
	}
	free(path);
}

/* A child creates an engine with a paging file, says it is up, and is
   killed with SIGKILL: no cleanup runs, and the directory is still empty.
   With and without O_TMPFILE. */
static void killed_engine_leaves_no_paging_file(void **state)
{
	fixture_t *f = *state;
	char *path = io_path(f->dir, "pagefile.sys");
	for (int named = 0; named < 2; named++) {
		int up[2];
		assert_int_equal(pipe(up), 0);
		fflush(NULL); /* nothing buffered is written twice */
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(up[0]);
			ntmm_config_t c = small_config(NULL);
			c.start_threads = 1;
			ntmm_engine_t *e;
			char ok = 'n';
			if (ntmm_engine_create(&c, &e) == 0) {
				e->io.filedrv_named = named;
				if (ntmm_pagefile_add(e, path, 4 << 20, 16 << 20) == 0)
					ok = 'y';
			}
			if (write(up[1], &ok, 1) != 1)
				_exit(2);
			for (;;)
				pause(); /* until killed */
		}
		close(up[1]);
		char ok = 0;
		assert_int_equal(read(up[0], &ok, 1), 1);
		close(up[0]);
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
		assert_int_equal(ok, 'y');
		assert_int_equal(dir_entries(f->dir), 0);
	}
	free(path);
}

/* ----------------------------------------------- files found at the name */

/* What a crashed engine left behind (an engine that kept its paging file's
   name marked it user.ntmm.pagefile; the fallback's create leaves at most
   an empty file) is reclaimed at the next start: the engine takes it over
   and its name goes. */
static void stale_paging_file_is_reclaimed_at_the_next_start(void **state)
{
	fixture_t *f = *state;
	char *path = io_path(f->dir, "pagefile.sys");
	static char junk[3 * PAGE];
	memset(junk, 0x5a, sizeof(junk));
	for (int marked = 0; marked < 2; marked++) {
		write_file(path, junk, marked ? sizeof(junk) : 0);
		if (marked && setxattr(path, "user.ntmm.pagefile", "1", 1, 0) != 0) {
			fprintf(stderr, "note: %s has no user extended attributes (%s): skipped\n",
			        f->dir, strerror(errno));
			unlink(path);
			break;
		}
		struct stat old;
		assert_int_equal(stat(path, &old), 0);
		ntmm_config_t c = small_config(path);
		ntmm_engine_t *e;
		assert_int_equal(ntmm_engine_create(&c, &e), 0);
		assert_int_equal(dir_entries(f->dir), 0);
		assert_int_equal(e->io.files[0]->ino, old.st_ino); /* that very file */
		assert_int_equal(pf_size(&e->io, 0), 1 << 20);
		char zero[PAGE] = {0}, page[PAGE];
		assert_int_equal(pread(pf_fd(&e->io, 0), page, PAGE, PAGE), PAGE);
		assert_memory_equal(page, zero, PAGE); /* the old contents are gone */
		ntmm_engine_destroy(e);
		assert_int_equal(dir_entries(f->dir), 0);
	}
	free(path);
}

/* A paging file another engine holds (locked, as an engine that kept its
   paging file's name held it) is refused with NTMM_EBUSY and left as it
   was; once the lock is gone the file is reclaimed. */
static void file_locked_by_a_live_engine_is_ebusy(void **state)
{
	fixture_t *f = *state;
	char *path = io_path(f->dir, "pagefile.sys");
	write_file(path, "", 0); /* empty: takeable but for the lock */
	int holder = open(path, O_RDWR | O_CLOEXEC);
	assert_true(holder >= 0);
	assert_int_equal(flock(holder, LOCK_EX | LOCK_NB), 0);
	ntmm_config_t c = small_config(path);
	ntmm_engine_t *e = (ntmm_engine_t *)1;
	assert_int_equal(ntmm_engine_create(&c, &e), NTMM_EBUSY);
	assert_null(e);
	assert_non_null(strstr(ntmm_error_detail(), "another engine"));
	assert_non_null(strstr(ntmm_error_detail(), path));
	struct stat st;
	assert_int_equal(stat(path, &st), 0); /* still there, still named */
	assert_int_equal(st.st_size, 0);

	c.pagefile_path = NULL;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	assert_int_equal(ntmm_pagefile_add(e, path, 1 << 20, 1 << 20), NTMM_EBUSY);
	assert_int_equal(file_size(path), 0);
	close(holder); /* the other engine is gone */
	assert_int_equal(ntmm_pagefile_add(e, path, 1 << 20, 1 << 20), 0);
	assert_int_equal(dir_entries(f->dir), 0);
	ntmm_engine_destroy(e);
	free(path);
}

/* Somebody's data at the name (not empty, not marked) is refused with
   NTMM_EIO and left exactly as it was, locked or not, with or without
   O_TMPFILE. */
static void users_file_is_eio_and_untouched(void **state)
{
	fixture_t *f = *state;
	char *path = io_path(f->dir, "pagefile.sys");
	write_file(path, user_text, sizeof(user_text));
	ntmm_config_t c = small_config(NULL);
	ntmm_engine_t *e;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	for (int named = 0; named < 2; named++) {
		e->io.filedrv_named = named;
		assert_int_equal(ntmm_pagefile_add(e, path, 1 << 20, 1 << 20), NTMM_EIO);
		assert_non_null(strstr(ntmm_error_detail(), "not a paging file"));
		assert_file_holds(path, user_text, sizeof(user_text));
	}
	int holder = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(flock(holder, LOCK_EX | LOCK_NB), 0);
	assert_int_equal(ntmm_pagefile_add(e, path, 1 << 20, 1 << 20), NTMM_EIO);
	close(holder);
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(e, &st), 0);
	assert_int_equal(st.pagefile_size_pages, 0);
	ntmm_engine_destroy(e);
	assert_file_holds(path, user_text, sizeof(user_text));
	free(path);
}

/* A symbolic link at the name is not followed into a file to take over: a
   link to a user's file refuses as the file would (EIO, untouched), and a
   dangling link is refused (EIO) and left alone. */
static void symbolic_links_at_the_name_are_not_taken(void **state)
{
	fixture_t *f = *state;
	char *target = io_path(f->dir, "data"), *link = io_path(f->dir, "pf");
	write_file(target, user_text, sizeof(user_text));
	assert_int_equal(symlink("data", link), 0);
	ntmm_config_t c = small_config(NULL);
	ntmm_engine_t *e;
	assert_int_equal(ntmm_engine_create(&c, &e), 0);
	assert_int_equal(ntmm_pagefile_add(e, link, 1 << 20, 1 << 20), NTMM_EIO);
	assert_file_holds(target, user_text, sizeof(user_text));
	assert_int_equal(unlink(target), 0);
	assert_int_equal(ntmm_pagefile_add(e, link, 1 << 20, 1 << 20), NTMM_EIO);
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	ntmm_engine_destroy(e);
	assert_int_equal(dir_entries(f->dir), 1);
	free(target), free(link);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(relative_path_is_resolved_at_create_and_destroy_spares_other_files),
	    T(remove_resolves_the_path_when_called),
	    T(paging_file_has_no_name_while_the_engine_runs),
	    T(killed_engine_leaves_no_paging_file),
	    T(stale_paging_file_is_reclaimed_at_the_next_start),
	    T(file_locked_by_a_live_engine_is_ebusy),
	    T(users_file_is_eio_and_untouched),
	    T(symbolic_links_at_the_name_are_not_taken),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
