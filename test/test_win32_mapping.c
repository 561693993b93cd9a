/* <ntmm/win32.h>, the mapping part: CreateFileMapping, MapViewOfFile(Ex,2),
   FlushViewOfFile, UnmapViewOfFile, CloseHandle over the section layer,
   checked against Windows' behaviour (Wine's test_MapViewOfFile and
   test_CreateFileMapping in spirit): file-backed views read and written and
   compared with pread, shared memory between two engine processes,
   FILE_MAP_COPY leaving the file untouched, alignment, view sizes, bad and
   closed handles, write access to read-only mappings.

   NEEDS THE SECTION LAYER (engine/section/): until it is merged every test
   here fails, because ntmm_section_create answers NTMM_ENOTSUP and so
   CreateFileMapping returns NULL with ERROR_NOT_SUPPORTED (the failure
   message says so). The parts of the API that do not need a section are
   in test_win32.c. */
#include "virt_testutil.h"

#include <ntmm/win32.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static ntmm_engine_t *E;
static ntmm_process_t *P;

static int setup(void **state)
{
	(void)state;
	E = virt_engine(32 * MiB, 0);
	P = virt_process(E);
	ntmm_win32_set_process(P);
	return 0;
}
static int teardown(void **state)
{
	(void)state;
	ntmm_win32_set_process(NULL);
	assert_int_equal(ntmm_process_destroy(P), 0);
	virt_engine_done(E);
	return 0;
}

#define EXPECT_ERROR(call, err)                          \
	do {                                             \
		SetLastError(0xdeadbeef);                \
		assert_false(call);                      \
		assert_int_equal(GetLastError(), (err)); \
	} while (0)

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 12) + 3);
}

/* An unlinked scratch file of `size` bytes of pattern(), opened `flags`. */
static int pattern_file(size_t size, int flags)
{
	const char *base = getenv("NTMM_TEST_TMPDIR");
	char path[600];
	snprintf(path, sizeof(path), "%s/ntmm-win32map-XXXXXX", base && *base ? base : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(size ? size : 1);
	for (size_t i = 0; i < size; i++)
		buf[i] = pattern(i);
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	free(buf);
	int other = open(path, flags);
	assert_true(other >= 0);
	unlink(path);
	close(fd);
	return other;
}

/* CreateFileMapping that must succeed; says why when it does not (the
   section layer absent: ERROR_NOT_SUPPORTED). */
static HANDLE mapping_of(int fd, DWORD prot, uint64_t size)
{
	SetLastError(0xdeadbeef);
	HANDLE h = CreateFileMapping(fd, NULL, prot, (DWORD)(size >> 32), (DWORD)size, NULL);
	if (!h)
		fail_msg("CreateFileMapping failed: error %u (%s)%s", GetLastError(),
		         ntmm_error_detail(),
		         GetLastError() == ERROR_NOT_SUPPORTED ? " -- is the section layer merged?"
		                                               : "");
	assert_int_equal(GetLastError(), ERROR_SUCCESS);
	return h;
}

static MEMORY_BASIC_INFORMATION query_in(ntmm_process_t *p, LPCVOID addr)
{
	MEMORY_BASIC_INFORMATION mbi;
	assert_int_equal(VirtualQueryEx(p, addr, &mbi, sizeof(mbi)), sizeof(mbi));
	return mbi;
}

static void read_at(ntmm_process_t *p, LPCVOID addr, void *buf, size_t len)
{
	assert_int_equal(ntmm_read(p, ntmm_win32_va(addr), buf, len), 0);
}

static void write_at(ntmm_process_t *p, LPVOID addr, const void *buf, size_t len)
{
	assert_int_equal(ntmm_write(p, ntmm_win32_va(addr), buf, len), 0);
}

/* ------------------------------------------------------------ file views */

static void a_file_view_reads_the_file_and_flush_writes_it_back(void **s)
{
	(void)s;
	const size_t size = 256 * KiB;
	int fd = pattern_file(size, O_RDWR);
	HANDLE h = mapping_of(fd, PAGE_READWRITE, 0);
	char *v = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);
	assert_non_null(v);
	MEMORY_BASIC_INFORMATION mbi = query_in(P, v + 5000);
	assert_ptr_equal(mbi.AllocationBase, v);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.Type, MEM_MAPPED);
	assert_int_equal(mbi.Protect, PAGE_READWRITE);
	/* every byte as the file has it */
	uint8_t *buf = malloc(size);
	read_at(P, v, buf, size);
	for (size_t i = 0; i < size; i++)
		if (buf[i] != pattern(i))
			fail_msg("byte %zu of the view is %u, the file has %u", i, buf[i],
			         pattern(i));
	/* written through the view, flushed, read back with pread */
	const char msg[] = "written through a Win32 view";
	write_at(P, v + 3 * 4096 + 17, msg, sizeof(msg));
	write_at(P, v + size - sizeof(msg), msg, sizeof(msg));
	assert_true(FlushViewOfFile(v, 0));
	char back[sizeof(msg)];
	assert_int_equal(pread(fd, back, sizeof(back), 3 * 4096 + 17), (ssize_t)sizeof(back));
	assert_memory_equal(back, msg, sizeof(msg));
	assert_int_equal(pread(fd, back, sizeof(back), (off_t)(size - sizeof(msg))),
	                 (ssize_t)sizeof(back));
	assert_memory_equal(back, msg, sizeof(msg));
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, 3 * 4096 + 16), 1);
	assert_int_equal(b, pattern(3 * 4096 + 16)); /* the neighbours are untouched */
	assert_true(UnmapViewOfFile(v));
	assert_int_equal(query_in(P, v).State, MEM_FREE);
	assert_true(CloseHandle(h));
	free(buf);
	close(fd);
	assert_int_equal(ntmm_audit(E), 0);
}

static void flush_of_part_of_a_view_is_durable_for_that_part(void **s)
{
	(void)s;
	int fd = pattern_file(128 * KiB, O_RDWR);
	HANDLE h = mapping_of(fd, PAGE_READWRITE, 0);
	char *v = MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, 0);
	assert_non_null(v);
	uint8_t x = 0xa5;
	write_at(P, v + 70000, &x, 1);
	assert_true(FlushViewOfFile(v + 69632, 4096));
	uint8_t b = 0;
	assert_int_equal(pread(fd, &b, 1, 70000), 1);
	assert_int_equal(b, 0xa5);
	assert_true(UnmapViewOfFile(v));
	assert_true(CloseHandle(h));
	close(fd);
}

static void a_view_at_an_offset_maps_that_part_of_the_file(void **s)
{
	(void)s;
	int fd = pattern_file(256 * KiB, O_RDONLY);
	HANDLE h = mapping_of(fd, PAGE_READONLY, 0);
	close(fd); /* the engine has its own descriptor */
	char *v = MapViewOfFile(h, FILE_MAP_READ, 0, 0x20000, 0x8000);
	assert_non_null(v);
	uint8_t b[64];
	read_at(P, v + 100, b, sizeof(b));
	for (size_t i = 0; i < sizeof(b); i++)
		assert_int_equal(b[i], pattern(0x20000 + 100 + i));
	MEMORY_BASIC_INFORMATION mbi = query_in(P, v);
	assert_int_equal(mbi.RegionSize, 0x8000);
	assert_int_equal(mbi.Protect, PAGE_READONLY);
	/* a read-only view refuses writes */
	assert_int_equal(ntmm_write(P, ntmm_win32_va(v), b, 1), NTMM_EACCESS);
	assert_true(UnmapViewOfFile(v));
	assert_true(CloseHandle(h));
}

static void a_readwrite_mapping_past_the_end_grows_the_file(void **s)
{
	(void)s;
	int fd = pattern_file(4096, O_RDWR);
	HANDLE h = mapping_of(fd, PAGE_READWRITE, 0x30000);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(st.st_size >= 0x30000);
	char *v = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0x20000, 0);
	assert_non_null(v);
	uint8_t x = 0x3c, b = 0;
	write_at(P, v + 0xffff, &x, 1);
	assert_true(FlushViewOfFile(v, 0));
	assert_int_equal(pread(fd, &b, 1, 0x2ffff), 1);
	assert_int_equal(b, 0x3c);
	assert_true(UnmapViewOfFile(v));
	assert_true(CloseHandle(h));
	close(fd);
}

/* ------------------------------------------------------- shared memory */

static void a_paging_file_mapping_is_shared_between_two_processes(void **s)
{
	(void)s;
	ntmm_process_t *q = virt_process(E);
	HANDLE h = mapping_of(INVALID_HANDLE_VALUE, PAGE_READWRITE, 1 * MiB);
	char *vp = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);
	assert_non_null(vp);
	char *vq = MapViewOfFile2(h, q, 0, NULL, 0, 0, PAGE_READWRITE);
	assert_non_null(vq);
	assert_int_equal(query_in(P, vp).RegionSize, 1 * MiB);
	assert_int_equal(query_in(q, vq).Type, MEM_MAPPED);
	/* starts zeroed, and each side sees the other's writes */
	uint64_t z = 1;
	read_at(q, vq + 500000, &z, sizeof(z));
	assert_int_equal(z, 0);
	uint64_t a = 0x1122334455667788ull, b = 0;
	write_at(P, vp + 12345, &a, sizeof(a));
	read_at(q, vq + 12345, &b, sizeof(b));
	assert_int_equal(b, a);
	a = 0x8877665544332211ull;
	write_at(q, vq + MiB - 8, &a, sizeof(a));
	read_at(P, vp + MiB - 8, &b, sizeof(b));
	assert_int_equal(b, a);
	/* the views outlive the handle */
	assert_true(CloseHandle(h));
	write_at(P, vp + 64, &a, sizeof(a));
	read_at(q, vq + 64, &b, sizeof(b));
	assert_int_equal(b, a);
	/* nothing to flush for the paging files */
	assert_true(FlushViewOfFile(vp, 0));
	assert_true(UnmapViewOfFile(vp));
	read_at(q, vq + 12345, &b, sizeof(b));
	assert_int_equal(b, 0x1122334455667788ull);
	assert_true(UnmapViewOfFile2(q, vq + 4096, 0)); /* any address inside the view */
	assert_int_equal(query_in(q, vq).State, MEM_FREE);
	assert_int_equal(ntmm_process_destroy(q), 0);
	assert_int_equal(ntmm_audit(E), 0);
}

static void sec_reserve_pages_are_committed_with_virtualalloc_inside_the_view(void **s)
{
	(void)s;
	HANDLE h = mapping_of(INVALID_HANDLE_VALUE, PAGE_READWRITE | SEC_RESERVE, 1 * MiB);
	char *v1 = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);
	char *v2 = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);
	assert_non_null(v1);
	assert_non_null(v2);
	assert_ptr_not_equal(v1, v2);
	MEMORY_BASIC_INFORMATION mbi = query_in(P, v1);
	assert_int_equal(mbi.State, MEM_RESERVE);
	assert_int_equal(mbi.Type, MEM_MAPPED);
	assert_int_equal(mbi.Protect, 0);
	assert_int_equal(mbi.AllocationProtect, PAGE_READWRITE);
	assert_ptr_equal(VirtualAlloc(v1, 0x10000, MEM_COMMIT, PAGE_READWRITE), v1);
	mbi = query_in(P, v1);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.RegionSize, 0x10000);
	/* the commit is the section's: the other view sees it too */
	assert_int_equal(query_in(P, v2).State, MEM_COMMIT);
	uint32_t x = 77, y = 0;
	write_at(P, v1 + 8, &x, sizeof(x));
	read_at(P, v2 + 8, &y, sizeof(y));
	assert_int_equal(y, 77);
	/* a view is not private memory */
	EXPECT_ERROR(VirtualFree(v1, 0x10000, MEM_DECOMMIT), ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualFree(v1, 0, MEM_RELEASE), ERROR_INVALID_PARAMETER);
	assert_true(UnmapViewOfFile(v1));
	assert_true(UnmapViewOfFile(v2));
	assert_true(CloseHandle(h));
}

/* --------------------------------------------------------- copy-on-write */

static void copy_views_leave_the_file_untouched(void **s)
{
	(void)s;
	DWORD prots[] = {PAGE_READONLY, PAGE_WRITECOPY, PAGE_READWRITE};
	for (size_t k = 0; k < 3; k++) {
		int fd = pattern_file(128 * KiB, prots[k] == PAGE_READWRITE ? O_RDWR : O_RDONLY);
		HANDLE h = mapping_of(fd, prots[k], 0);
		char *c = MapViewOfFile(h, FILE_MAP_COPY, 0, 0, 0);
		assert_non_null(c);
		char *r = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0);
		assert_non_null(r);
		assert_int_equal(query_in(P, c).Protect, PAGE_WRITECOPY);
		const char msg[] = "private copy";
		write_at(P, c + 40000, msg, sizeof(msg));
		char back[sizeof(msg)];
		read_at(P, c + 40000, back, sizeof(back));
		assert_memory_equal(back, msg, sizeof(msg));
		/* the shared view and the file keep the original bytes */
		read_at(P, r + 40000, back, sizeof(back));
		for (size_t i = 0; i < sizeof(back); i++)
			assert_int_equal((uint8_t)back[i], pattern(40000 + i));
		assert_true(FlushViewOfFile(c, 0));
		assert_true(UnmapViewOfFile(c));
		assert_true(UnmapViewOfFile(r));
		assert_true(CloseHandle(h));
		assert_int_equal(pread(fd, back, sizeof(back), 40000), (ssize_t)sizeof(back));
		for (size_t i = 0; i < sizeof(back); i++)
			assert_int_equal((uint8_t)back[i], pattern(40000 + i));
		close(fd);
	}
	assert_int_equal(ntmm_audit(E), 0);
}

/* ------------------------------------------------------------- bad input */

static void an_offset_or_base_not_a_multiple_of_64k_is_mapped_alignment(void **s)
{
	(void)s;
	int fd = pattern_file(256 * KiB, O_RDWR);
	HANDLE h = mapping_of(fd, PAGE_READWRITE, 0);
	EXPECT_ERROR(MapViewOfFile(h, FILE_MAP_READ, 0, 4096, 4096), ERROR_MAPPED_ALIGNMENT);
	EXPECT_ERROR(MapViewOfFile(h, FILE_MAP_READ, 0, 1, 0), ERROR_MAPPED_ALIGNMENT);
	char *free_range = VirtualAlloc(NULL, 0x40000, MEM_RESERVE, PAGE_NOACCESS);
	assert_non_null(free_range);
	assert_true(VirtualFree(free_range, 0, MEM_RELEASE));
	EXPECT_ERROR(MapViewOfFileEx(h, FILE_MAP_READ, 0, 0, 0x10000, free_range + 0x1000),
	             ERROR_MAPPED_ALIGNMENT);
	/* at an aligned free address it works */
	assert_ptr_equal(MapViewOfFileEx(h, FILE_MAP_READ, 0, 0, 0x10000, free_range + 0x10000),
	                 free_range + 0x10000);
	/* and there is no room for another one there */
	EXPECT_ERROR(MapViewOfFileEx(h, FILE_MAP_READ, 0, 0, 0x10000, free_range + 0x10000),
	             ERROR_INVALID_ADDRESS);
	assert_true(UnmapViewOfFile(free_range + 0x10000));
	assert_true(CloseHandle(h));
	close(fd);
}

static void a_view_past_the_mappings_end_is_access_denied(void **s)
{
	(void)s;
	int fd = pattern_file(128 * KiB, O_RDWR);
	HANDLE h = mapping_of(fd, PAGE_READWRITE, 0x18000);
	EXPECT_ERROR(MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0x18001), ERROR_ACCESS_DENIED);
	EXPECT_ERROR(MapViewOfFile(h, FILE_MAP_READ, 0, 0x10000, 0x9000), ERROR_ACCESS_DENIED);
	EXPECT_ERROR(MapViewOfFile(h, FILE_MAP_READ, 0, 0x20000, 0), ERROR_ACCESS_DENIED);
	EXPECT_ERROR(MapViewOfFile(h, FILE_MAP_READ, 1, 0, 0), ERROR_ACCESS_DENIED);
	char *v = MapViewOfFile(h, FILE_MAP_READ, 0, 0x10000, 0);
	assert_non_null(v);
	assert_int_equal(query_in(P, v).RegionSize, 0x8000);
	assert_true(UnmapViewOfFile(v));
	assert_true(CloseHandle(h));
	close(fd);
}

static void a_writable_view_of_a_read_only_mapping_is_access_denied(void **s)
{
	(void)s;
	int fd = pattern_file(64 * KiB, O_RDWR);
	HANDLE ro = mapping_of(fd, PAGE_READONLY, 0);
	EXPECT_ERROR(MapViewOfFile(ro, FILE_MAP_WRITE, 0, 0, 0), ERROR_ACCESS_DENIED);
	EXPECT_ERROR(MapViewOfFile(ro, FILE_MAP_ALL_ACCESS, 0, 0, 0), ERROR_ACCESS_DENIED);
	EXPECT_ERROR(MapViewOfFile2(ro, P, 0, NULL, 0, 0, PAGE_READWRITE), ERROR_ACCESS_DENIED);
	HANDLE wc = mapping_of(fd, PAGE_WRITECOPY, 0);
	EXPECT_ERROR(MapViewOfFile(wc, FILE_MAP_WRITE, 0, 0, 0), ERROR_ACCESS_DENIED);
	/* what they allow works */
	char *v = MapViewOfFile(ro, FILE_MAP_READ, 0, 0, 0);
	assert_non_null(v);
	assert_true(UnmapViewOfFile(v));
	v = MapViewOfFile(wc, FILE_MAP_COPY, 0, 0, 0);
	assert_non_null(v);
	assert_true(UnmapViewOfFile(v));
	assert_true(CloseHandle(ro));
	assert_true(CloseHandle(wc));
	close(fd);
}

static void a_view_with_no_access_faults_on_every_access(void **s)
{
	(void)s;
	int fd = pattern_file(64 * KiB, O_RDWR);
	HANDLE h = mapping_of(fd, PAGE_READWRITE, 0);
	char *v = MapViewOfFile(h, 0, 0, 0, 0);
	assert_non_null(v);
	assert_int_equal(query_in(P, v).Protect, PAGE_NOACCESS);
	uint8_t b;
	assert_int_equal(ntmm_read(P, ntmm_win32_va(v), &b, 1), NTMM_EACCESS);
	assert_true(UnmapViewOfFile(v));
	assert_true(CloseHandle(h));
	close(fd);
}

static void a_closed_handle_is_invalid_handle(void **s)
{
	(void)s;
	HANDLE h = mapping_of(INVALID_HANDLE_VALUE, PAGE_READWRITE, 64 * KiB);
	assert_true(CloseHandle(h));
	EXPECT_ERROR(CloseHandle(h), ERROR_INVALID_HANDLE);
	EXPECT_ERROR(MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0), ERROR_INVALID_HANDLE);
	/* a new mapping reuses the slot with another generation */
	HANDLE h2 = mapping_of(INVALID_HANDLE_VALUE, PAGE_READWRITE, 64 * KiB);
	assert_ptr_not_equal(h2, h);
	EXPECT_ERROR(MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0), ERROR_INVALID_HANDLE);
	assert_true(CloseHandle(h2));
}

static void unmapping_twice_or_flushing_an_unmapped_view_is_invalid_address(void **s)
{
	(void)s;
	HANDLE h = mapping_of(INVALID_HANDLE_VALUE, PAGE_READWRITE, 64 * KiB);
	char *v = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);
	assert_non_null(v);
	assert_true(UnmapViewOfFile(v + 100));
	EXPECT_ERROR(UnmapViewOfFile(v), ERROR_INVALID_ADDRESS);
	EXPECT_ERROR(FlushViewOfFile(v, 0), ERROR_INVALID_ADDRESS);
	assert_true(CloseHandle(h));
}

static void a_process_of_another_engine_is_invalid_handle(void **s)
{
	(void)s;
	ntmm_engine_t *e2 = virt_engine(8 * MiB, 0);
	ntmm_process_t *other = virt_process(e2);
	HANDLE h = mapping_of(INVALID_HANDLE_VALUE, PAGE_READWRITE, 64 * KiB);
	EXPECT_ERROR(MapViewOfFile2(h, other, 0, NULL, 0, 0, PAGE_READWRITE), ERROR_INVALID_HANDLE);
	assert_true(CloseHandle(h));
	assert_int_equal(ntmm_process_destroy(other), 0);
	virt_engine_done(e2);
}

struct worker {
	ntmm_process_t *p;
	HANDLE shared;
	int id;
};

/* Each worker makes the process current for its own thread, maps the shared
   handle and mappings of its own, and checks what it reads. */
static void *mapping_worker(void *arg)
{
	struct worker *w = arg;
	ntmm_win32_set_process(w->p);
	for (int i = 0; i < 100; i++) {
		HANDLE own = CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0,
		                               64 * KiB, NULL);
		WORKER_CHECK(own != NULL);
		char *v = own ? MapViewOfFile(own, FILE_MAP_WRITE, 0, 0, 0) : NULL;
		char *sv = MapViewOfFile(w->shared, FILE_MAP_READ, 0, 0, 0);
		WORKER_CHECK(v != NULL && sv != NULL);
		if (v) {
			uint32_t x = (uint32_t)(w->id * 1000 + i), y = 0;
			WORKER_CHECK(ntmm_write(w->p, ntmm_win32_va(v) + 4 * (uint64_t)i, &x, 4) ==
			             0);
			WORKER_CHECK(ntmm_read(w->p, ntmm_win32_va(v) + 4 * (uint64_t)i, &y, 4) ==
			             0);
			WORKER_CHECK(y == x);
			WORKER_CHECK(UnmapViewOfFile(v));
		}
		if (sv) {
			uint32_t y = 0;
			WORKER_CHECK(ntmm_read(w->p, ntmm_win32_va(sv), &y, 4) == 0);
			WORKER_CHECK(y == 0xfeedf00d);
			WORKER_CHECK(UnmapViewOfFile(sv));
		}
		if (own)
			WORKER_CHECK(CloseHandle(own));
		WORKER_CHECK(!CloseHandle(own) && GetLastError() == ERROR_INVALID_HANDLE);
	}
	ntmm_win32_set_process(NULL);
	return NULL;
}

static void handles_are_used_and_closed_from_many_threads_at_once(void **s)
{
	(void)s;
	enum { N = 4 };
	HANDLE shared = mapping_of(INVALID_HANDLE_VALUE, PAGE_READWRITE, 64 * KiB);
	char *v = MapViewOfFile(shared, FILE_MAP_WRITE, 0, 0, 0);
	assert_non_null(v);
	uint32_t magic = 0xfeedf00d;
	write_at(P, v, &magic, 4);
	struct worker w[N];
	ntmm_process_t *procs[N];
	for (int i = 0; i < N; i++) {
		procs[i] = virt_process(E);
		w[i] = (struct worker){procs[i], shared, i};
	}
	atomic_store(&test_failures, 0);
	run_threads(N, mapping_worker, w, sizeof(w[0]));
	assert_int_equal(atomic_load(&test_failures), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(ntmm_process_destroy(procs[i]), 0);
	assert_true(UnmapViewOfFile(v));
	assert_true(CloseHandle(shared));
	assert_int_equal(ntmm_audit(E), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(a_file_view_reads_the_file_and_flush_writes_it_back),
	    T(flush_of_part_of_a_view_is_durable_for_that_part),
	    T(a_view_at_an_offset_maps_that_part_of_the_file),
	    T(a_readwrite_mapping_past_the_end_grows_the_file),
	    T(a_paging_file_mapping_is_shared_between_two_processes),
	    T(sec_reserve_pages_are_committed_with_virtualalloc_inside_the_view),
	    T(copy_views_leave_the_file_untouched),
	    T(an_offset_or_base_not_a_multiple_of_64k_is_mapped_alignment),
	    T(a_view_past_the_mappings_end_is_access_denied),
	    T(a_writable_view_of_a_read_only_mapping_is_access_denied),
	    T(a_view_with_no_access_faults_on_every_access),
	    T(a_closed_handle_is_invalid_handle),
	    T(unmapping_twice_or_flushing_an_unmapped_view_is_invalid_address),
	    T(a_process_of_another_engine_is_invalid_handle),
	    T(handles_are_used_and_closed_from_many_threads_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
