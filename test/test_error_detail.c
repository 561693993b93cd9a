/*
 * Every error a public function returns comes with a detail
 * (ntmm_error_detail) written by that call: before each failing call the
 * detail is set to a sentinel, and after it the detail must be non-empty
 * and no longer the sentinel. One case per kind of error path: bad handles
 * and arguments, ranges that conflict, access violations, guard pages,
 * the commit limit.
 */
#include "virt_testutil.h"

#include "engine.h"

#define SENTINEL "sentinel: detail of an earlier call"

typedef struct ctx {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	uint64_t rw, ro, noacc, guard, reserved; /* one page each */
} ctx_t;

typedef int (*case_fn)(ctx_t *c);

static int stats_null(ctx_t *c)
{
	return ntmm_stats_get(c->e, NULL);
}
static int stats_null_engine(ctx_t *c)
{
	ntmm_stats_t st;
	return ntmm_stats_get(NULL, &st);
}
static int info_null(ctx_t *c)
{
	return ntmm_process_info(c->p, NULL);
}
static int info_null_process(ctx_t *c)
{
	ntmm_process_info_t pi;
	return ntmm_process_info(NULL, &pi);
}
static int process_create_null(ctx_t *c)
{
	return ntmm_process_create(c->e, NULL);
}
static int allocate_zero_size(ctx_t *c)
{
	uint64_t b = 0;
	return ntmm_allocate(c->p, &b, 0, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE);
}
static int allocate_bad_prot(ctx_t *c)
{
	uint64_t b = 0;
	return ntmm_allocate(c->p, &b, PG, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, 0x777);
}
static int allocate_bad_type(ctx_t *c)
{
	uint64_t b = 0;
	return ntmm_allocate(c->p, &b, PG, NTMM_MEM_RELEASE, NTMM_PAGE_READWRITE);
}
static int allocate_overlap(ctx_t *c)
{
	uint64_t b = c->rw;
	return ntmm_allocate(c->p, &b, PG, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE);
}
static int commit_outside_reservation(ctx_t *c)
{
	uint64_t b = 0x7ff000000000ull;
	return ntmm_allocate(c->p, &b, PG, NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE);
}
static int commit_past_limit(ctx_t *c)
{
	uint64_t b = 0;
	return ntmm_allocate(c->p, &b, (size_t)1 << 40, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT,
	                     NTMM_PAGE_READWRITE);
}
static int free_bad_type(ctx_t *c)
{
	return ntmm_free(c->p, c->rw, PG, 0x1234);
}
static int free_not_allocation_base(ctx_t *c)
{
	return ntmm_free(c->p, c->rw + PG, 0, NTMM_MEM_RELEASE);
}
static int free_unreserved(ctx_t *c)
{
	return ntmm_free(c->p, 0x7ff000000000ull, 0, NTMM_MEM_RELEASE);
}
static int protect_reserved(ctx_t *c)
{
	unsigned old;
	return ntmm_protect(c->p, c->reserved, PG, NTMM_PAGE_READONLY, &old);
}
static int protect_bad_prot(ctx_t *c)
{
	unsigned old;
	return ntmm_protect(c->p, c->rw, PG, 0x777, &old);
}
static int query_null(ctx_t *c)
{
	return ntmm_query(c->p, c->rw, NULL);
}
static int query_kernel_address(ctx_t *c)
{
	ntmm_region_info_t ri;
	return ntmm_query(c->p, ~0ull, &ri);
}
static int translate_unreserved(ctx_t *c)
{
	void *h;
	return ntmm_translate(c->p, 0x7ff000000000ull, NTMM_ACCESS_READ, &h);
}
static int translate_reserved(ctx_t *c)
{
	void *h;
	return ntmm_translate(c->p, c->reserved, NTMM_ACCESS_READ, &h);
}
static int write_readonly(ctx_t *c)
{
	char b = 1;
	return ntmm_write(c->p, c->ro, &b, 1);
}
static int read_noaccess(ctx_t *c)
{
	char b;
	return ntmm_read(c->p, c->noacc, &b, 1);
}
static int read_guard(ctx_t *c)
{
	char b;
	return ntmm_read(c->p, c->guard, &b, 1);
}
static int translate_bad_access(ctx_t *c)
{
	void *h;
	return ntmm_translate(c->p, c->rw, 7, &h);
}
static int pin_unreserved(ctx_t *c)
{
	ntmm_pin_t *pin;
	return ntmm_pin(c->p, 0x7ff000000000ull, PG, NTMM_ACCESS_READ, &pin);
}
static int pin_zero_length(ctx_t *c)
{
	ntmm_pin_t *pin;
	return ntmm_pin(c->p, c->rw, 0, NTMM_ACCESS_READ, &pin);
}
static int ws_limits_inverted(ctx_t *c)
{
	return ntmm_ws_set_limits(c->p, 100, 10);
}
static int page_priority_too_high(ctx_t *c)
{
	return ntmm_process_set_page_priority(c->p, 8);
}
static int pagefile_add_null_path(ctx_t *c)
{
	return ntmm_pagefile_add(c->e, NULL, 1 << 20, 1 << 20);
}
static int pagefile_remove_unknown(ctx_t *c)
{
	return ntmm_pagefile_remove(c->e, "/nonexistent/ntmm-no-such-pagefile");
}
static int io_backend_zero_length(ctx_t *c)
{
	char buf[4];
	return ntmm_engine_io_backend(c->e, buf, 0);
}
static int engine_create_null(ctx_t *c)
{
	return ntmm_engine_create(NULL, NULL);
}
static int engine_create_zero_bytes(ctx_t *c)
{
	ntmm_config_t cfg;
	ntmm_config_init(&cfg);
	cfg.physical_bytes = 0;
	ntmm_engine_t *e2 = NULL;
	return ntmm_engine_create(&cfg, &e2);
}

static int register_null(ctx_t *c)
{
	return ntmm_thread_register(NULL);
}
static int process_destroy_null(ctx_t *c)
{
	return ntmm_process_destroy(NULL);
}
static int ws_empty_null(ctx_t *c)
{
	return ntmm_ws_empty(NULL);
}
static int read_null_buffer(ctx_t *c)
{
	return ntmm_read(c->p, c->rw, NULL, 16);
}
static int write_into_reserved(ctx_t *c)
{
	char b[2 * PG] = {0};
	/* starts in the last committed page, runs into the next reservation's gap */
	return ntmm_write(c->p, c->rw + 3 * PG, b, sizeof(b));
}
static int decommit_unreserved(ctx_t *c)
{
	return ntmm_free(c->p, 0x7ff000000000ull, PG, NTMM_MEM_DECOMMIT);
}
static int audit_null(ctx_t *c)
{
	return ntmm_audit(NULL);
}

#define CASE(fn)        \
	{               \
#fn, fn \
	}
static const struct {
	const char *name;
	case_fn fn;
} cases[] = {
    CASE(stats_null),
    CASE(stats_null_engine),
    CASE(info_null),
    CASE(info_null_process),
    CASE(process_create_null),
    CASE(allocate_zero_size),
    CASE(allocate_bad_prot),
    CASE(allocate_bad_type),
    CASE(allocate_overlap),
    CASE(commit_outside_reservation),
    CASE(commit_past_limit),
    CASE(free_bad_type),
    CASE(free_not_allocation_base),
    CASE(free_unreserved),
    CASE(protect_reserved),
    CASE(protect_bad_prot),
    CASE(query_null),
    CASE(query_kernel_address),
    CASE(translate_unreserved),
    CASE(translate_reserved),
    CASE(write_readonly),
    CASE(read_noaccess),
    CASE(read_guard),
    CASE(translate_bad_access),
    CASE(pin_unreserved),
    CASE(pin_zero_length),
    CASE(ws_limits_inverted),
    CASE(page_priority_too_high),
    CASE(pagefile_add_null_path),
    CASE(pagefile_remove_unknown),
    CASE(io_backend_zero_length),
    CASE(engine_create_null),
    CASE(engine_create_zero_bytes),
    CASE(register_null),
    CASE(process_destroy_null),
    CASE(ws_empty_null),
    CASE(read_null_buffer),
    CASE(write_into_reserved),
    CASE(decommit_unreserved),
    CASE(audit_null),
};

static uint64_t one_page(ctx_t *c, unsigned type, unsigned prot)
{
	uint64_t b = 0;
	assert_int_equal(ntmm_allocate(c->p, &b, 4 * PG, type, prot), 0);
	return b;
}

static int setup(void **state)
{
	static ctx_t c;
	c.e = virt_engine(16 * MiB, 1);
	c.p = virt_process(c.e);
	c.rw = one_page(&c, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE);
	c.ro = one_page(&c, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READONLY);
	c.noacc = one_page(&c, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_NOACCESS);
	c.guard =
	    one_page(&c, NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE | NTMM_PAGE_GUARD);
	c.reserved = one_page(&c, NTMM_MEM_RESERVE, NTMM_PAGE_READWRITE);
	*state = &c;
	return 0;
}

static int teardown(void **state)
{
	ctx_t *c = *state;
	if (c->p)
		ntmm_process_destroy(c->p);
	if (c->e)
		virt_engine_done(c->e);
	return 0;
}

static void every_error_sets_its_own_detail(void **state)
{
	ctx_t *c = *state;
	unsigned missing = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ntmm__error(0, "%s", SENTINEL);
		int rc = cases[i].fn(c);
		const char *d = ntmm_error_detail();
		if (rc >= 0) {
			fprintf(stderr, "%s: expected an error, got %d\n", cases[i].name, rc);
			missing++;
		} else if (!*d || !strcmp(d, SENTINEL)) {
			fprintf(stderr, "%s: %s with no detail of its own\n", cases[i].name,
			        ntmm_strerror(rc));
			missing++;
		}
	}
	assert_int_equal(missing, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(every_error_sets_its_own_detail, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
