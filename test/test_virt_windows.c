/* Windows fidelity: the assertions of Wine's virtual-memory tests
   (dlls/kernel32/tests/virtual.c: test_VirtualAlloc,
   test_VirtualAlloc_protection, test_VirtualProtect, test_guard_page;
   dlls/ntdll/tests/virtual.c: test_NtAllocateVirtualMemory) and ReactOS's
   apitests (NtAllocateVirtualMemory, NtFreeVirtualMemory,
   NtProtectVirtualMemory) that map onto ntmm's API, re-expressed through
   include/ntmm.h. Windows status codes become ntmm codes:
   ERROR_INVALID_PARAMETER → NTMM_EINVAL; ERROR_INVALID_ADDRESS,
   STATUS_CONFLICTING_ADDRESSES, STATUS_FREE_VM_NOT_AT_BASE,
   STATUS_MEMORY_NOT_ALLOCATED, STATUS_UNABLE_TO_FREE_VM → NTMM_ECONFLICT;
   an access violation → NTMM_EACCESS; STATUS_GUARD_PAGE_VIOLATION →
   NTMM_EGUARD. Protections Windows grants on private memory that ntmm does
   not model (the EXECUTE kinds, NOCACHE, WRITECOMBINE) are NTMM_ENOTSUP. */
#include "virt_testutil.h"
#include "fixture.h"

static ntmm_engine_t *E;
static ntmm_process_t *P;

static int setup(void **state)
{
	(void)state;
	E = virt_engine(16 * MiB, 0);
	P = virt_process(E);
	return 0;
}
/* Everything is destroyed before anything is asserted: an assert failing
   here longjmps out too, and must not leave the engine behind. */
static int teardown(void **state)
{
	fixture_close_sections(E); /* a failed body may have left one open */
	int destroyed = ntmm_process_destroy(P);
	int audit = ntmm_audit(E);
	fixture_engine_release(E);
	E = NULL;
	P = NULL;
	assert_int_equal(destroyed, 0);
	assert_int_equal(audit, 0);
	return 0;
}

static ntmm_region_info_t q(uint64_t va)
{
	ntmm_region_info_t i;
	assert_int_equal(ntmm_query(P, va, &i), 0);
	return i;
}

static size_t commit_pages(void)
{
	ntmm_process_info_t pi;
	assert_int_equal(ntmm_process_info(P, &pi), 0);
	return pi.commit_pages;
}

static int write_byte(uint64_t va, uint8_t v)
{
	return ntmm_write(P, va, &v, 1);
}

static int read_byte(uint64_t va, uint8_t *v)
{
	return ntmm_read(P, va, v, 1);
}

static void release(uint64_t base)
{
	assert_int_equal(ntmm_free(P, base, 0, NTMM_MEM_RELEASE), 0);
}

/* The Windows protection values ntmm.h does not name as usable. */
#define X    NTMM_PAGE_EXECUTE
#define XR   NTMM_PAGE_EXECUTE_READ
#define XRW  NTMM_PAGE_EXECUTE_READWRITE
#define XWC  NTMM_PAGE_EXECUTE_WRITECOPY
#define NA   NTMM_PAGE_NOACCESS
#define RO   NTMM_PAGE_READONLY
#define RW   NTMM_PAGE_READWRITE
#define WC   NTMM_PAGE_WRITECOPY
#define GRD  NTMM_PAGE_GUARD
#define NOC  NTMM_PAGE_NOCACHE
#define WCMB NTMM_PAGE_WRITECOMBINE

/* What ntmm answers for a protection on private memory: 0 for the three
   it models, NTMM_ENOTSUP for the other kinds Windows grants, NTMM_EINVAL
   for what Windows refuses. */
static int private_prot_result(unsigned prot)
{
	unsigned base = prot & 0xffu;
	if (base == NA || base == RO || base == RW)
		return 0;
	if (base == X || base == XR || base == XRW)
		return NTMM_ENOTSUP;
	return NTMM_EINVAL;
}

/* ------------------------------------------- kernel32: test_VirtualAlloc */

static void reserve_of_size_zero_is_einval(void **s)
{
	(void)s;
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(P, &b, 0, NTMM_MEM_RESERVE, NA), NTMM_EINVAL);
	assert_int_equal(b, 0);
}

static void reserve_is_one_region_of_the_whole_granule_with_no_protection(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0xfffc, NTMM_MEM_RESERVE, NA), 0);
	ntmm_region_info_t i = q(a);
	assert_int_equal(i.base, a);
	assert_int_equal(i.allocation_base, a);
	assert_int_equal(i.allocation_prot, NA);
	assert_int_equal(i.size, 0x10000);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.prot, 0); /* NT reports 0 for memory not committed */
	assert_int_equal(i.type, NTMM_MEM_PRIVATE);
	release(a);
}

static void protect_needs_every_page_committed(void **s)
{
	(void)s;
	uint64_t a = 0;
	unsigned old = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0xfffc, NTMM_MEM_RESERVE, NA), 0);
	assert_int_equal(ntmm_protect(P, a, 0xfffc, RO, &old), NTMM_ECONFLICT);
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(P, &c, 0x1000, NTMM_MEM_COMMIT, NA), 0);
	assert_int_equal(c, a);
	ntmm_region_info_t i = q(a);
	assert_int_equal(i.base, a);
	assert_int_equal(i.allocation_base, a);
	assert_int_equal(i.allocation_prot, NA);
	assert_int_equal(i.size, 0x1000);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.prot, NA); /* committed: NT reports PAGE_NOACCESS */
	assert_int_equal(i.type, NTMM_MEM_PRIVATE);
	/* not the whole range is committed yet */
	assert_int_equal(ntmm_protect(P, a, 0xfffc, RO, &old), NTMM_ECONFLICT);
	assert_int_equal(ntmm_protect(P, a, 0x1000, RO, &old), 0);
	assert_int_equal(old, NA);
	assert_int_equal(ntmm_protect(P, a, 0x1000, RW, &old), 0);
	assert_int_equal(old, RO);
	i = q(a);
	assert_int_equal(i.size, 0x1000);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.prot, RW);
	uint8_t v = 0;
	assert_int_equal(write_byte(a + 19, 0x55), 0);
	assert_int_equal(read_byte(a + 19, &v), 0);
	assert_int_equal(v, 0x55);
	release(a);
}

static void invalid_protection_values_are_einval(void **s)
{
	(void)s;
	uint64_t a = 0;
	unsigned old = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0x10000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(P, &b, 0x1000, NTMM_MEM_RESERVE, 0), NTMM_EINVAL);
	assert_int_equal(ntmm_allocate(P, &b, 0x1000, NTMM_MEM_COMMIT, 0), NTMM_EINVAL);
	b = a;
	assert_int_equal(ntmm_allocate(P, &b, 0x1000, NTMM_MEM_COMMIT, RO | X), NTMM_EINVAL);
	assert_int_equal(ntmm_protect(P, a, 0x1000, RW | XWC, &old), NTMM_EINVAL);
	assert_int_equal(ntmm_protect(P, a, 0x1000, 0, &old), NTMM_EINVAL);
	assert_int_equal(q(a).prot, RW); /* nothing changed */
	assert_int_equal(commit_pages(), 16);
	release(a);
}

static void free_type_must_be_decommit_or_release_and_release_takes_size_zero(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0xfffc, NTMM_MEM_RESERVE, NA), 0);
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(P, &c, 0x1000, NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(ntmm_free(P, a, 0x10000, 0), NTMM_EINVAL);
	assert_int_equal(ntmm_free(P, a, 0, NTMM_MEM_FREE), NTMM_EINVAL);
	assert_int_equal(ntmm_free(P, a, 0x10000, NTMM_MEM_DECOMMIT), 0);
	assert_int_equal(commit_pages(), 0);
	assert_int_equal(ntmm_free(P, a, 1, NTMM_MEM_RELEASE), NTMM_EINVAL);
	assert_int_equal(q(a).state, NTMM_MEM_RESERVE);
	release(a);
	assert_int_equal(q(a).state, NTMM_MEM_FREE);
}

static void commit_without_reserve_at_base_zero_reserves_and_commits(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0x2000, NTMM_MEM_COMMIT, RW), 0);
	assert_true(a != 0);
	assert_int_equal(a % GRAN, 0);
	ntmm_region_info_t i = q(a);
	assert_int_equal(i.base, a);
	assert_int_equal(i.allocation_base, a);
	assert_int_equal(i.allocation_prot, RW);
	assert_int_equal(i.size, 0x2000);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.prot, RW);
	assert_int_equal(i.type, NTMM_MEM_PRIVATE);
	assert_int_equal(commit_pages(), 2);
	unsigned old = 0;
	assert_int_equal(ntmm_protect(P, a, 0x1000, RO, &old), 0);
	assert_int_equal(old, RW);
	i = q(a);
	assert_int_equal(i.allocation_prot, RW);
	assert_int_equal(i.size, 0x1000);
	assert_int_equal(i.prot, RO);
	release(a);
	assert_int_equal(commit_pages(), 0);
}

static void commit_without_reserve_at_base_zero_honours_top_down(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_COMMIT | NTMM_MEM_TOP_DOWN, RW), 0);
	assert_int_equal(a, 0x7fffffff0000ull - GRAN);
	assert_int_equal(q(a).state, NTMM_MEM_COMMIT);
	release(a);
}

static void allocations_are_64k_aligned_and_the_address_can_be_reused(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0x2000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(a & 0xffff, 0);
	release(a);
	uint64_t b = a;
	assert_int_equal(ntmm_allocate(P, &b, 0x1000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(b, a);
	release(b);
}

/* ---------------------------------- kernel32: test_VirtualAlloc_protection */

static void every_protection_value_commits_as_windows_allows(void **s)
{
	(void)s;
	/* 0x00..0x0f, then every combination of the EXECUTE bits 0x10..0xf0 */
	for (unsigned k = 0; k < 31; k++) {
		unsigned prot = k < 16 ? k : (k - 15) << 4;
		uint64_t a = 0;
		int want = private_prot_result(prot);
		int err = ntmm_allocate(P, &a, PG, NTMM_MEM_COMMIT, prot);
		assert_int_equal(err, want);
		if (err) {
			assert_int_equal(a, 0);
			continue;
		}
		ntmm_region_info_t i = q(a);
		assert_int_equal(i.base, a);
		assert_int_equal(i.size, PG);
		assert_int_equal(i.prot, prot);
		assert_int_equal(i.allocation_base, a);
		assert_int_equal(i.allocation_prot, prot);
		assert_int_equal(i.state, NTMM_MEM_COMMIT);
		assert_int_equal(i.type, NTMM_MEM_PRIVATE);
		if (prot == RW) {
			assert_int_equal(write_byte(a, 0xfe), 0);
			assert_int_equal(q(a).prot, prot);
		}
		uint64_t again = a; /* committing committed memory succeeds */
		assert_int_equal(ntmm_allocate(P, &again, PG, NTMM_MEM_COMMIT, prot), 0);
		assert_int_equal(again, a);
		assert_int_equal(commit_pages(), 1);
		release(a);
	}
	assert_int_equal(ntmm_audit(E), 0);
}

/* ------------------------------------------- kernel32: test_VirtualProtect */

static void protect_accepts_what_windows_accepts_and_reports_the_old_value(void **s)
{
	(void)s;
	uint64_t a = 0;
	unsigned old = 0xdead;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NA), 0);
	assert_int_equal(ntmm_protect(P, a, PG, RO, NULL), NTMM_EINVAL);
	assert_int_equal(ntmm_protect(P, a, PG, NA, &old), 0);
	assert_int_equal(old, NA);
	for (unsigned k = 0; k < 32; k++) {
		unsigned prot = k < 16 ? k : (k - 16) << 4;
		ntmm_region_info_t i = q(a);
		assert_int_equal(i.base, a);
		assert_int_equal(i.size, PG);
		assert_int_equal(i.prot, NA);
		assert_int_equal(i.allocation_prot, NA);
		assert_int_equal(i.state, NTMM_MEM_COMMIT);
		old = 0xdead;
		int want = private_prot_result(prot);
		assert_int_equal(ntmm_protect(P, a, PG, prot, &old), want);
		if (want == 0) {
			assert_int_equal(old, NA);
			i = q(a);
			assert_int_equal(i.size, PG);
			assert_int_equal(i.prot, prot);
			assert_int_equal(i.allocation_prot, NA);
		} else {
			assert_int_equal(old, 0xdead);
		}
		assert_int_equal(ntmm_protect(P, a, PG, NA, &old), 0);
		assert_int_equal(old, want == 0 ? prot : NA);
	}
	release(a);
}

static void commit_and_protect_refuse_two_kinds_and_copy_on_write(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NA), 0);
	unsigned exec_prot = 0;
	for (unsigned i = 0; i <= 4; i++) {
		unsigned rw_prot = 0;
		for (unsigned j = 0; j <= 4; j++) {
			unsigned prot = exec_prot | rw_prot, old;
			int want;
			if ((rw_prot && exec_prot) || (!rw_prot && !exec_prot))
				want = NTMM_EINVAL;
			else if (prot & (WC | XWC))
				want = NTMM_EINVAL;
			else if (exec_prot)
				want = NTMM_ENOTSUP;
			else
				want = 0;
			uint64_t b = a;
			assert_int_equal(ntmm_allocate(P, &b, PG, NTMM_MEM_COMMIT, prot), want);
			if (!want)
				assert_int_equal(b, a);
			assert_int_equal(ntmm_protect(P, a, PG, prot, &old), want);
			rw_prot = 1u << j;
		}
		exec_prot = 1u << (i + 4);
	}
	release(a);
}

static void writecopy_on_private_memory_is_einval(void **s)
{
	(void)s;
	uint64_t a = 0;
	unsigned old = 0;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE, WC), NTMM_EINVAL);
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, WC),
	                 NTMM_EINVAL);
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_COMMIT, WC | GRD), NTMM_EINVAL);
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE, XWC), NTMM_EINVAL);
	assert_int_equal(a, 0);
	assert_int_equal(ntmm_allocate(P, &a, 4 * PG, NTMM_MEM_RESERVE, RW), 0);
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(P, &c, PG, NTMM_MEM_COMMIT, WC), NTMM_EINVAL);
	assert_int_equal(q(a).state, NTMM_MEM_RESERVE);
	assert_int_equal(ntmm_allocate(P, &c, PG, NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(ntmm_protect(P, a, PG, WC, &old), NTMM_EINVAL);
	assert_int_equal(ntmm_protect(P, a, PG, WC | GRD, &old), NTMM_EINVAL);
	assert_int_equal(q(a).prot, RW);
	assert_int_equal(commit_pages(), 1);
	release(a);
}

static void execute_and_caching_protections_are_enotsup(void **s)
{
	(void)s;
	uint64_t a = 0;
	unsigned old = 0;
	unsigned notsup[] = {X, XR, XRW, XR | GRD, RW | NOC, RO | WCMB, XRW | NOC};
	for (size_t k = 0; k < sizeof(notsup) / sizeof(notsup[0]); k++)
		assert_int_equal(
		    ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, notsup[k]),
		    NTMM_ENOTSUP);
	/* combinations Windows refuses stay invalid */
	unsigned invalid[] = {RW | NOC | GRD, RW | NOC | WCMB, NA | NOC, NA | WCMB, NA | GRD};
	for (size_t k = 0; k < sizeof(invalid) / sizeof(invalid[0]); k++)
		assert_int_equal(
		    ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, invalid[k]),
		    NTMM_EINVAL);
	assert_int_equal(a, 0);
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(ntmm_protect(P, a, PG, XRW, &old), NTMM_ENOTSUP);
	assert_int_equal(ntmm_protect(P, a, PG, RW | NOC, &old), NTMM_ENOTSUP);
	assert_int_equal(q(a).prot, RW);
	release(a);
}

/* ---------------------------------------------- kernel32: test_guard_page */

static void guard_page_faults_once_and_keeps_its_data(void **s)
{
	(void)s;
	uint64_t a = 0;
	unsigned old = 0;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW | GRD), 0);
	ntmm_region_info_t i = q(a);
	assert_int_equal(i.base, a);
	assert_int_equal(i.allocation_prot, RW | GRD);
	assert_int_equal(i.size, PG);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.prot, RW | GRD);
	assert_int_equal(i.type, NTMM_MEM_PRIVATE);
	/* put some initial value into the memory */
	assert_int_equal(ntmm_protect(P, a, PG, RW, &old), 0);
	assert_int_equal(old, RW | GRD);
	uint32_t one = 1, two = 2, v = 0;
	assert_int_equal(ntmm_write(P, a, &one, 4), 0);
	assert_int_equal(ntmm_write(P, a + 4, &two, 4), 0);
	assert_int_equal(ntmm_protect(P, a, PG, RW | GRD, &old), 0);
	assert_int_equal(old, RW);
	/* the first access is the guard fault, the next one goes through */
	assert_int_equal(ntmm_read(P, a, &v, 4), NTMM_EGUARD);
	assert_int_equal(ntmm_read(P, a, &v, 4), 0);
	assert_int_equal(v, 1);
	assert_int_equal(q(a).prot, RW); /* PAGE_GUARD is removed */
	assert_int_equal(q(a).allocation_prot, RW | GRD);
	assert_int_equal(ntmm_protect(P, a, PG, RW | GRD, &old), 0);
	assert_int_equal(old, RW);
	/* the second integer */
	assert_int_equal(ntmm_read(P, a + 4, &v, 4), NTMM_EGUARD);
	assert_int_equal(ntmm_read(P, a + 4, &v, 4), 0);
	assert_int_equal(v, 2);
	assert_int_equal(ntmm_read(P, a, &v, 4), 0);
	assert_int_equal(v, 1);
	release(a);
}

/* ------------------------------------ ntdll: test_NtAllocateVirtualMemory */

static void reserve_inside_a_used_granule_is_econflict(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0x1000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	uint64_t b = a + 0x1000; /* rounds down to a */
	assert_int_equal(ntmm_allocate(P, &b, 0x1000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW),
	                 NTMM_ECONFLICT);
	release(a);
}

static void decommit_rounds_to_the_pages_holding_the_range(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0x10000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	/* [a + 0x1fff, a + 0x2001) lies in pages 1 and 2 */
	assert_int_equal(ntmm_free(P, a + 0x1fff, 2, NTMM_MEM_DECOMMIT), 0);
	ntmm_region_info_t i = q(a + 0x1000);
	assert_int_equal(i.base, a + 0x1000);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.size, 0x2000);
	assert_int_equal(q(a).size, 0x1000);
	assert_int_equal(q(a + 0x3000).state, NTMM_MEM_COMMIT);
	assert_int_equal(commit_pages(), 14);
	release(a);
}

static void size_zero_decommit_outside_the_first_page_is_econflict(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0x10000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(ntmm_free(P, a + 0x1001, 0, NTMM_MEM_DECOMMIT), NTMM_ECONFLICT);
	assert_int_equal(ntmm_free(P, a + 0x1000, 0, NTMM_MEM_DECOMMIT), NTMM_ECONFLICT);
	assert_int_equal(commit_pages(), 16);
	assert_int_equal(q(a).size, 0x10000);
	release(a);
}

static void size_zero_decommit_inside_the_first_page_decommits_the_reservation(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0x10000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(write_byte(a + 0x5000, 7), 0);
	assert_int_equal(ntmm_free(P, a + 0xffe, 0, NTMM_MEM_DECOMMIT), 0);
	ntmm_region_info_t i = q(a);
	assert_int_equal(i.base, a);
	assert_int_equal(i.state, NTMM_MEM_RESERVE);
	assert_int_equal(i.size, 0x10000);
	assert_int_equal(commit_pages(), 0);
	uint8_t v;
	assert_int_equal(read_byte(a + 0x5000, &v), NTMM_EACCESS);
	release(a);
}

static void size_zero_release_outside_the_first_page_is_econflict(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0x10000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(ntmm_free(P, a + 0x1001, 0, NTMM_MEM_RELEASE), NTMM_ECONFLICT);
	assert_int_equal(ntmm_free(P, a + 0x1000, 0, NTMM_MEM_RELEASE), NTMM_ECONFLICT);
	assert_int_equal(q(a).state, NTMM_MEM_COMMIT);
	assert_int_equal(commit_pages(), 16);
	release(a);
}

static void size_zero_release_inside_the_first_page_releases_the_reservation(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 0x10000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(ntmm_free(P, a + 0xfff, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(q(a).state, NTMM_MEM_FREE);
	assert_int_equal(commit_pages(), 0);
	assert_int_equal(ntmm_free(P, a, 0, NTMM_MEM_RELEASE), NTMM_ECONFLICT); /* gone */
}

/* ------------------------------------------- ReactOS: NtFreeVirtualMemory */

static void decommit_past_the_reservation_is_econflict(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE, RW), 0);
	assert_int_equal(ntmm_free(P, a, PG, NTMM_MEM_DECOMMIT), 0); /* nothing committed: fine */
	assert_int_equal(ntmm_free(P, a, PG + 1, NTMM_MEM_DECOMMIT), NTMM_ECONFLICT);
	/* from a + 1, PAGE_SIZE bytes reach into the second page */
	assert_int_equal(ntmm_free(P, a + 1, PG, NTMM_MEM_DECOMMIT), NTMM_ECONFLICT);
	assert_int_equal(ntmm_free(P, a + 1, PG - 1, NTMM_MEM_DECOMMIT), 0);
	assert_int_equal(ntmm_free(P, a + 1, 0, NTMM_MEM_RELEASE), 0);
	assert_int_equal(q(a).state, NTMM_MEM_FREE);
}

/* ---------------------------- ReactOS: NtAllocateVirtualMemory CheckAlignment */

static void reserve_rounds_the_base_to_64k_and_the_end_to_pages(void **s)
{
	(void)s;
	static const struct {
		uint64_t base, size, expect;
	} c[] = {
	    {0x50000000, 0x0001, 0x1000},  {0x50008000, 0x0001, 0x9000},
	    {0x50000010, 0x1000, 0x2000},  {0x50010000, 0x2000, 0x2000},
	    {0x5000ffff, 0x3000, 0x13000}, {0x50001010, 0x7000, 0x9000},
	    {0x50001010, 0xc000, 0xe000},
	};
	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		uint64_t b = c[k].base;
		assert_int_equal(ntmm_allocate(P, &b, c[k].size, NTMM_MEM_RESERVE, NA), 0);
		assert_int_equal(b, c[k].base & ~0xffffull);
		assert_int_equal(q(b).size, c[k].expect);
		release(b);
	}
}

static void commit_recommit_and_decommit_inside_one_reservation(void **s)
{
	(void)s;
	uint64_t b = 0x50001010;
	assert_int_equal(ntmm_allocate(P, &b, 0x1000, NTMM_MEM_RESERVE, NA), 0);
	assert_int_equal(b, 0x50000000);
	assert_int_equal(q(b).size, 0x3000);
	uint64_t x = 0x50008000; /* the same 64 KiB granule */
	assert_int_equal(ntmm_allocate(P, &x, 0x1000, NTMM_MEM_RESERVE, NA), NTMM_ECONFLICT);
	x = 0x50002000;
	assert_int_equal(ntmm_allocate(P, &x, 0x1000, NTMM_MEM_COMMIT, NA), 0);
	assert_int_equal(x, 0x50002000);
	/* the same address again with a different protection */
	assert_int_equal(ntmm_allocate(P, &x, 0x1000, NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(x, 0x50002000);
	assert_int_equal(q(x).prot, RW);
	assert_int_equal(commit_pages(), 1);
	x = 0x50003000; /* past the reservation's end */
	assert_int_equal(ntmm_allocate(P, &x, 0x1000, NTMM_MEM_COMMIT, NA), NTMM_ECONFLICT);
	/* decommit, even the pages that were never committed */
	assert_int_equal(ntmm_free(P, 0x50000000, 0x3000, NTMM_MEM_DECOMMIT), 0);
	assert_int_equal(commit_pages(), 0);
	/* release in a granule nobody reserved / at another address */
	assert_int_equal(ntmm_free(P, 0x50010000, 0, NTMM_MEM_RELEASE), NTMM_ECONFLICT);
	assert_int_equal(ntmm_free(P, 0x50008000, 0, NTMM_MEM_RELEASE), NTMM_ECONFLICT);
	release(0x50000000);
	/* reserve and commit at once */
	b = 0x50004080;
	assert_int_equal(ntmm_allocate(P, &b, 0x1000, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(b, 0x50000000);
	assert_int_equal(q(b).size, 0x6000);
	assert_int_equal(write_byte(b, 1), 0);
	assert_int_equal(write_byte(0x50004080, 1), 0);
	release(b);
}

/* ----------------------- ReactOS: NtAllocateVirtualMemory CheckAdjacentVADs */

static void recommit_read_only_over_committed_pages_refuses_writes(void **s)
{
	(void)s;
	uint64_t r[3] = {0x50000000, 0x50020000, 0x50010000};
	for (int k = 0; k < 3; k++)
		assert_int_equal(ntmm_allocate(P, &r[k], 0x10000, NTMM_MEM_RESERVE, NA), 0);
	uint64_t x = 0x50004000; /* covers two reservations */
	assert_int_equal(ntmm_allocate(P, &x, 0x10000, NTMM_MEM_COMMIT, NA), NTMM_ECONFLICT);
	x = 0x50000000;
	assert_int_equal(ntmm_allocate(P, &x, 0x1000, NTMM_MEM_COMMIT, RW), 0);
	x = 0x50002000;
	assert_int_equal(ntmm_allocate(P, &x, 0x1000, NTMM_MEM_COMMIT, NA), 0);
	assert_int_equal(write_byte(0x50000000, 1), 0);
	uint8_t v = 0;
	assert_int_equal(read_byte(0x50002000, &v), NTMM_EACCESS);
	/* three pages read-only, over the two committed ones */
	x = 0x50000000;
	assert_int_equal(ntmm_allocate(P, &x, 0x3000, NTMM_MEM_COMMIT, RO), 0);
	assert_int_equal(write_byte(0x50000000, 2), NTMM_EACCESS);
	assert_int_equal(read_byte(0x50000000, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(read_byte(0x50002000, &v), 0);
	assert_int_equal(v, 0);
	ntmm_region_info_t i = q(0x50000000);
	assert_int_equal(i.size, 0x3000);
	assert_int_equal(i.prot, RO);
	assert_int_equal(commit_pages(), 3);
	/* a page at the end of the first region */
	x = 0x5000f000;
	assert_int_equal(ntmm_allocate(P, &x, 0x1000, NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(x, 0x5000f000);
	i = q(0x5000f700);
	assert_int_equal(i.base, 0x5000f000);
	assert_int_equal(i.allocation_base, 0x50000000);
	assert_int_equal(i.allocation_prot, NA);
	assert_int_equal(i.size, 0x1000);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.prot, RW);
	assert_int_equal(i.type, NTMM_MEM_PRIVATE);
	for (int k = 0; k < 3; k++)
		release(r[k]);
	assert_int_equal(ntmm_audit(E), 0);
}

/* --------------------------------------- ReactOS: NtProtectVirtualMemory */

static void protect_read_write_read_only_no_access_and_back(void **s)
{
	(void)s;
	uint64_t a = 0;
	unsigned old = 0;
	uint8_t v = 0;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE, NA), 0);
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(P, &c, PG, NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(write_byte(a, 0xff), 0);
	assert_int_equal(read_byte(a, &v), 0);
	assert_int_equal(v, 0xff);
	assert_int_equal(ntmm_protect(P, a, PG, RO, &old), 0);
	assert_int_equal(old, RW);
	assert_int_equal(write_byte(a, 0xaa), NTMM_EACCESS);
	assert_int_equal(read_byte(a, &v), 0);
	assert_int_equal(v, 0xff);
	assert_int_equal(ntmm_protect(P, a, PG, NA, &old), 0);
	assert_int_equal(old, RO);
	assert_int_equal(write_byte(a, 0xaa), NTMM_EACCESS);
	assert_int_equal(read_byte(a, &v), NTMM_EACCESS);
	assert_int_equal(ntmm_protect(P, a, PG, RO, &old), 0);
	assert_int_equal(old, NA);
	assert_int_equal(write_byte(a, 0xaa), NTMM_EACCESS);
	assert_int_equal(read_byte(a, &v), 0);
	assert_int_equal(v, 0xff); /* preserved */
	release(a);
}

static void committed_memory_made_no_access_then_released_comes_back_zeroed(void **s)
{
	(void)s;
	long rounds = scaled(200);
	for (long it = 0; it < rounds; it++) {
		uint64_t a = 0;
		unsigned old = 0;
		assert_int_equal(ntmm_allocate(P, &a, 16 * PG, NTMM_MEM_COMMIT, RW), 0);
		for (unsigned pg = 0; pg < 16; pg++) {
			uint8_t v = 0xee;
			assert_int_equal(read_byte(a + pg * PG, &v), 0);
			assert_int_equal(v, 0);
			assert_int_equal(write_byte(a + pg * PG, 123), 0);
		}
		assert_int_equal(ntmm_protect(P, a, 16 * PG, NA, &old), 0);
		assert_int_equal(old, RW);
		release(a);
	}
	assert_int_equal(commit_pages(), 0);
}

/* ------------------------ recommit: Windows applies the new protection */

static void recommit_applies_the_new_protection_and_splits_the_region(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 4 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	/* the engine-wide charge also counts page-table pages: compare deltas */
	uint64_t engine_charge = STAT(E, commit_pages);
	uint64_t c = a + PG;
	assert_int_equal(ntmm_allocate(P, &c, 2 * PG, NTMM_MEM_COMMIT, RO), 0);
	assert_int_equal(c, a + PG);
	ntmm_region_info_t i = q(a);
	assert_int_equal(i.prot, RW);
	assert_int_equal(i.size, PG);
	i = q(a + PG + 100);
	assert_int_equal(i.base, a + PG);
	assert_int_equal(i.prot, RO);
	assert_int_equal(i.size, 2 * PG);
	assert_int_equal(i.state, NTMM_MEM_COMMIT);
	assert_int_equal(i.allocation_prot, RW);
	i = q(a + 3 * PG);
	assert_int_equal(i.prot, RW);
	assert_int_equal(i.size, PG);
	/* not charged twice */
	assert_int_equal(commit_pages(), 4);
	assert_int_equal(STAT(E, commit_pages), engine_charge);
	/* back to one region */
	assert_int_equal(ntmm_allocate(P, &c, 2 * PG, NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(q(a).size, 4 * PG);
	assert_int_equal(commit_pages(), 4);
	release(a);
	assert_int_equal(ntmm_audit(E), 0);
}

static void recommit_read_only_makes_a_resident_page_refuse_writes(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 2 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(write_byte(a, 9), 0); /* resident, valid PTE with write */
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(P, &c, PG, NTMM_MEM_COMMIT, RO), 0);
	assert_int_equal(write_byte(a, 10), NTMM_EACCESS);
	void *h;
	ntmm_access_begin(E);
	assert_int_equal(ntmm_translate(P, a, NTMM_ACCESS_WRITE, &h), NTMM_EACCESS);
	ntmm_access_end(E);
	uint8_t v = 0;
	assert_int_equal(read_byte(a, &v), 0);
	assert_int_equal(v, 9);
	assert_int_equal(write_byte(a + PG, 3), 0); /* the other page is still writable */
	assert_int_equal(ntmm_audit(E), 0);
	release(a);
}

static void recommit_read_write_makes_a_read_only_page_writable(void **s)
{
	(void)s;
	uint64_t a = 0;
	uint8_t v = 0;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RO), 0);
	assert_int_equal(read_byte(a, &v), 0); /* resident, read-only PTE */
	assert_int_equal(write_byte(a, 1), NTMM_EACCESS);
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(P, &c, PG, NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(write_byte(a, 1), 0);
	assert_int_equal(read_byte(a, &v), 0);
	assert_int_equal(v, 1);
	release(a);
}

static void recommit_with_guard_makes_the_next_access_a_guard_fault(void **s)
{
	(void)s;
	uint64_t a = 0;
	uint8_t v = 0;
	assert_int_equal(ntmm_allocate(P, &a, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(write_byte(a, 42), 0);
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(P, &c, PG, NTMM_MEM_COMMIT, RW | GRD), 0);
	assert_int_equal(q(a).prot, RW | GRD);
	assert_int_equal(read_byte(a, &v), NTMM_EGUARD);
	assert_int_equal(q(a).prot, RW);
	assert_int_equal(read_byte(a, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(commit_pages(), 1);
	release(a);
}

static void recommit_of_a_trimmed_page_applies_the_new_protection(void **s)
{
	(void)s;
	uint64_t a = 0;
	uint8_t v = 0;
	assert_int_equal(ntmm_allocate(P, &a, 8 * PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, RW), 0);
	for (unsigned k = 0; k < 8; k++)
		assert_int_equal(write_byte(a + k * PG, (uint8_t)(k + 1)), 0);
	assert_int_equal(ntmm_ws_empty(P), 0); /* valid → transition */
	uint64_t c = a;
	assert_int_equal(ntmm_allocate(P, &c, 8 * PG, NTMM_MEM_COMMIT, RO), 0);
	for (unsigned k = 0; k < 8; k++) {
		assert_int_equal(write_byte(a + k * PG, 0x77), NTMM_EACCESS);
		assert_int_equal(read_byte(a + k * PG, &v), 0);
		assert_int_equal(v, k + 1);
	}
	assert_int_equal(ntmm_audit(E), 0);
	release(a);
}

static void recommit_of_a_partly_committed_range_charges_only_new_pages(void **s)
{
	(void)s;
	uint64_t a = 0;
	assert_int_equal(ntmm_allocate(P, &a, 8 * PG, NTMM_MEM_RESERVE, NA), 0);
	uint64_t c = a + 2 * PG;
	assert_int_equal(ntmm_allocate(P, &c, 2 * PG, NTMM_MEM_COMMIT, RW), 0);
	assert_int_equal(write_byte(a + 2 * PG, 5), 0);
	/* the engine-wide charge also counts page-table pages (already charged
	   for this 2 MiB span): the recommit adds just the 6 new pages */
	uint64_t engine_charge = STAT(E, commit_pages);
	c = a;
	assert_int_equal(ntmm_allocate(P, &c, 8 * PG, NTMM_MEM_COMMIT, RO), 0);
	assert_int_equal(commit_pages(), 8);
	assert_int_equal(STAT(E, commit_pages), engine_charge + 6);
	ntmm_region_info_t i = q(a);
	assert_int_equal(i.size, 8 * PG);
	assert_int_equal(i.prot, RO);
	uint8_t v = 0;
	assert_int_equal(read_byte(a + 2 * PG, &v), 0);
	assert_int_equal(v, 5); /* recommitting keeps the contents */
	assert_int_equal(write_byte(a + 2 * PG, 6), NTMM_EACCESS);
	assert_int_equal(ntmm_audit(E), 0);
	release(a);
	assert_int_equal(commit_pages(), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(reserve_of_size_zero_is_einval),
	    T(reserve_is_one_region_of_the_whole_granule_with_no_protection),
	    T(protect_needs_every_page_committed),
	    T(invalid_protection_values_are_einval),
	    T(free_type_must_be_decommit_or_release_and_release_takes_size_zero),
	    T(commit_without_reserve_at_base_zero_reserves_and_commits),
	    T(commit_without_reserve_at_base_zero_honours_top_down),
	    T(allocations_are_64k_aligned_and_the_address_can_be_reused),
	    T(every_protection_value_commits_as_windows_allows),
	    T(protect_accepts_what_windows_accepts_and_reports_the_old_value),
	    T(commit_and_protect_refuse_two_kinds_and_copy_on_write),
	    T(writecopy_on_private_memory_is_einval),
	    T(execute_and_caching_protections_are_enotsup),
	    T(guard_page_faults_once_and_keeps_its_data),
	    T(reserve_inside_a_used_granule_is_econflict),
	    T(decommit_rounds_to_the_pages_holding_the_range),
	    T(size_zero_decommit_outside_the_first_page_is_econflict),
	    T(size_zero_decommit_inside_the_first_page_decommits_the_reservation),
	    T(size_zero_release_outside_the_first_page_is_econflict),
	    T(size_zero_release_inside_the_first_page_releases_the_reservation),
	    T(decommit_past_the_reservation_is_econflict),
	    T(reserve_rounds_the_base_to_64k_and_the_end_to_pages),
	    T(commit_recommit_and_decommit_inside_one_reservation),
	    T(recommit_read_only_over_committed_pages_refuses_writes),
	    T(protect_read_write_read_only_no_access_and_back),
	    T(committed_memory_made_no_access_then_released_comes_back_zeroed),
	    T(recommit_applies_the_new_protection_and_splits_the_region),
	    T(recommit_read_only_makes_a_resident_page_refuse_writes),
	    T(recommit_read_write_makes_a_read_only_page_writable),
	    T(recommit_with_guard_makes_the_next_access_a_guard_fault),
	    T(recommit_of_a_trimmed_page_applies_the_new_protection),
	    T(recommit_of_a_partly_committed_range_charges_only_new_pages),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
