/*
 * `ntmm demo` — the first user-facing workload. It creates an engine with a
 * paging file in a temporary directory, several processes whose committed
 * memory totals a multiple (default 4x) of the frame pool, and one worker
 * thread per process that touches pages in phases of sequential,
 * uniform-random and Zipf-distributed access. Every write fills the whole
 * page with a pattern derived from (process, page, version); the demo keeps
 * each page's version, so every read can be checked and, at the end, every
 * page of every process is verified byte for byte.
 *
 * It reports faults by kind, hard-fault and write throughput, fault latency
 * percentiles per kind (measured in-process around each access), RSS, the
 * page lists, the paging I/O backend (ntmm_engine_io_backend) and the
 * scheduling the system threads obtained; `--json` prints the same as one
 * JSON object for scripts. It fails (exit 1) on any access error during the
 * run, any page that does not verify, or a failed audit; bad options are
 * usage errors (exit 2).
 */
#include "tools.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ntmm.h>
#include <ntmm/stats.h>

/* ------------------------------------------------------------ histogram */

/* Log-linear latency histogram: 16 sub-buckets per power of two of ns
   (≤ 6% relative error), enough for p50/p99/p999 without storing samples. */
#define HIST_SUB     16
#define HIST_BUCKETS (64 * HIST_SUB)

typedef struct hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t b[HIST_BUCKETS];
} hist_t;

static unsigned hist_index(uint64_t ns)
{
	if (ns < HIST_SUB)
		return (unsigned)ns;
	unsigned lg = 63u - (unsigned)__builtin_clzll(ns); /* ≥ 4 */
	unsigned sub = (unsigned)((ns >> (lg - 4)) & (HIST_SUB - 1));
	return (lg - 3) * HIST_SUB + sub;
}

static uint64_t hist_value(unsigned idx)
{
	if (idx < HIST_SUB)
		return idx;
	unsigned lg = idx / HIST_SUB + 3, sub = idx % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub) << (lg - 4)) + (1ull << (lg - 4)) / 2;
}

static void hist_add(hist_t *h, uint64_t ns)
{
	h->count++;
	h->sum_ns += ns;
	h->b[hist_index(ns)]++;
}

static void hist_merge(hist_t *into, const hist_t *h)
{
	into->count += h->count;
	into->sum_ns += h->sum_ns;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += h->b[i];
}

static uint64_t hist_pct(const hist_t *h, double p)
{
	if (!h->count)
		return 0;
	uint64_t want = (uint64_t)ceil(p * (double)h->count);
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= want)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ------------------------------------------------------------ workload */

enum pattern { PAT_SEQ, PAT_RANDOM, PAT_ZIPF, PAT_COUNT };
static const char *pattern_names[PAT_COUNT] = {"sequential", "random", "zipf"};

typedef struct demo_opts {
	size_t physical;      /* frame pool bytes */
	double overcommit;    /* committed / physical */
	int processes;        /* one worker thread each */
	double seconds;       /* run time */
	double phase_seconds; /* pattern changes this often */
	double write_fraction;
	double zipf_s;
	unsigned patterns; /* bit mask of enum pattern */
	const char *dir;   /* paging file directory (NULL: mkdtemp under TMPDIR) */
	bool json, quiet;
} demo_opts_t;

typedef struct worker {
	ntmm_engine_t *e;
	ntmm_process_t *p;
	const demo_opts_t *o;
	int id;
	uint64_t base;
	size_t pages;
	uint32_t *version; /* per page: 0 = never written */
	double *zipf_cdf;  /* shared, read-only */
	size_t zipf_n;
	hist_t hist[NTMM_FAULT_KINDS];
	uint64_t accesses, writes, errors, mismatches;
	_Atomic int *stop;
	_Atomic uint64_t progress;
	int first_error;              /* NTMM_E* of the first failed access */
	char first_error_detail[256]; /* its ntmm_error_detail (thread-local there) */
} worker_t;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The bytes a page holds at `version` (0: all zero, never written). */
static void fill_page(uint64_t *w, int proc, size_t page, uint32_t version)
{
	if (!version) {
		memset(w, 0, NTMM_PAGE_SIZE);
		return;
	}
	uint64_t s = ((uint64_t)proc << 48) ^ ((uint64_t)page << 16) ^ version;
	for (size_t i = 0; i < NTMM_PAGE_SIZE / 8; i++)
		w[i] = splitmix(&s);
}

static bool check_page(const uint64_t *w, int proc, size_t page, uint32_t version)
{
	uint64_t want[NTMM_PAGE_SIZE / 8];
	fill_page(want, proc, page, version);
	return memcmp(w, want, NTMM_PAGE_SIZE) == 0;
}

static double *zipf_build(size_t n, double s)
{
	double *cdf = malloc(n * sizeof(*cdf));
	if (!cdf)
		return NULL;
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		cdf[i] = (sum += 1.0 / pow((double)(i + 1), s));
	for (size_t i = 0; i < n; i++)
		cdf[i] /= sum;
	return cdf;
}

static size_t zipf_pick(const double *cdf, size_t n, double u)
{
	size_t lo = 0, hi = n - 1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* One access: translate (faulting as needed) with its latency recorded by
   fault kind, then a write of the whole page or a check of it. */
static void access_page(worker_t *w, size_t page, bool write)
{
	uint64_t va = w->base + page * NTMM_PAGE_SIZE;
	void *host;
	ntmm_access_begin(w->e);
	uint64_t t0 = now_ns();
	int err = ntmm_translate(w->p, va, write ? NTMM_ACCESS_WRITE : NTMM_ACCESS_READ, &host);
	uint64_t dt = now_ns() - t0;
	unsigned kind = ntmm_last_fault_kind();
	if (err) {
		if (!w->errors++) {
			w->first_error = err;
			snprintf(w->first_error_detail, sizeof(w->first_error_detail), "%s",
			         ntmm_error_detail());
		}
		ntmm_access_end(w->e);
		return;
	}
	if (kind < NTMM_FAULT_KINDS)
		hist_add(&w->hist[kind], dt);
	if (write) {
		fill_page(host, w->id, page, ++w->version[page]);
		w->writes++;
	} else if (!check_page(host, w->id, page, w->version[page])) {
		w->mismatches++;
	}
	ntmm_access_end(w->e);
	w->accesses++;
}

static void *worker_main(void *arg)
{
	worker_t *w = arg;
	ntmm_thread_register(w->e);
	uint64_t rng = 0x5eed0000u + (uint64_t)w->id;
	uint64_t start = now_ns();
	uint64_t phase_ns = (uint64_t)(w->o->phase_seconds * 1e9);
	size_t seq = 0;
	unsigned npat = 0, pats[PAT_COUNT];
	for (unsigned i = 0; i < PAT_COUNT; i++)
		if (w->o->patterns & (1u << i))
			pats[npat++] = i;
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		/* phases rotate through the chosen patterns, offset per process */
		uint64_t phase = (now_ns() - start) / (phase_ns ? phase_ns : 1);
		unsigned pat = pats[(phase + (uint64_t)w->id) % npat];
		for (int i = 0; i < 256; i++) {
			size_t page;
			double u = (double)(splitmix(&rng) >> 11) / 9007199254740992.0;
			if (pat == PAT_SEQ)
				page = seq++ % w->pages;
			else if (pat == PAT_RANDOM)
				page = (size_t)(u * (double)w->pages);
			else /* Zipf over the process's pages, hot set scattered */
				page =
				    (zipf_pick(w->zipf_cdf, w->zipf_n, u) * 2654435761u) % w->pages;
			bool write = (double)(splitmix(&rng) >> 11) / 9007199254740992.0 <
			             w->o->write_fraction;
			access_page(w, page, write);
		}
		atomic_store_explicit(&w->progress, w->accesses, memory_order_relaxed);
	}
	ntmm_thread_unregister(w->e);
	return NULL;
}

/* ------------------------------------------------------------ reporting */

static const char *kind_names[NTMM_FAULT_KINDS] = {"valid", "demand_zero", "soft",
                                                   "hard",  "collided",    "copy_on_write"};

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: ntmm demo [options]\n"
	        "  --physical=SIZE       frame pool (default 256M)\n"
	        "  --overcommit=X        committed memory / frame pool (default 4)\n"
	        "  --processes=N         processes, one worker thread each (default 4)\n"
	        "  --seconds=S           run time (default 20)\n"
	        "  --phase=S             pattern phase length (default 4)\n"
	        "  --writes=F            fraction of accesses that write (default 0.3)\n"
	        "  --patterns=LIST       sequential,random,zipf (default all)\n"
	        "  --zipf=S              Zipf exponent (default 0.99)\n"
	        "  --dir=PATH            directory for the paging file (default: a new temp dir)\n"
	        "  --json                one JSON object on stdout\n"
	        "  --quiet               no progress line\n");
}

/* "sequential,zipf" → a mask of enum pattern ("seq" is short for
   sequential). An unknown or empty name is a usage error: -1, with a
   message naming it and the valid ones. */
static int parse_patterns(const char *list, unsigned *mask)
{
	*mask = 0;
	char *dup = strdup(list), *save = NULL;
	if (!dup)
		return -1;
	int rc = 0;
	for (char *t = strtok_r(dup, ",", &save); t && !rc; t = strtok_r(NULL, ",", &save)) {
		unsigned i = 0;
		while (i < PAT_COUNT && strcmp(t, pattern_names[i]) &&
		       !(i == PAT_SEQ && !strcmp(t, "seq")))
			i++;
		if (i == PAT_COUNT) {
			fprintf(stderr, "ntmm demo: unknown pattern '%s' in --patterns", t);
			rc = -1;
		} else {
			*mask |= 1u << i;
		}
	}
	if (!rc && !*mask) {
		fprintf(stderr, "ntmm demo: --patterns names no pattern");
		rc = -1;
	}
	if (rc) {
		fprintf(stderr, " (valid: ");
		for (unsigned i = 0; i < PAT_COUNT; i++)
			fprintf(stderr, "%s%s", i ? ", " : "", pattern_names[i]);
		fprintf(stderr, "; seq = sequential; comma-separated)\n");
	}
	free(dup);
	return rc;
}

static int parse_opts(int argc, char **argv, demo_opts_t *o)
{
	*o = (demo_opts_t){.physical = 256u << 20,
	                   .overcommit = 4,
	                   .processes = 4,
	                   .seconds = 20,
	                   .phase_seconds = 4,
	                   .write_fraction = 0.3,
	                   .zipf_s = 0.99,
	                   .patterns = 7};
	static const struct option lo[] = {{"physical", 1, 0, 'm'},
	                                   {"overcommit", 1, 0, 'o'},
	                                   {"processes", 1, 0, 'p'},
	                                   {"seconds", 1, 0, 's'},
	                                   {"phase", 1, 0, 'f'},
	                                   {"writes", 1, 0, 'w'},
	                                   {"patterns", 1, 0, 'P'},
	                                   {"zipf", 1, 0, 'z'},
	                                   {"dir", 1, 0, 'd'},
	                                   {"json", 0, 0, 'j'},
	                                   {"quiet", 0, 0, 'q'},
	                                   {"help", 0, 0, 'h'},
	                                   {0, 0, 0, 0}};
	int c;
	/* the dispatcher hands us the words after "demo"; argv[-1] is "demo"
	   itself, which getopt expects as the program name */
	argc++, argv--;
	optind = 0; /* 0: glibc re-initialises its scan */
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (!(o->physical = ntmm__tool_size(optarg)))
				return -1;
			break;
		case 'o':
			o->overcommit = atof(optarg);
			break;
		case 'p':
			o->processes = atoi(optarg);
			break;
		case 's':
			o->seconds = atof(optarg);
			break;
		case 'f':
			o->phase_seconds = atof(optarg);
			break;
		case 'w':
			o->write_fraction = atof(optarg);
			break;
		case 'z':
			o->zipf_s = atof(optarg);
			break;
		case 'd':
			o->dir = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'P':
			if (parse_patterns(optarg, &o->patterns))
				return -1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (o->processes < 1 || o->processes > 256 || o->seconds <= 0 || o->overcommit <= 0 ||
	    !o->patterns || o->write_fraction < 0 || o->write_fraction > 1) {
		fprintf(stderr, "ntmm demo: bad option value\n");
		return -1;
	}
	return 0;
}

int ntmm__tool_demo(int argc, char **argv)
{
	demo_opts_t o;
	if (parse_opts(argc, argv, &o))
		return 2;

	char dir[4096], pf[4200];
	if (o.dir) {
		snprintf(dir, sizeof(dir), "%s", o.dir);
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/ntmm-demo-XXXXXX", tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			fprintf(stderr, "ntmm demo: mkdtemp %s: %s\n", dir, strerror(errno));
			return 1;
		}
	}
	snprintf(pf, sizeof(pf), "%s/pagefile.sys", dir);

	size_t committed = (size_t)((double)o.physical * o.overcommit);
	size_t per_proc = (committed / (size_t)o.processes + NTMM_ALLOCATION_GRANULARITY - 1) &
	                  ~(size_t)(NTMM_ALLOCATION_GRANULARITY - 1);
	ntmm_config_t cfg;
	ntmm_config_init(&cfg);
	cfg.physical_bytes = o.physical;
	cfg.pagefile_path = pf;
	cfg.pagefile_initial = committed / 2;
	cfg.pagefile_maximum = committed + (64u << 20);
	cfg.start_threads = 1;

	ntmm_engine_t *e;
	int err = ntmm_engine_create(&cfg, &e);
	if (err) {
		fprintf(stderr, "ntmm demo: engine: %s (%s)\n", ntmm_strerror(err),
		        ntmm_error_detail());
		if (!o.dir)
			rmdir(dir);
		return 1;
	}
	char io_backend[512];
	ntmm_engine_io_backend(e, io_backend, sizeof(io_backend));

	worker_t *w = calloc((size_t)o.processes, sizeof(*w));
	_Atomic int stop = 0;
	size_t pages = per_proc / NTMM_PAGE_SIZE;
	size_t zipf_n = pages < 65536 ? pages : 65536;
	double *cdf = zipf_build(zipf_n, o.zipf_s);
	int rc = 1;
	if (!w || !cdf)
		goto out;
	for (int i = 0; i < o.processes; i++) {
		w[i] = (worker_t){.e = e,
		                  .o = &o,
		                  .id = i,
		                  .pages = pages,
		                  .stop = &stop,
		                  .zipf_cdf = cdf,
		                  .zipf_n = zipf_n};
		w[i].version = calloc(pages, sizeof(uint32_t));
		if (!w[i].version)
			goto out;
		if ((err = ntmm_process_create(e, &w[i].p)) ||
		    (err =
		         ntmm_allocate(w[i].p, &w[i].base, per_proc,
		                       NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE))) {
			fprintf(stderr, "ntmm demo: process %d: %s (%s)\n", i, ntmm_strerror(err),
			        ntmm_error_detail());
			goto out;
		}
	}
	if (!o.json)
		printf("ntmm demo: %d processes x %zu MiB committed = %.1fx a %zu MiB frame "
		       "pool; paging file %s\n",
		       o.processes, per_proc >> 20, (double)per_proc * o.processes / o.physical,
		       o.physical >> 20, pf);
	if (!o.json)
		printf("paging I/O: %s\n", io_backend);

	ntmm_stats_t s0, s1;
	ntmm_stats_get(e, &s0);
	uint64_t t0 = now_ns();
	pthread_t *tid = calloc((size_t)o.processes, sizeof(*tid));
	for (int i = 0; i < o.processes; i++)
		pthread_create(&tid[i], NULL, worker_main, &w[i]);
	uint64_t end = t0 + (uint64_t)(o.seconds * 1e9);
	while (now_ns() < end) {
		usleep(250000);
		if (o.quiet || o.json)
			continue;
		ntmm_stats_t s;
		ntmm_stats_get(e, &s);
		uint64_t acc = 0;
		for (int i = 0; i < o.processes; i++)
			acc += atomic_load_explicit(&w[i].progress, memory_order_relaxed);
		fprintf(stderr,
		        "\r  %5.1fs  accesses %-10llu faults %-9llu hard %-8llu written %-8llu "
		        "free+zeroed %-7llu standby %-7llu modified %-7llu",
		        (now_ns() - t0) / 1e9, (unsigned long long)acc,
		        (unsigned long long)(s.page_faults - s0.page_faults),
		        (unsigned long long)(s.hard_faults - s0.hard_faults),
		        (unsigned long long)(s.pages_written - s0.pages_written),
		        (unsigned long long)(s.free_pages + s.zeroed_pages),
		        (unsigned long long)s.standby_pages, (unsigned long long)s.modified_pages);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < o.processes; i++)
		pthread_join(tid[i], NULL);
	free(tid);
	double secs = (now_ns() - t0) / 1e9;
	if (!o.quiet && !o.json)
		fprintf(stderr, "\n");
	ntmm_stats_get(e, &s1);
	long rss = rss_kib();

	/* verify every page of every process: the whole point */
	uint64_t verified = 0, bad = 0, verify_errors = 0;
	ntmm_thread_register(e);
	for (int i = 0; i < o.processes; i++) {
		for (size_t pg = 0; pg < pages; pg++) {
			void *host;
			ntmm_access_begin(e);
			err = ntmm_translate(w[i].p, w[i].base + pg * NTMM_PAGE_SIZE,
			                     NTMM_ACCESS_READ, &host);
			if (err && !verify_errors++ && !o.json)
				fprintf(stderr, "verify: process %d page %zu: %s (%s)\n", i, pg,
				        ntmm_strerror(err), ntmm_error_detail());
			if (err)
				;
			else if (!check_page(host, i, pg, w[i].version[pg]))
				bad++;
			else
				verified++;
			ntmm_access_end(e);
		}
	}
	ntmm_thread_unregister(e);
	int audit = ntmm_audit(e);

	hist_t all[NTMM_FAULT_KINDS];
	memset(all, 0, sizeof(all));
	uint64_t accesses = 0, writes = 0, errors = 0, mismatches = 0;
	const worker_t *first_err = NULL; /* the lowest-numbered worker with an error */
	for (int i = 0; i < o.processes; i++) {
		if (w[i].errors && !first_err)
			first_err = &w[i];
		for (unsigned k = 0; k < NTMM_FAULT_KINDS; k++)
			hist_merge(&all[k], &w[i].hist[k]);
		accesses += w[i].accesses;
		writes += w[i].writes;
		errors += w[i].errors;
		mismatches += w[i].mismatches;
	}
	hist_t sz; /* soft + demand-zero together, as the p99/p50 target reads */
	memset(&sz, 0, sizeof(sz));
	hist_merge(&sz, &all[NTMM_FAULT_SOFT]);
	hist_merge(&sz, &all[NTMM_FAULT_DEMAND_ZERO]);
	uint64_t hard = s1.hard_faults - s0.hard_faults;
	uint64_t written = s1.pages_written - s0.pages_written;
	/* any failed access fails the demo: an ENOMEM or EIO under load is a
	   bug the run must not hide, even if every page verifies afterwards */
	bool ok = !errors && !bad && !verify_errors && !mismatches && !audit;
	const char *failures[5];
	unsigned nfail = 0;
	if (errors)
		failures[nfail++] = "access_errors";
	if (bad)
		failures[nfail++] = "bad_pages";
	if (verify_errors)
		failures[nfail++] = "verify_errors";
	if (mismatches)
		failures[nfail++] = "read_mismatches";
	if (audit)
		failures[nfail++] = "audit";
	/* the backend again: a ring the kernel refused is retired during the run */
	char io_backend_end[512];
	ntmm_engine_io_backend(e, io_backend_end, sizeof(io_backend_end));
	bool io_changed = strcmp(io_backend, io_backend_end) != 0;

	if (o.json) {
		printf("{\"seconds\":%.3f,\"processes\":%d,\"physical_bytes\":%zu,"
		       "\"committed_bytes\":%zu,\"accesses\":%llu,\"writes\":%llu,"
		       "\"access_errors\":%llu,",
		       secs, o.processes, o.physical, per_proc * (size_t)o.processes,
		       (unsigned long long)accesses, (unsigned long long)writes,
		       (unsigned long long)errors);
		if (first_err) {
			printf("\"first_access_error\":{\"process\":%d,\"error\":", first_err->id);
			json_str(ntmm_strerror(first_err->first_error));
			printf(",\"detail\":");
			json_str(first_err->first_error_detail);
			printf("},");
		}
		printf("\"io_backend\":");
		json_str(io_backend_end);
		printf(",\"faults\":{");
		for (unsigned k = 0; k < NTMM_FAULT_KINDS; k++)
			printf("%s\"%s\":{\"count\":%llu,\"p50_ns\":%llu,\"p99_ns\":%llu,"
			       "\"p999_ns\":%llu}",
			       k ? "," : "", kind_names[k], (unsigned long long)all[k].count,
			       (unsigned long long)hist_pct(&all[k], .5),
			       (unsigned long long)hist_pct(&all[k], .99),
			       (unsigned long long)hist_pct(&all[k], .999));
		printf("},\"soft_plus_demand_zero\":{\"p50_ns\":%llu,\"p99_ns\":%llu},"
		       "\"hard_faults_per_s\":%.1f,\"pages_written_per_s\":%.1f,\"rss_kib\":%ld,"
		       "\"lists\":{\"zeroed\":%llu,\"free\":%llu,\"standby\":%llu,"
		       "\"modified\":%llu,\"active\":%llu},",
		       (unsigned long long)hist_pct(&sz, .5),
		       (unsigned long long)hist_pct(&sz, .99), hard / secs, written / secs, rss,
		       (unsigned long long)s1.zeroed_pages, (unsigned long long)s1.free_pages,
		       (unsigned long long)s1.standby_pages, (unsigned long long)s1.modified_pages,
		       (unsigned long long)s1.active_pages);
		printf("\"threads\":");
		ntmm__tool_print_threads(e, stdout, true);
		printf(",\"verified_pages\":%llu,\"bad_pages\":%llu,\"verify_errors\":%llu,"
		       "\"read_mismatches\":%llu,\"audit\":%d,\"failures\":[",
		       (unsigned long long)verified, (unsigned long long)bad,
		       (unsigned long long)verify_errors, (unsigned long long)mismatches, audit);
		for (unsigned i = 0; i < nfail; i++)
			printf("%s\"%s\"", i ? "," : "", failures[i]);
		printf("],\"ok\":%s}\n", ok ? "true" : "false");
	} else {
		printf("\n%.1f s, %llu accesses (%.0f/s), %llu page writes, %llu access errors",
		       secs, (unsigned long long)accesses, accesses / secs,
		       (unsigned long long)writes, (unsigned long long)errors);
		if (first_err)
			printf(" (first, process %d: %s: %s)", first_err->id,
			       ntmm_strerror(first_err->first_error),
			       first_err->first_error_detail);
		printf("\n\n%-14s %12s %10s %10s %10s\n", "fault kind", "count", "p50", "p99",
		       "p999");
		for (unsigned k = 0; k < NTMM_FAULT_KINDS; k++)
			printf("%-14s %12llu %8lluns %8lluns %8lluns\n", kind_names[k],
			       (unsigned long long)all[k].count,
			       (unsigned long long)hist_pct(&all[k], .5),
			       (unsigned long long)hist_pct(&all[k], .99),
			       (unsigned long long)hist_pct(&all[k], .999));
		printf("soft+demand-zero p50 %lluns, p99 %lluns: p99/p50 = %.2f (target <= 5)\n",
		       (unsigned long long)hist_pct(&sz, .5),
		       (unsigned long long)hist_pct(&sz, .99),
		       hist_pct(&sz, .5) ? (double)hist_pct(&sz, .99) / hist_pct(&sz, .5) : 0.0);
		printf("\nhard faults %.0f/s, pages written %.0f/s (%.1f MiB/s), RSS %ld MiB\n",
		       hard / secs, written / secs, written * 4096.0 / secs / (1 << 20),
		       rss / 1024);
		if (io_changed)
			printf("paging I/O now: %s\n", io_backend_end);
		printf("lists: zeroed %llu  free %llu  standby %llu  modified %llu  active %llu\n",
		       (unsigned long long)s1.zeroed_pages, (unsigned long long)s1.free_pages,
		       (unsigned long long)s1.standby_pages, (unsigned long long)s1.modified_pages,
		       (unsigned long long)s1.active_pages);
		printf("\nsystem threads:\n");
		ntmm__tool_print_threads(e, stdout, false);
		printf("\nverify: %llu pages checked, %llu wrong, %llu unreadable, %llu read "
		       "mismatches and %llu access errors during the run; audit %s\n",
		       (unsigned long long)verified, (unsigned long long)bad,
		       (unsigned long long)verify_errors, (unsigned long long)mismatches,
		       (unsigned long long)errors, audit ? "FAILED" : "ok");
		if (ok) {
			printf("OK: nothing lost, no access errors\n");
		} else {
			printf("FAILED:");
			for (unsigned i = 0; i < nfail; i++)
				printf("%s %s", i ? "," : "", failures[i]);
			printf("\n");
		}
	}
	rc = ok ? 0 : 1;
out:
	for (int i = 0; w && i < o.processes; i++) {
		if (w[i].p)
			ntmm_process_destroy(w[i].p);
		free(w[i].version);
	}
	free(w);
	free(cdf);
	ntmm_engine_destroy(e);
	unlink(pf);
	if (!o.dir)
		rmdir(dir);
	return rc;
}
