/* <ntmm/win32.h>, the Virtual* part: Windows' results and last-error codes
   for VirtualAlloc/Free/Protect/Query and their Ex forms, in the spirit of
   Wine's dlls/kernel32/tests/virtual.c (test_VirtualAlloc,
   test_VirtualAllocEx, test_VirtualProtect) — rounding, MEM_RESERVE |
   MEM_COMMIT, release rules, error codes — plus the adapter's own rules:
   the thread-local current process and last error, engine virtual
   addresses in LPVOID, UnmapViewOfFile/FlushViewOfFile/CloseHandle on
   things that are not views or handles. The mapping calls proper are in
   test_win32_mapping.c. */
#include "virt_testutil.h"

#include <ntmm/win32.h>

#include <fcntl.h>
#include <unistd.h>

static ntmm_engine_t *E;
static ntmm_process_t *P;

static int setup(void **state)
{
	(void)state;
	E = virt_engine(16 * MiB, 0);
	P = virt_process(E);
	ntmm_win32_set_process(P);
	SetLastError(0);
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

static MEMORY_BASIC_INFORMATION query(LPVOID addr)
{
	MEMORY_BASIC_INFORMATION mbi;
	memset(&mbi, 'q', sizeof(mbi));
	assert_int_equal(VirtualQuery(addr, &mbi, sizeof(mbi)), sizeof(mbi));
	return mbi;
}

static SIZE_T commit_pages(ntmm_process_t *p)
{
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(p, &pi), 0);
	return pi.commit_pages;
}

#define EXPECT_ERROR(call, err)                          \
	do {                                             \
		SetLastError(0xdeadbeef);                \
		assert_false(call);                      \
		assert_int_equal(GetLastError(), (err)); \
	} while (0)

/* ------------------------------------------------------------- VirtualAlloc */

static void alloc_of_size_zero_fails_with_invalid_parameter(void **s)
{
	(void)s;
	EXPECT_ERROR(VirtualAlloc(NULL, 0, MEM_RESERVE, PAGE_NOACCESS), ERROR_INVALID_PARAMETER);
}

static void reserve_rounds_to_the_granule_and_reports_no_protection(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0xfffc, MEM_RESERVE, PAGE_NOACCESS);
	assert_non_null(a);
	assert_int_equal(ntmm_win32_va(a) % 0x10000, 0);
	MEMORY_BASIC_INFORMATION mbi = query(a);
	assert_ptr_equal(mbi.BaseAddress, a);
	assert_ptr_equal(mbi.AllocationBase, a);
	assert_int_equal(mbi.AllocationProtect, PAGE_NOACCESS);
	assert_int_equal(mbi.RegionSize, 0x10000);
	assert_int_equal(mbi.State, MEM_RESERVE);
	assert_int_equal(mbi.Protect, 0);
	assert_int_equal(mbi.Type, MEM_PRIVATE);
	assert_int_equal(mbi.PartitionId, 0);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void commit_in_a_reservation_returns_the_page_and_protect_needs_it_committed(void **s)
{
	(void)s;
	DWORD old = 0;
	char *a = VirtualAlloc(NULL, 0xfffc, MEM_RESERVE, PAGE_NOACCESS);
	assert_non_null(a);
	EXPECT_ERROR(VirtualProtect(a, 0xfffc, PAGE_READONLY, &old), ERROR_INVALID_ADDRESS);
	assert_ptr_equal(VirtualAlloc(a, 0x1000, MEM_COMMIT, PAGE_NOACCESS), a);
	MEMORY_BASIC_INFORMATION mbi = query(a);
	assert_int_equal(mbi.RegionSize, 0x1000);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.Protect, PAGE_NOACCESS);
	/* not the whole range is committed yet */
	EXPECT_ERROR(VirtualProtect(a, 0xfffc, PAGE_READONLY, &old), ERROR_INVALID_ADDRESS);
	assert_true(VirtualProtect(a, 0x1000, PAGE_READONLY, &old));
	assert_int_equal(old, PAGE_NOACCESS);
	assert_true(VirtualProtect(a, 0x1000, PAGE_READWRITE, &old));
	assert_int_equal(old, PAGE_READONLY);
	mbi = query(a);
	assert_int_equal(mbi.RegionSize, 0x1000);
	assert_int_equal(mbi.Protect, PAGE_READWRITE);
	/* the memory is the engine's: written and read back through ntmm */
	uint32_t v = 0x55555555, back = 0;
	assert_int_equal(ntmm_write(P, ntmm_win32_va(a), &v, sizeof(v)), 0);
	assert_int_equal(ntmm_read(P, ntmm_win32_va(a), &back, sizeof(back)), 0);
	assert_int_equal(back, v);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void commit_outside_any_reservation_is_invalid_address(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x10000, MEM_RESERVE, PAGE_NOACCESS);
	assert_non_null(a);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_ERROR(VirtualAlloc(a, 0x1000, MEM_COMMIT, PAGE_READWRITE), ERROR_INVALID_ADDRESS);
}

static void reserve_and_commit_together_make_committed_64k_aligned_memory(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x2000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	assert_int_equal(ntmm_win32_va(a) & 0xffff, 0);
	MEMORY_BASIC_INFORMATION mbi = query(a);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.RegionSize, 0x2000);
	assert_int_equal(mbi.AllocationProtect, PAGE_READWRITE);
	assert_int_equal(commit_pages(P), 2);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	/* the address can be had again */
	assert_ptr_equal(VirtualAlloc(a, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE), a);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	assert_int_equal(commit_pages(P), 0);
}

static void commit_alone_at_null_reserves_and_commits(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x2000, MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	MEMORY_BASIC_INFORMATION mbi = query(a);
	assert_ptr_equal(mbi.AllocationBase, a);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.Type, MEM_PRIVATE);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void a_reservation_inside_a_used_granule_is_invalid_address(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	EXPECT_ERROR(VirtualAlloc(a + 0x1000, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE),
	             ERROR_INVALID_ADDRESS);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void top_down_places_at_the_top_of_user_space(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_TOP_DOWN, PAGE_READWRITE);
	assert_non_null(a);
	assert_int_equal(ntmm_win32_va(a), 0x7fffffff0000ull - 0x10000);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void bad_protections_are_invalid_parameter(void **s)
{
	(void)s;
	DWORD old = 0;
	char *a = VirtualAlloc(NULL, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_RESERVE, 0), ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_COMMIT, 0), ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualAlloc(a, 0x1000, MEM_COMMIT, PAGE_READONLY | PAGE_EXECUTE),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualProtect(a, 0x1000, PAGE_READWRITE | PAGE_EXECUTE_WRITECOPY, &old),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualProtect(a, 0x1000, 0, &old), ERROR_INVALID_PARAMETER);
	/* WRITECOPY is for views */
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_WRITECOPY),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualProtect(a, 0x1000, PAGE_WRITECOPY, &old), ERROR_INVALID_PARAMETER);
	assert_int_equal(query(a).Protect, PAGE_READWRITE); /* nothing changed */
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void what_ntmm_does_not_model_is_not_supported(void **s)
{
	(void)s;
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_COMMIT, PAGE_EXECUTE_READWRITE),
	             ERROR_NOT_SUPPORTED);
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_COMMIT, PAGE_READWRITE | PAGE_NOCACHE),
	             ERROR_NOT_SUPPORTED);
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_LARGE_PAGES, PAGE_READWRITE),
	             ERROR_NOT_SUPPORTED);
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_WRITE_WATCH, PAGE_READWRITE),
	             ERROR_NOT_SUPPORTED);
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_PHYSICAL, PAGE_READWRITE),
	             ERROR_NOT_SUPPORTED);
	assert_int_equal(commit_pages(P), 0);
}

static void unknown_type_bits_are_invalid_parameter(void **s)
{
	(void)s;
	/* AT_ROUND_TO_PAGE is not for VirtualAlloc */
	EXPECT_ERROR(
	    VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT | 0x40000000u, PAGE_READWRITE),
	    ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_DECOMMIT, PAGE_READWRITE),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_RESET | MEM_COMMIT, PAGE_READWRITE),
	             ERROR_INVALID_PARAMETER);
}

static void an_address_past_user_space_is_invalid_parameter(void **s)
{
	(void)s;
	EXPECT_ERROR(VirtualAlloc(ntmm_win32_ptr(0x800000000000ull), 0x1000,
	                          MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE),
	             ERROR_INVALID_PARAMETER);
}

static void reset_keeps_contents_and_must_stay_inside_one_allocation(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x10000, MEM_RESERVE, PAGE_NOACCESS);
	assert_non_null(a);
	assert_ptr_equal(VirtualAlloc(a, 0x1000, MEM_COMMIT, PAGE_READWRITE), a);
	uint32_t v = 0x55555555, back = 0;
	assert_int_equal(ntmm_write(P, ntmm_win32_va(a), &v, sizeof(v)), 0);
	assert_ptr_equal(VirtualAlloc(a + 0x10, 0x1000, MEM_RESET, PAGE_NOACCESS), a);
	assert_int_equal(ntmm_read(P, ntmm_win32_va(a), &back, sizeof(back)), 0);
	assert_int_equal(back, v);
	MEMORY_BASIC_INFORMATION mbi = query(a);
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(mbi.Protect, PAGE_READWRITE);
	/* reserved pages too */
	assert_ptr_equal(VirtualAlloc(a + 0x1000, 0x1000, MEM_RESET, PAGE_NOACCESS), a + 0x1000);
	assert_int_equal(query(a + 0x1000).State, MEM_RESERVE);
	assert_ptr_equal(VirtualAlloc(a, 0x1000, MEM_RESET_UNDO, PAGE_NOACCESS), a);
	/* past the reservation's end */
	EXPECT_ERROR(VirtualAlloc(a + 0xf000, 0x2000, MEM_RESET, PAGE_NOACCESS),
	             ERROR_INVALID_ADDRESS);
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_RESET, PAGE_NOACCESS), ERROR_INVALID_PARAMETER);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_ERROR(VirtualAlloc(a, 0x1000, MEM_RESET, PAGE_NOACCESS), ERROR_INVALID_ADDRESS);
}

static void the_commit_limit_is_error_commitment_limit(void **s)
{
	(void)s;
	ntmm_stats_t st;
	assert_int_equal(ntmm_stats_get(E, &st), 0);
	SIZE_T too_much = (SIZE_T)(st.commit_limit_pages + 16) * PG;
	char *r = VirtualAlloc(NULL, too_much, MEM_RESERVE, PAGE_NOACCESS);
	assert_non_null(r);
	EXPECT_ERROR(VirtualAlloc(r, too_much, MEM_COMMIT, PAGE_READWRITE), ERROR_COMMITMENT_LIMIT);
	assert_int_equal(query(r).State, MEM_RESERVE);
	assert_true(VirtualFree(r, 0, MEM_RELEASE));
}

static void no_free_range_that_large_is_not_enough_memory(void **s)
{
	(void)s;
	/* 8 TiB reservations until the 128 TiB of user space has no room left */
	char *r[20];
	int n = 0;
	for (; n < 20; n++) {
		SetLastError(0);
		r[n] = VirtualAlloc(NULL, (SIZE_T)8 << 40, MEM_RESERVE, PAGE_NOACCESS);
		if (!r[n])
			break;
	}
	assert_true(n > 0 && n < 20);
	assert_int_equal(GetLastError(), ERROR_NOT_ENOUGH_MEMORY);
	for (int i = 0; i < n; i++)
		assert_true(VirtualFree(r[i], 0, MEM_RELEASE));
}

/* -------------------------------------------------------------- VirtualFree */

static void free_type_must_be_decommit_or_release_and_release_takes_size_zero(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x10000, MEM_RESERVE, PAGE_NOACCESS);
	assert_non_null(a);
	assert_ptr_equal(VirtualAlloc(a, 0x1000, MEM_COMMIT, PAGE_READWRITE), a);
	EXPECT_ERROR(VirtualFree(a, 0x10000, 0), ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualFree(a, 0, MEM_FREE), ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(VirtualFree(a, 0, MEM_DECOMMIT | MEM_RELEASE), ERROR_INVALID_PARAMETER);
	assert_true(VirtualFree(a, 0x10000, MEM_DECOMMIT));
	assert_int_equal(commit_pages(P), 0);
	assert_int_equal(query(a).State, MEM_RESERVE);
	EXPECT_ERROR(VirtualFree(a, 1, MEM_RELEASE), ERROR_INVALID_PARAMETER);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	assert_int_equal(query(a).State, MEM_FREE);
}

static void release_not_at_the_base_or_of_free_memory_is_invalid_address(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x20000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	EXPECT_ERROR(VirtualFree(a + 0x1000, 0, MEM_RELEASE), ERROR_INVALID_ADDRESS);
	EXPECT_ERROR(VirtualFree(a + 0x1000, 0, MEM_DECOMMIT), ERROR_INVALID_ADDRESS);
	assert_int_equal(query(a).State, MEM_COMMIT);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_ERROR(VirtualFree(a, 0, MEM_RELEASE), ERROR_INVALID_ADDRESS);
	EXPECT_ERROR(VirtualFree(a, 0x1000, MEM_DECOMMIT), ERROR_INVALID_ADDRESS);
}

static void decommit_rounds_to_the_pages_holding_the_range(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x10000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	/* [a + 0x1fff, a + 0x2001) lies in pages 1 and 2 */
	assert_true(VirtualFree(a + 0x1fff, 2, MEM_DECOMMIT));
	MEMORY_BASIC_INFORMATION mbi = query(a + 0x1000);
	assert_ptr_equal(mbi.BaseAddress, a + 0x1000);
	assert_int_equal(mbi.State, MEM_RESERVE);
	assert_int_equal(mbi.RegionSize, 0x2000);
	assert_int_equal(query(a).RegionSize, 0x1000);
	assert_int_equal(query(a + 0x3000).State, MEM_COMMIT);
	assert_int_equal(commit_pages(P), 14);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void a_decommitted_page_is_no_longer_accessible(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	uint8_t v = 7;
	assert_int_equal(ntmm_write(P, ntmm_win32_va(a), &v, 1), 0);
	assert_true(VirtualFree(a, 0x1000, MEM_DECOMMIT));
	assert_int_equal(ntmm_read(P, ntmm_win32_va(a), &v, 1), NTMM_EACCESS);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

/* ----------------------------------------------------------- VirtualProtect */

static void protect_with_a_null_old_protection_is_noaccess(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	EXPECT_ERROR(VirtualProtect(a, 0x1000, PAGE_READONLY, NULL), ERROR_NOACCESS);
	assert_int_equal(query(a).Protect, PAGE_READWRITE);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void protect_splits_the_region_and_reports_the_first_pages_protection(void **s)
{
	(void)s;
	DWORD old = 0;
	char *a = VirtualAlloc(NULL, 0x4000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	assert_true(VirtualProtect(a + 0x1000, 0x1000, PAGE_READONLY, &old));
	assert_int_equal(old, PAGE_READWRITE);
	assert_int_equal(query(a).RegionSize, 0x1000);
	MEMORY_BASIC_INFORMATION mbi = query(a + 0x1800);
	assert_ptr_equal(mbi.BaseAddress, a + 0x1000);
	assert_int_equal(mbi.RegionSize, 0x1000);
	assert_int_equal(mbi.Protect, PAGE_READONLY);
	assert_int_equal(mbi.AllocationProtect, PAGE_READWRITE);
	/* the first page decides old_prot */
	assert_true(VirtualProtect(a + 0x1000, 0x3000, PAGE_NOACCESS, &old));
	assert_int_equal(old, PAGE_READONLY);
	uint8_t v = 1;
	assert_int_equal(ntmm_write(P, ntmm_win32_va(a + 0x1000), &v, 1), NTMM_EACCESS);
	assert_int_equal(ntmm_write(P, ntmm_win32_va(a), &v, 1), 0);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void guard_pages_fault_once(void **s)
{
	(void)s;
	DWORD old = 0;
	char *a = VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	assert_true(VirtualProtect(a, 0x1000, PAGE_READWRITE | PAGE_GUARD, &old));
	assert_int_equal(query(a).Protect, PAGE_READWRITE | PAGE_GUARD);
	uint8_t v;
	assert_int_equal(ntmm_read(P, ntmm_win32_va(a), &v, 1), NTMM_EGUARD);
	assert_int_equal(ntmm_read(P, ntmm_win32_va(a), &v, 1), 0);
	assert_int_equal(query(a).Protect, PAGE_READWRITE);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

/* ------------------------------------------------------------- VirtualQuery */

static void query_returns_the_bytes_written_and_checks_the_length(void **s)
{
	(void)s;
	MEMORY_BASIC_INFORMATION mbi;
	char *a = VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	assert_int_equal(VirtualQuery(a, &mbi, sizeof(mbi) + 10), sizeof(mbi));
	SetLastError(0xdeadbeef);
	assert_int_equal(VirtualQuery(a, &mbi, sizeof(mbi) - 1), 0);
	assert_int_equal(GetLastError(), ERROR_BAD_LENGTH);
	SetLastError(0xdeadbeef);
	assert_int_equal(VirtualQuery(a, NULL, sizeof(mbi)), 0);
	assert_int_equal(GetLastError(), ERROR_NOACCESS);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void query_of_free_memory_reports_mem_free_with_no_allocation(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x10000, MEM_RESERVE, PAGE_NOACCESS);
	assert_non_null(a);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	MEMORY_BASIC_INFORMATION mbi = query(a + 0x123);
	assert_ptr_equal(mbi.BaseAddress, a);
	assert_null(mbi.AllocationBase);
	assert_int_equal(mbi.AllocationProtect, 0);
	assert_int_equal(mbi.State, MEM_FREE);
	assert_int_equal(mbi.Protect, PAGE_NOACCESS);
	assert_int_equal(mbi.Type, 0);
	assert_true(mbi.RegionSize >= 0x10000);
	/* below 64 KiB */
	mbi = query(NULL);
	assert_int_equal(mbi.State, MEM_FREE);
	assert_int_equal(mbi.RegionSize, 0x10000);
}

static void query_past_user_space_is_invalid_parameter(void **s)
{
	(void)s;
	MEMORY_BASIC_INFORMATION mbi;
	SetLastError(0xdeadbeef);
	assert_int_equal(VirtualQuery(ntmm_win32_ptr(0x7fffffff0000ull), &mbi, sizeof(mbi)), 0);
	assert_int_equal(GetLastError(), ERROR_INVALID_PARAMETER);
}

/* -------------------------------------------------------- Ex forms, process */

static void ex_forms_work_on_the_process_given_not_the_current_one(void **s)
{
	(void)s;
	ntmm_process_t *q = virt_process(E);
	char *a = VirtualAllocEx(q, NULL, 0x2000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	MEMORY_BASIC_INFORMATION mbi;
	assert_int_equal(VirtualQueryEx(q, a, &mbi, sizeof(mbi)), sizeof(mbi));
	assert_int_equal(mbi.State, MEM_COMMIT);
	assert_int_equal(commit_pages(q), 2);
	assert_int_equal(commit_pages(P), 0);
	assert_int_equal(query(a).State, MEM_FREE); /* the current process has nothing there */
	DWORD old = 0;
	assert_true(VirtualProtectEx(q, a, 0x1000, PAGE_READONLY, &old));
	assert_int_equal(old, PAGE_READWRITE);
	assert_true(VirtualFreeEx(q, a, 0, MEM_RELEASE));
	assert_int_equal(commit_pages(q), 0);
	assert_int_equal(ntmm_process_destroy(q), 0);
}

static void a_null_process_is_invalid_handle(void **s)
{
	(void)s;
	MEMORY_BASIC_INFORMATION mbi;
	DWORD old;
	char *a = VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	EXPECT_ERROR(VirtualAllocEx(NULL, NULL, 0x1000, MEM_COMMIT, PAGE_READWRITE),
	             ERROR_INVALID_HANDLE);
	EXPECT_ERROR(VirtualFreeEx(NULL, a, 0, MEM_RELEASE), ERROR_INVALID_HANDLE);
	EXPECT_ERROR(VirtualProtectEx(NULL, a, 0x1000, PAGE_READONLY, &old), ERROR_INVALID_HANDLE);
	EXPECT_ERROR(VirtualQueryEx(NULL, a, &mbi, sizeof(mbi)), ERROR_INVALID_HANDLE);
	assert_int_equal(query(a).State, MEM_COMMIT);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void without_a_current_process_calls_fail_with_invalid_handle(void **s)
{
	(void)s;
	assert_ptr_equal(ntmm_win32_set_process(NULL), P);
	assert_null(GetCurrentProcess());
	MEMORY_BASIC_INFORMATION mbi;
	EXPECT_ERROR(VirtualAlloc(NULL, 0x1000, MEM_COMMIT, PAGE_READWRITE), ERROR_INVALID_HANDLE);
	EXPECT_ERROR(VirtualQuery(NULL, &mbi, sizeof(mbi)), ERROR_INVALID_HANDLE);
	EXPECT_ERROR(
	    CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 0x10000, NULL),
	    ERROR_INVALID_HANDLE);
	EXPECT_ERROR(UnmapViewOfFile(ntmm_win32_ptr(0x10000)), ERROR_INVALID_HANDLE);
	EXPECT_ERROR(FlushViewOfFile(ntmm_win32_ptr(0x10000), 0), ERROR_INVALID_HANDLE);
	assert_null(ntmm_win32_set_process(P));
	assert_ptr_equal(GetCurrentProcess(), P);
	assert_int_equal(commit_pages(P), 0);
}

struct thread_arg {
	ntmm_process_t *seen;
	DWORD error_seen;
	int alloc_failed_with_invalid_handle;
};

static void *fresh_thread(void *p)
{
	struct thread_arg *a = p;
	a->seen = GetCurrentProcess();
	a->error_seen = GetLastError();
	SetLastError(0);
	a->alloc_failed_with_invalid_handle =
	    !VirtualAlloc(NULL, 0x1000, MEM_COMMIT, PAGE_READWRITE) &&
	    GetLastError() == ERROR_INVALID_HANDLE;
	SetLastError(1234);
	return NULL;
}

static void current_process_and_last_error_are_per_thread(void **s)
{
	(void)s;
	SetLastError(42);
	struct thread_arg a = {(ntmm_process_t *)1, 1, 0};
	run_threads(1, fresh_thread, &a, sizeof(a));
	assert_null(a.seen);
	assert_int_equal(a.error_seen, 0);
	assert_true(a.alloc_failed_with_invalid_handle);
	assert_int_equal(GetLastError(), 42); /* the other thread's 1234 is its own */
	assert_ptr_equal(GetCurrentProcess(), P);
}

static void success_leaves_the_last_error_alone(void **s)
{
	(void)s;
	SetLastError(0xdeadbeef);
	char *a = VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	MEMORY_BASIC_INFORMATION mbi;
	assert_int_equal(VirtualQuery(a, &mbi, sizeof(mbi)), sizeof(mbi));
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	assert_int_equal(GetLastError(), 0xdeadbeef);
}

static void failures_name_the_cause_in_the_error_detail(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x1000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	assert_false(VirtualProtect(a, 0x1000, PAGE_READONLY, NULL));
	assert_non_null(strstr(ntmm_error_detail(), "old_prot"));
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void system_info_gives_the_engines_page_granularity_and_address_space(void **s)
{
	(void)s;
	SYSTEM_INFO si;
	memset(&si, 0xee, sizeof(si));
	GetSystemInfo(&si);
	assert_int_equal(si.dwPageSize, 4096);
	assert_int_equal(si.dwAllocationGranularity, 65536);
	assert_int_equal(ntmm_win32_va(si.lpMinimumApplicationAddress), 0x10000);
	assert_int_equal(ntmm_win32_va(si.lpMaximumApplicationAddress), 0x7ffffffeffffull);
	assert_true(si.dwNumberOfProcessors >= 1);
	assert_int_not_equal(si.dwActiveProcessorMask, 0);
	/* the highest address VirtualAlloc can place is below the maximum */
	char *a = VirtualAlloc(NULL, 0x1000, MEM_COMMIT | MEM_TOP_DOWN, PAGE_READWRITE);
	assert_non_null(a);
	assert_true(ntmm_win32_va(a) + 0xfff <= ntmm_win32_va(si.lpMaximumApplicationAddress));
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	GetSystemInfo(NULL);
}

static void error_codes_have_their_windows_values(void **s)
{
	(void)s;
	assert_int_equal(ERROR_ACCESS_DENIED, 5);
	assert_int_equal(ERROR_INVALID_HANDLE, 6);
	assert_int_equal(ERROR_NOT_ENOUGH_MEMORY, 8);
	assert_int_equal(ERROR_BAD_LENGTH, 24);
	assert_int_equal(ERROR_NOT_SUPPORTED, 50);
	assert_int_equal(ERROR_INVALID_PARAMETER, 87);
	assert_int_equal(ERROR_INVALID_ADDRESS, 487);
	assert_int_equal(ERROR_NOACCESS, 998);
	assert_int_equal(ERROR_MAPPED_ALIGNMENT, 1132);
	assert_int_equal(ERROR_COMMITMENT_LIMIT, 1455);
	assert_int_equal(sizeof(MEMORY_BASIC_INFORMATION), 48);
	assert_int_equal(offsetof(MEMORY_BASIC_INFORMATION, RegionSize), 24);
	assert_int_equal(offsetof(MEMORY_BASIC_INFORMATION, Type), 40);
	assert_int_equal(ntmm_win32_error_from_ntmm(NTMM_ECONFLICT), ERROR_INVALID_ADDRESS);
	assert_int_equal(ntmm_win32_error_from_ntmm(NTMM_ECOMMIT), ERROR_COMMITMENT_LIMIT);
	assert_int_equal(ntmm_win32_error_from_ntmm(0), ERROR_SUCCESS);
	assert_int_equal(ntmm_win32_error_from_ntmm(NTMM_EGUARD), STATUS_GUARD_PAGE_VIOLATION);
}

/* ----------------------------------- views and handles: what is not one */

static void unmap_of_private_or_free_memory_is_invalid_address(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x10000, MEM_COMMIT, PAGE_READONLY);
	assert_non_null(a);
	EXPECT_ERROR(UnmapViewOfFile(a), ERROR_INVALID_ADDRESS);
	EXPECT_ERROR(UnmapViewOfFile(a + 0x3000), ERROR_INVALID_ADDRESS);
	EXPECT_ERROR(UnmapViewOfFile(ntmm_win32_ptr(0xdeadbeef)), ERROR_INVALID_ADDRESS);
	EXPECT_ERROR(UnmapViewOfFile2(P, a, 0), ERROR_INVALID_ADDRESS);
	EXPECT_ERROR(UnmapViewOfFile2(NULL, a, 0), ERROR_INVALID_HANDLE);
	assert_int_equal(query(a).State, MEM_COMMIT);
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
}

static void flush_of_private_memory_succeeds_and_of_free_memory_fails(void **s)
{
	(void)s;
	char *a = VirtualAlloc(NULL, 0x10000, MEM_COMMIT, PAGE_READWRITE);
	assert_non_null(a);
	assert_true(FlushViewOfFile(a, 0x1000));
	assert_true(FlushViewOfFile(a + 0x100, 0));
	assert_true(VirtualFree(a, 0, MEM_RELEASE));
	EXPECT_ERROR(FlushViewOfFile(a, 0x1000), ERROR_INVALID_ADDRESS);
	EXPECT_ERROR(FlushViewOfFile(ntmm_win32_ptr(0x7fffffff0000ull), 0),
	             ERROR_INVALID_PARAMETER);
}

static void made_up_mapping_handles_are_invalid_handle(void **s)
{
	(void)s;
	EXPECT_ERROR(CloseHandle(NULL), ERROR_INVALID_HANDLE);
	EXPECT_ERROR(CloseHandle((HANDLE)(uintptr_t)0x1234), ERROR_INVALID_HANDLE);
	EXPECT_ERROR(CloseHandle((HANDLE)(uintptr_t)-1), ERROR_INVALID_HANDLE);
	EXPECT_ERROR(MapViewOfFile(NULL, FILE_MAP_READ, 0, 0, 0), ERROR_INVALID_HANDLE);
	/* slot 0, generation 0: never handed out */
	EXPECT_ERROR(MapViewOfFile((HANDLE)(uintptr_t)4, FILE_MAP_READ, 0, 0, 0),
	             ERROR_INVALID_HANDLE);
	EXPECT_ERROR(MapViewOfFile2(NULL, P, 0, NULL, 0, 0, PAGE_READONLY), ERROR_INVALID_HANDLE);
}

static void create_file_mapping_checks_its_arguments_before_the_section_layer(void **s)
{
	(void)s;
	/* the paging files need a size */
	EXPECT_ERROR(CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 0, NULL),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_NOACCESS, 0, 0x1000, NULL),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(CreateFileMapping(INVALID_HANDLE_VALUE, NULL,
	                               PAGE_READWRITE | SEC_COMMIT | SEC_RESERVE, 0, 0x1000, NULL),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_NOCACHE, 0,
	                               0x1000, NULL),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_LARGE_PAGES,
	                               0, 0x1000, NULL),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_FILE, 0,
	                               0x1000, NULL),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(CreateFileMapping(INVALID_HANDLE_VALUE, NULL,
	                               PAGE_READWRITE | SEC_IMAGE | SEC_COMMIT, 0, 0x1000, NULL),
	             ERROR_INVALID_PARAMETER);
	EXPECT_ERROR(CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_IMAGE, 0,
	                               0x1000, NULL),
	             ERROR_NOT_SUPPORTED);
	EXPECT_ERROR(CreateFileMapping(INVALID_HANDLE_VALUE, NULL,
	                               PAGE_READWRITE | SEC_COMMIT | SEC_NOCACHE, 0, 0x1000, NULL),
	             ERROR_NOT_SUPPORTED);
	EXPECT_ERROR(
	    CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_EXECUTE_READWRITE, 0, 0x1000, NULL),
	    ERROR_NOT_SUPPORTED);
	EXPECT_ERROR(
	    CreateFileMapping(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, 0, 0x1000, "Local\\name"),
	    ERROR_NOT_SUPPORTED);
	/* a descriptor that is not open */
	EXPECT_ERROR(CreateFileMapping(1000000, NULL, PAGE_READONLY, 0, 0x1000, NULL),
	             ERROR_INVALID_HANDLE);
	EXPECT_ERROR(CreateFileMapping(-2, NULL, PAGE_READONLY, 0, 0x1000, NULL),
	             ERROR_INVALID_HANDLE);
}

/* An unlinked scratch file of `size` bytes under NTMM_TEST_TMPDIR, opened
   with `flags` (O_RDWR, O_RDONLY or O_WRONLY). */
static int scratch_file(size_t size, int flags)
{
	const char *base = getenv("NTMM_TEST_TMPDIR");
	char path[600];
	snprintf(path, sizeof(path), "%s/ntmm-win32-XXXXXX", base && *base ? base : "/tmp");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	int other = open(path, flags);
	assert_true(other >= 0);
	unlink(path);
	close(fd);
	return other;
}

static void create_file_mapping_checks_the_file_before_the_section_layer(void **s)
{
	(void)s;
	int empty = scratch_file(0, O_RDWR);
	EXPECT_ERROR(CreateFileMapping(empty, NULL, PAGE_READWRITE, 0, 0, NULL),
	             ERROR_FILE_INVALID);
	close(empty);
	int ro = scratch_file(8192, O_RDONLY);
	EXPECT_ERROR(CreateFileMapping(ro, NULL, PAGE_READWRITE, 0, 4096, NULL),
	             ERROR_ACCESS_DENIED);
	/* a read-only or copy-on-write mapping may not grow the file */
	EXPECT_ERROR(CreateFileMapping(ro, NULL, PAGE_READONLY, 0, 8193, NULL),
	             ERROR_NOT_ENOUGH_MEMORY);
	EXPECT_ERROR(CreateFileMapping(ro, NULL, PAGE_WRITECOPY, 0, 65536, NULL),
	             ERROR_NOT_ENOUGH_MEMORY);
	close(ro);
	int wo = scratch_file(8192, O_WRONLY);
	EXPECT_ERROR(CreateFileMapping(wo, NULL, PAGE_READONLY, 0, 4096, NULL),
	             ERROR_ACCESS_DENIED);
	EXPECT_ERROR(CreateFileMapping(wo, NULL, PAGE_READWRITE, 0, 4096, NULL),
	             ERROR_ACCESS_DENIED);
	close(wo);
	const char *base = getenv("NTMM_TEST_TMPDIR");
	int dir = open(base && *base ? base : "/tmp", O_RDONLY | O_DIRECTORY);
	assert_true(dir >= 0);
	EXPECT_ERROR(CreateFileMapping(dir, NULL, PAGE_READONLY, 0, 4096, NULL),
	             ERROR_ACCESS_DENIED);
	close(dir);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(alloc_of_size_zero_fails_with_invalid_parameter),
	    T(reserve_rounds_to_the_granule_and_reports_no_protection),
	    T(commit_in_a_reservation_returns_the_page_and_protect_needs_it_committed),
	    T(commit_outside_any_reservation_is_invalid_address),
	    T(reserve_and_commit_together_make_committed_64k_aligned_memory),
	    T(commit_alone_at_null_reserves_and_commits),
	    T(a_reservation_inside_a_used_granule_is_invalid_address),
	    T(top_down_places_at_the_top_of_user_space),
	    T(bad_protections_are_invalid_parameter),
	    T(what_ntmm_does_not_model_is_not_supported),
	    T(unknown_type_bits_are_invalid_parameter),
	    T(an_address_past_user_space_is_invalid_parameter),
	    T(reset_keeps_contents_and_must_stay_inside_one_allocation),
	    T(the_commit_limit_is_error_commitment_limit),
	    T(no_free_range_that_large_is_not_enough_memory),
	    T(free_type_must_be_decommit_or_release_and_release_takes_size_zero),
	    T(release_not_at_the_base_or_of_free_memory_is_invalid_address),
	    T(decommit_rounds_to_the_pages_holding_the_range),
	    T(a_decommitted_page_is_no_longer_accessible),
	    T(protect_with_a_null_old_protection_is_noaccess),
	    T(protect_splits_the_region_and_reports_the_first_pages_protection),
	    T(guard_pages_fault_once),
	    T(query_returns_the_bytes_written_and_checks_the_length),
	    T(query_of_free_memory_reports_mem_free_with_no_allocation),
	    T(query_past_user_space_is_invalid_parameter),
	    T(ex_forms_work_on_the_process_given_not_the_current_one),
	    T(a_null_process_is_invalid_handle),
	    T(without_a_current_process_calls_fail_with_invalid_handle),
	    T(current_process_and_last_error_are_per_thread),
	    T(success_leaves_the_last_error_alone),
	    T(failures_name_the_cause_in_the_error_detail),
	    T(system_info_gives_the_engines_page_granularity_and_address_space),
	    T(error_codes_have_their_windows_values),
	    T(unmap_of_private_or_free_memory_is_invalid_address),
	    T(flush_of_private_memory_succeeds_and_of_free_memory_fails),
	    T(made_up_mapping_handles_are_invalid_handle),
	    T(create_file_mapping_checks_its_arguments_before_the_section_layer),
	    T(create_file_mapping_checks_the_file_before_the_section_layer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
