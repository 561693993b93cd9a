/* A randomized property test of the VAD semantics: random reserve, commit,
   decommit, release, protect, query and data accesses against a plain
   page-array model of the same address window; every result, every query
   and the commit charge must agree with the model, and the audit holds. */
#include "virt_testutil.h"

#include <stdbool.h>
#include "fixture.h"

/* The engine of each test that needs one comes from its setup; the
   teardown destroys it even after a failed assert. */
static struct {
	ntmm_engine_t *e;
} fx;

static int setup_32mib(void **state)
{
	fx.e = virt_engine(32 * MiB, 0);
	*state = fx.e;
	return 0;
}
static int teardown(void **state)
{
	fixture_engine_release(fx.e);
	fx.e = NULL;
	return 0;
}

#define WIN_BASE  0x40000000ull
#define WIN_PAGES 2048u /* 8 MiB window = 128 granules */

typedef struct mpage {
	uint64_t alloc; /* allocation base, 0 = free */
	unsigned aprot; /* allocation protection */
	bool committed;
	unsigned prot;
	uint8_t data; /* expected first byte (committed, readable pages) */
} mpage_t;

static mpage_t M[WIN_PAGES];

static size_t pg_of(uint64_t va)
{
	return (size_t)((va - WIN_BASE) / PG);
}

static const unsigned prots[] = {NTMM_PAGE_NOACCESS,
                                 NTMM_PAGE_READONLY,
                                 NTMM_PAGE_READWRITE,
                                 NTMM_PAGE_WRITECOPY,
                                 NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD,
                                 NTMM_PAGE_READONLY | NTMM_PAGE_GUARD};

static uint64_t model_commit(void)
{
	uint64_t n = 0;
	for (size_t i = 0; i < WIN_PAGES; i++)
		n += M[i].committed;
	return n;
}

/* the page range [s, e) lies in one reservation */
static bool one_reservation(size_t s, size_t e)
{
	if (!M[s].alloc)
		return false;
	for (size_t i = s; i < e; i++)
		if (M[i].alloc != M[s].alloc)
			return false;
	return true;
}

static void check_query(ntmm_process_t *p, size_t i)
{
	ntmm_region_info_t q;
	uint64_t va = WIN_BASE + i * PG;
	assert_int_equal(ntmm_query(p, va + 123, &q), 0);
	assert_int_equal(q.base, va);
	if (!M[i].alloc) {
		assert_int_equal(q.state, NTMM_MEM_FREE);
		return;
	}
	assert_int_equal(q.allocation_base, M[i].alloc);
	assert_int_equal(q.allocation_prot, M[i].aprot);
	assert_int_equal(q.state, M[i].committed ? NTMM_MEM_COMMIT : NTMM_MEM_RESERVE);
	assert_int_equal(q.prot, M[i].committed ? M[i].prot : 0);
	size_t j = i;
	while (j < WIN_PAGES && M[j].alloc == M[i].alloc && M[j].committed == M[i].committed &&
	       M[j].prot == M[i].prot)
		j++;
	assert_int_equal(q.size, (j - i) * PG);
}

static void random_operations_agree_with_a_page_model(void **s)
{
	ntmm_engine_t *e = *s;
	ntmm_process_t *p = virt_process(e);
	memset(M, 0, sizeof(M));
	const char *env = getenv("NTMM_TEST_SEED"); /* repeatable; another seed by env */
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5eed;
	long ops = scaled(30000);
	long wins[8] = {0};
	for (long op = 0; op < ops; op++) {
		uint64_t r = test_rand(&seed);
		size_t a = (size_t)(test_rand(&seed) % WIN_PAGES);
		size_t len = 1 + (size_t)(test_rand(&seed) % 40);
		if (a + len > WIN_PAGES)
			len = WIN_PAGES - a;
		unsigned prot = prots[test_rand(&seed) % 6];
		if (prot == NTMM_PAGE_WRITECOPY && (r % 8 <= 2 || r % 8 == 5)) {
			/* copy-on-write is for views: refused on private memory */
			uint64_t b = WIN_BASE + a * PG;
			unsigned old = 0;
			int err =
			    r % 8 == 5
			        ? ntmm_protect(p, b, len * PG, prot, &old)
			        : ntmm_allocate(p, &b, len * PG,
			                        r % 8 ? NTMM_MEM_COMMIT : NTMM_MEM_RESERVE, prot);
			assert_int_equal(err, NTMM_EINVAL);
			continue;
		}
		switch (r % 8) {
		case 0: { /* reserve (maybe commit) at a granule */
			size_t g = a & ~(size_t)15;
			bool commit = (r >> 8) & 1;
			uint64_t base = WIN_BASE + g * PG + ((r >> 9) & 1) * 100;
			size_t n = g + len > WIN_PAGES ? WIN_PAGES - g : len;
			bool clash = false;
			for (size_t i = g; i < g + n; i++)
				clash |= M[i].alloc != 0;
			uint64_t got = base;
			int err =
			    ntmm_allocate(p, &got, n * PG - ((r >> 9) & 1) * 100,
			                  NTMM_MEM_RESERVE | (commit ? NTMM_MEM_COMMIT : 0), prot);
			if (clash) {
				assert_int_equal(err, NTMM_ECONFLICT);
				break;
			}
			assert_int_equal(err, 0);
			wins[r % 8]++;
			assert_int_equal(got, WIN_BASE + g * PG);
			for (size_t i = g; i < g + n; i++)
				M[i] = (mpage_t){got, prot, commit, commit ? prot : 0, 0};
			break;
		}
		case 1:
		case 2: { /* commit */
			uint64_t base = WIN_BASE + a * PG;
			int err = ntmm_allocate(p, &base, len * PG, NTMM_MEM_COMMIT, prot);
			if (!one_reservation(a, a + len)) {
				assert_int_equal(err, NTMM_ECONFLICT);
				break;
			}
			assert_int_equal(err, 0);
			wins[r % 8]++;
			for (size_t i = a; i < a + len; i++) { /* committed ones take prot too */
				if (!M[i].committed)
					M[i].committed = true, M[i].data = 0;
				M[i].prot = prot;
			}
			break;
		}
		case 3: { /* decommit */
			int err = ntmm_free(p, WIN_BASE + a * PG, len * PG, NTMM_MEM_DECOMMIT);
			if (!one_reservation(a, a + len)) {
				assert_int_equal(err, NTMM_ECONFLICT);
				break;
			}
			assert_int_equal(err, 0);
			wins[r % 8]++;
			for (size_t i = a; i < a + len; i++)
				M[i].committed = false, M[i].prot = 0;
			break;
		}
		case 4: { /* release */
			uint64_t base = WIN_BASE + (a & ~(size_t)15) * PG;
			int err = ntmm_free(p, base, 0, NTMM_MEM_RELEASE);
			size_t g = pg_of(base);
			if (M[g].alloc != base) {
				assert_int_equal(err, NTMM_ECONFLICT);
				break;
			}
			assert_int_equal(err, 0);
			wins[r % 8]++;
			for (size_t i = g; i < WIN_PAGES && M[i].alloc == base; i++)
				M[i] = (mpage_t){0};
			break;
		}
		case 5: { /* protect */
			unsigned old = 0;
			int err = ntmm_protect(p, WIN_BASE + a * PG, len * PG, prot, &old);
			bool ok = one_reservation(a, a + len);
			for (size_t i = a; ok && i < a + len; i++)
				ok = M[i].committed;
			if (!ok) {
				assert_int_equal(err, NTMM_ECONFLICT);
				break;
			}
			assert_int_equal(err, 0);
			wins[r % 8]++;
			assert_int_equal(old, M[a].prot);
			for (size_t i = a; i < a + len; i++)
				M[i].prot = prot;
			break;
		}
		case 6: { /* write a byte */
			uint8_t v = (uint8_t)(r >> 16) | 1;
			int err = ntmm_write(p, WIN_BASE + a * PG, &v, 1);
			if (!M[a].alloc || !M[a].committed ||
			    (M[a].prot & 0xff) == NTMM_PAGE_NOACCESS) {
				assert_int_equal(err, NTMM_EACCESS);
			} else if (M[a].prot & NTMM_PAGE_GUARD) {
				assert_int_equal(err, NTMM_EGUARD);
				M[a].prot &= ~NTMM_PAGE_GUARD;
			} else if ((M[a].prot & 0xff) == NTMM_PAGE_READONLY) {
				assert_int_equal(err, NTMM_EACCESS);
			} else {
				assert_int_equal(err, 0);
				wins[6]++;
				M[a].data = v;
			}
			break;
		}
		default: { /* read a byte, or trim */
			if ((r >> 20) % 16 == 0) {
				assert_int_equal(ntmm_ws_empty(p), 0);
				break;
			}
			uint8_t v = 0xee;
			int err = ntmm_read(p, WIN_BASE + a * PG, &v, 1);
			if (!M[a].alloc || !M[a].committed ||
			    (M[a].prot & 0xff) == NTMM_PAGE_NOACCESS) {
				assert_int_equal(err, NTMM_EACCESS);
			} else if (M[a].prot & NTMM_PAGE_GUARD) {
				assert_int_equal(err, NTMM_EGUARD);
				M[a].prot &= ~NTMM_PAGE_GUARD;
			} else {
				assert_int_equal(err, 0);
				wins[7]++;
				assert_int_equal(v, M[a].data);
			}
		}
		}
		check_query(p, a);
		if (op % 64 == 0) {
			ntmm_process_info_t pi;
			assert_int_equal(ntmm_process_info(p, &pi), 0);
			assert_int_equal(pi.commit_pages, model_commit());
			for (size_t i = 0; i < WIN_PAGES; i += 7)
				check_query(p, i);
		}
		if (op % 500 == 0)
			assert_int_equal(ntmm_audit(e), 0);
	}
	for (size_t i = 0; i < WIN_PAGES; i++)
		check_query(p, i);
	/* the walk reached every kind of success, not only the error paths */
	for (int k = 0; k < 8; k++)
		if (k != 2) /* commit is counted under 1 and 2 together */
			assert_true(wins[k] + (k == 1 ? wins[2] : 0) > ops / 400);
	assert_int_equal(ntmm_audit(e), 0);
	assert_int_equal(ntmm_process_destroy(p), 0);
	assert_int_equal(ntmm_audit(e), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(random_operations_agree_with_a_page_model, setup_32mib,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
