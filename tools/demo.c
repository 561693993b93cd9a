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
 *
 * The engine starts from ntmm_config_init (defaults, then NTMM_*), the
 * options override it, and the demo sets the paging file's path and sizes
 * from --dir and the overcommit. SIGINT and SIGTERM are blocked in every
 * thread and taken by the main thread at its checks (each progress tick,
 * every 256 pages of the verification): the workers stop, the engine is
 * destroyed, the paging file and the temporary directory are removed, and
 * the demo then dies of the same signal, so its parent sees it.
 *
 * The steps, each a function below: demo_parse (options), demo_setup
 * (directory, engine, processes), demo_run_workers (the timed run and its
 * progress line), demo_verify, demo_summarise, report_json / report_text,
 * demo_teardown.
 */
#include "tools.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
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
	size_t mapped;     /* bytes of the shared mapped file (0: none) */
	bool mapped_set;   /* --mapped given (else a share of the pool) */
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
	/* the mapped file, shared by every process: this worker's view, and
	   the file pages it owns (k × processes + id), each with its version */
	uint64_t mbase;
	size_t mpages;
	uint32_t *mversion;
	double *zipf_cdf; /* shared, read-only */
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

/* One access to the page at va, which holds pattern page `page` at
   *version: translate (faulting as needed) with its latency recorded by
   fault kind, then a write of the whole page or a check of it. */
static void access_at(worker_t *w, uint64_t va, size_t page, uint32_t *version, bool write)
{
	void *host;
	ntmm_access_begin(w->e);
	uint64_t t0 = now_ns();
	int err = ntmm_translate(w->p, va, write ? NTMM_ACCESS_WRITE : NTMM_ACCESS_READ, &host);
	uint64_t dt = now_ns() - t0;
	unsigned kind = ntmm_last_fault_kind();
	if (err) {
		if (!w->errors++) {
			w->first_error = err;
			snprintf(w->first_error_detail, sizeof(w->first_error_detail), "%#llx: %s",
			         (unsigned long long)va, ntmm_error_detail());
		}
		ntmm_access_end(w->e);
		return;
	}
	if (kind < NTMM_FAULT_KINDS)
		hist_add(&w->hist[kind], dt);
	if (write) {
		fill_page(host, w->id, page, ++*version);
		w->writes++;
	} else if (!check_page(host, w->id, page, *version)) {
		w->mismatches++;
	}
	ntmm_access_end(w->e);
	w->accesses++;
}

/* A page of the process's private region. */
static void access_page(worker_t *w, size_t page, bool write)
{
	access_at(w, w->base + page * NTMM_PAGE_SIZE, page, &w->version[page], write);
}

/* The mapped file's k-th page of this worker (a shared page of the
   section, in every process's view). */
static void access_mapped(worker_t *w, size_t k, bool write)
{
	size_t fpage = k * (size_t)w->o->processes + (size_t)w->id;
	access_at(w, w->mbase + fpage * NTMM_PAGE_SIZE, fpage, &w->mversion[k], write);
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
			/* one access in four goes to the shared mapped file */
			if (w->mpages && (splitmix(&rng) & 3) == 0)
				access_mapped(w, page % w->mpages, write);
			else
				access_page(w, page, write);
		}
		atomic_store_explicit(&w->progress, w->accesses, memory_order_relaxed);
	}
	ntmm_thread_unregister(w->e);
	return NULL;
}

static const char *kind_names[NTMM_FAULT_KINDS] = {"valid", "demand_zero", "soft",
                                                   "hard",  "collided",    "copy_on_write"};

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

/* ------------------------------------------------------------ options */

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: ntmm demo [options]\n"
	    "  --physical=SIZE       frame pool (default 256M, or NTMM_PHYSICAL_BYTES when set)\n"
	    "  --overcommit=X        committed memory / frame pool, in (0, 1024] (default 4)\n"
	    "  --processes=N         processes, one worker thread each, 1..256 (default 4)\n"
	    "  --seconds=S           run time, in (0, 1e6] (default 20)\n"
	    "  --phase=S             pattern phase length, in [0, 1e6] (default 4)\n"
	    "  --writes=F            fraction of accesses that write, in [0, 1] (default 0.3)\n"
	    "  --patterns=LIST       sequential,random,zipf (default all)\n"
	    "  --zipf=S              Zipf exponent, in [0, 10] (default 0.99)\n"
	    "  --dir=PATH            directory for the paging file (default: a new temp dir\n"
	    "                        under TMPDIR, removed at the end)\n"
	    "  --mapped=SIZE         a file of SIZE mapped shared by every process, a quarter\n"
	    "                        of the accesses (default: 1/8 of the pool; 0: none)\n"
	    "  --json                one JSON object on stdout (errors too)\n"
	    "  --quiet               no progress line\n"
	    "Other engine settings come from the NTMM_* environment variables.\n"
	    "SIGINT or SIGTERM stops the run: the engine is destroyed and the paging file\n"
	    "removed, then the demo ends by that signal.\n");
}

static const struct option demo_longs[] = {{"physical", required_argument, 0, 'm'},
                                           {"overcommit", required_argument, 0, 'o'},
                                           {"processes", required_argument, 0, 'p'},
                                           {"seconds", required_argument, 0, 's'},
                                           {"phase", required_argument, 0, 'f'},
                                           {"writes", required_argument, 0, 'w'},
                                           {"patterns", required_argument, 0, 'P'},
                                           {"zipf", required_argument, 0, 'z'},
                                           {"dir", required_argument, 0, 'd'},
                                           {"mapped", required_argument, 0, 'M'},
                                           {"json", no_argument, 0, 'j'},
                                           {"quiet", no_argument, 0, 'q'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};

/* "sequential,zipf" → a mask of enum pattern ("seq" is short for
   sequential). An unknown or empty name is a usage error naming it and the
   valid ones. */
static int parse_patterns(const ntmm__tool_t *t, const char *list, unsigned *mask)
{
	static const char valid[] =
	    "(valid: sequential, random, zipf; seq = sequential; comma-separated)";
	char *dup = strdup(list), *save = NULL;
	if (!dup)
		return ntmm__tool_fail(t, 1, "system", "out of memory");
	int rc = 0;
	*mask = 0;
	for (char *n = strtok_r(dup, ",", &save); n && !rc; n = strtok_r(NULL, ",", &save)) {
		unsigned i = 0;
		while (i < PAT_COUNT && strcmp(n, pattern_names[i]) &&
		       !(i == PAT_SEQ && !strcmp(n, "seq")))
			i++;
		if (i == PAT_COUNT)
			rc = ntmm__tool_usage_error(t, "--patterns=%s: unknown pattern '%s' %s",
			                            list, n, valid);
		else
			*mask |= 1u << i;
	}
	if (!rc && !*mask)
		rc = ntmm__tool_usage_error(t, "--patterns=%s: names no pattern %s", list, valid);
	free(dup);
	return rc;
}

/* A value that must be more than 0 (the parsers' ranges are closed). */
static int positive(const ntmm__tool_t *t, const char *opt, const char *v, double max, double *out)
{
	int rc = ntmm__tool_parse_double(t, opt, v, 0, max, out);
	if (!rc && *out <= 0)
		rc = ntmm__tool_usage_error(t, "--%s=%s: must be more than 0", opt, v);
	return rc;
}

/* ------------------------------------------------------------ the run */

typedef struct demo {
	ntmm__tool_t tool;
	demo_opts_t o;
	ntmm_config_t cfg;        /* ntmm_config_init, then the options */
	sigset_t stop_sigs;       /* SIGINT, SIGTERM (those not ignored at start) */
	int stopped_by;           /* the stop signal taken, 0: none */
	char dir[4096];           /* the paging file's directory */
	bool made_dir;            /* dir came from mkdtemp: removed at the end */
	char pf[4200];            /* the paging file */
	char mf[4200];            /* the mapped file ("" if none) */
	int mfd;                  /* its descriptor, -1 if none */
	ntmm_section_t *sec;      /* its section */
	uint64_t mverified, mbad; /* mapped pages checked in the file after the flush */
	size_t per_proc;          /* bytes committed per process */
	size_t pages;             /* pages per process */
	ntmm_engine_t *e;         /* NULL until created */
	worker_t *w;              /* o.processes of them */
	double *zipf_cdf;         /* shared by the workers */
	size_t zipf_n;            /* its entries */
	_Atomic int stop;         /* workers stop at their next check */
	char io_backend[512];     /* paging I/O at the start */
	ntmm_stats_t s0, s1;      /* before and after the timed run */
	double secs;              /* the run's length */
	long rss;                 /* KiB, after the run */
	uint64_t verified, bad, verify_errors;
	int audit; /* ntmm_audit after the verification */
} demo_t;

/* What the run amounts to: the workers' figures merged, and the verdict. */
typedef struct summary {
	hist_t all[NTMM_FAULT_KINDS];
	hist_t sz; /* soft + demand-zero together: the p99/p50 target reads it */
	uint64_t accesses, writes, errors, mismatches;
	const worker_t *first_err; /* the lowest-numbered worker with an error */
	uint64_t hard, written;    /* during the run */
	uint64_t mapped_written;   /* mapped-file pages written to the file */
	bool ok;
	const char *failures[8];
	unsigned nfail;
	char io_backend_end[512]; /* a ring the kernel refused is retired mid-run */
	bool io_changed;
} summary_t;

static int apply_option(void *ctx, int opt, const char *v)
{
	demo_t *d = ctx;
	const ntmm__tool_t *t = &d->tool;
	demo_opts_t *o = &d->o;
	switch (opt) {
	case 'm':
		return ntmm__tool_parse_size(t, "physical", v, &o->physical);
	case 'o':
		return positive(t, "overcommit", v, 1024, &o->overcommit);
	case 'p':
		return ntmm__tool_parse_int(t, "processes", v, 1, 256, &o->processes);
	case 's':
		return positive(t, "seconds", v, 1e6, &o->seconds);
	case 'f':
		return ntmm__tool_parse_double(t, "phase", v, 0, 1e6, &o->phase_seconds);
	case 'w':
		return ntmm__tool_parse_double(t, "writes", v, 0, 1, &o->write_fraction);
	case 'z':
		return ntmm__tool_parse_double(t, "zipf", v, 0, 10, &o->zipf_s);
	case 'P':
		return parse_patterns(t, v, &o->patterns);
	case 'd':
		o->dir = v;
		return 0;
	case 'M':
		o->mapped_set = true;
		if (!strcmp(v, "0")) { /* no mapped file */
			o->mapped = 0;
			return 0;
		}
		return ntmm__tool_parse_size(t, "mapped", v, &o->mapped);
	case 'q':
		o->quiet = true;
		return 0;
	default: /* 'j': ntmm__tool_parse has set tool.json */
		return 0;
	}
}

/* Options over the engine's configuration: 0, or the exit status (-1:
   --help, exit 0). */
static int demo_parse(demo_t *d, int argc, char **argv)
{
	d->tool = (ntmm__tool_t){.cmd = "demo", .usage = usage, .longs = demo_longs};
	ntmm_config_init(&d->cfg); /* defaults, then the NTMM_* environment */
	d->o = (demo_opts_t){.physical = d->cfg.physical_bytes,
	                     .overcommit = 4,
	                     .processes = 4,
	                     .seconds = 20,
	                     .phase_seconds = 4,
	                     .write_fraction = 0.3,
	                     .zipf_s = 0.99,
	                     .patterns = 7};
	int rc = ntmm__tool_parse(&d->tool, argc, argv, apply_option, d);
	d->o.json = d->tool.json;
	return rc;
}

/* Blocks the stop signals in this thread and so in every thread created
   after (the engine's and the workers'); a signal ignored at start (nohup,
   a background job) stays ignored. */
static void stop_signals_block(demo_t *d)
{
	static const int sigs[] = {SIGINT, SIGTERM};
	sigemptyset(&d->stop_sigs);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		struct sigaction sa;
		if (!sigaction(sigs[i], NULL, &sa) && sa.sa_handler != SIG_IGN)
			sigaddset(&d->stop_sigs, sigs[i]);
	}
	pthread_sigmask(SIG_BLOCK, &d->stop_sigs, NULL);
}

/* Waits up to ns for a stop signal and records it; true once one came. */
static bool stop_signal_taken(demo_t *d, uint64_t ns)
{
	if (d->stopped_by)
		return true;
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
	                      .tv_nsec = (long)(ns % 1000000000u)};
	int sig;
	do
		sig = sigtimedwait(&d->stop_sigs, NULL, &ts);
	while (sig < 0 && errno == EINTR);
	if (sig > 0)
		d->stopped_by = sig;
	return d->stopped_by != 0;
}

/* The mapped file (a zero-filled file of o.mapped bytes beside the paging
   file), its section and one shared view of it in every process. */
static int demo_setup_mapped(demo_t *d)
{
	demo_opts_t *o = &d->o;
	if (!o->mapped_set)
		o->mapped = o->physical / 8;
	o->mapped &= ~(size_t)(NTMM_ALLOCATION_GRANULARITY - 1);
	size_t fpages = o->mapped / NTMM_PAGE_SIZE;
	if (fpages < (size_t)o->processes)
		return 0; /* too small to share out: none */
	snprintf(d->mf, sizeof(d->mf), "%s/mapped.dat", d->dir);
	d->mfd = open(d->mf, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (d->mfd < 0 || ftruncate(d->mfd, (off_t)o->mapped)) {
		int en = errno;
		return ntmm__tool_fail(&d->tool, 1, "system", "mapped file %s: %s", d->mf,
		                       strerror(en));
	}
	int err = ntmm_section_create(d->e, d->mfd, 0, NTMM_PAGE_READWRITE, 0, &d->sec);
	if (err)
		return ntmm__tool_engine_error(&d->tool, "mapped file section", err);
	for (int i = 0; i < o->processes; i++) {
		worker_t *w = &d->w[i];
		w->mpages = (fpages - (size_t)i + (size_t)o->processes - 1) / (size_t)o->processes;
		w->mversion = calloc(w->mpages ? w->mpages : 1, sizeof(uint32_t));
		if (!w->mversion)
			return ntmm__tool_fail(&d->tool, 1, "system", "out of memory");
		if ((err = ntmm_map_view(d->sec, w->p, &w->mbase, 0, 0, NTMM_PAGE_READWRITE))) {
			char what[48];
			snprintf(what, sizeof(what), "view of the mapped file in process %d", i);
			return ntmm__tool_engine_error(&d->tool, what, err);
		}
	}
	return 0;
}

/* The directory (--dir, or a new one under TMPDIR), the engine and the
   processes with their committed memory. 0, or the exit status. */
static int demo_setup(demo_t *d)
{
	const demo_opts_t *o = &d->o;
	if (o->dir) {
		snprintf(d->dir, sizeof(d->dir), "%s", o->dir);
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(d->dir, sizeof(d->dir), "%s/ntmm-demo-XXXXXX", tmp ? tmp : "/tmp");
		if (!mkdtemp(d->dir))
			return ntmm__tool_fail(&d->tool, 1, "system", "mkdtemp %s: %s", d->dir,
			                       strerror(errno));
		d->made_dir = true;
	}
	snprintf(d->pf, sizeof(d->pf), "%s/pagefile.sys", d->dir);

	size_t committed = (size_t)((double)o->physical * o->overcommit);
	d->per_proc = (committed / (size_t)o->processes + NTMM_ALLOCATION_GRANULARITY - 1) &
	              ~(size_t)(NTMM_ALLOCATION_GRANULARITY - 1);
	d->pages = d->per_proc / NTMM_PAGE_SIZE;
	d->cfg.physical_bytes = o->physical;
	d->cfg.pagefile_path = d->pf;
	d->cfg.pagefile_initial = committed / 2;
	d->cfg.pagefile_maximum = committed + (64u << 20);
	int err = ntmm_engine_create(&d->cfg, &d->e);
	if (err) {
		d->e = NULL;
		return ntmm__tool_engine_error(&d->tool, "engine", err);
	}
	ntmm_engine_io_backend(d->e, d->io_backend, sizeof(d->io_backend));

	d->w = calloc((size_t)o->processes, sizeof(*d->w));
	d->zipf_n = d->pages < 65536 ? d->pages : 65536;
	d->zipf_cdf = zipf_build(d->zipf_n, o->zipf_s);
	if (!d->w || !d->zipf_cdf)
		return ntmm__tool_fail(&d->tool, 1, "system", "out of memory");
	for (int i = 0; i < o->processes; i++) {
		worker_t *w = &d->w[i];
		*w = (worker_t){.e = d->e,
		                .o = o,
		                .id = i,
		                .pages = d->pages,
		                .stop = &d->stop,
		                .zipf_cdf = d->zipf_cdf,
		                .zipf_n = d->zipf_n};
		w->version = calloc(d->pages, sizeof(uint32_t));
		if (!w->version)
			return ntmm__tool_fail(&d->tool, 1, "system", "out of memory");
		if ((err = ntmm_process_create(d->e, &w->p)) ||
		    (err =
		         ntmm_allocate(w->p, &w->base, d->per_proc,
		                       NTMM_MEM_RESERVE | NTMM_MEM_COMMIT, NTMM_PAGE_READWRITE))) {
			char what[32];
			snprintf(what, sizeof(what), "process %d", i);
			return ntmm__tool_engine_error(&d->tool, what, err);
		}
	}
	return demo_setup_mapped(d);
}

/* The progress line: accesses so far and the page lists. */
static void print_progress(demo_t *d, uint64_t t0)
{
	ntmm_stats_t s;
	ntmm_stats_get(d->e, &s);
	uint64_t acc = 0;
	for (int i = 0; i < d->o.processes; i++)
		acc += atomic_load_explicit(&d->w[i].progress, memory_order_relaxed);
	fprintf(stderr,
	        "\r  %5.1fs  accesses %-10llu faults %-9llu hard %-8llu written %-8llu "
	        "free+zeroed %-7llu standby %-7llu modified %-7llu",
	        (now_ns() - t0) / 1e9, (unsigned long long)acc,
	        (unsigned long long)(s.page_faults - d->s0.page_faults),
	        (unsigned long long)(s.hard_faults - d->s0.hard_faults),
	        (unsigned long long)(s.pages_written - d->s0.pages_written),
	        (unsigned long long)(s.free_pages + s.zeroed_pages),
	        (unsigned long long)s.standby_pages, (unsigned long long)s.modified_pages);
}

/* The timed run: one worker per process for o.seconds (or until a stop
   signal), the main thread ticking every 250 ms. 0, or the exit status. */
static int demo_run_workers(demo_t *d)
{
	const demo_opts_t *o = &d->o;
	int n = o->processes, started = 0, rc = 0;
	pthread_t *tid = calloc((size_t)n, sizeof(*tid));
	if (!tid)
		return ntmm__tool_fail(&d->tool, 1, "system", "out of memory");
	ntmm_stats_get(d->e, &d->s0);
	uint64_t t0 = now_ns();
	for (; started < n; started++) {
		int e = pthread_create(&tid[started], NULL, worker_main, &d->w[started]);
		if (e) {
			rc = ntmm__tool_fail(&d->tool, 1, "system", "pthread_create: %s",
			                     strerror(e));
			break;
		}
	}
	uint64_t end = t0 + (uint64_t)(o->seconds * 1e9);
	while (!rc && now_ns() < end) {
		if (stop_signal_taken(d, 250000000u))
			break;
		if (!o->quiet && !o->json)
			print_progress(d, t0);
	}
	atomic_store(&d->stop, 1);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	free(tid);
	d->secs = (now_ns() - t0) / 1e9;
	if (!o->quiet && !o->json)
		fprintf(stderr, "\n");
	ntmm_stats_get(d->e, &d->s1);
	d->rss = rss_kib();
	return rc;
}

/* The mapped file: flushed through one view, then every page each worker
   owns read back with pread and checked against its last version. */
static void demo_verify_mapped(demo_t *d)
{
	if (!d->sec)
		return;
	const worker_t *w0 = &d->w[0];
	int err = ntmm_flush_view(w0->p, w0->mbase, 0);
	if (err) {
		d->verify_errors++;
		if (!d->o.json)
			fprintf(stderr, "verify: flush of the mapped file: %s (%s)\n",
			        ntmm_strerror(err), ntmm_error_detail());
		return;
	}
	uint64_t buf[NTMM_PAGE_SIZE / 8];
	for (int i = 0; i < d->o.processes; i++) {
		const worker_t *w = &d->w[i];
		for (size_t k = 0; k < w->mpages; k++) {
			size_t fpage = k * (size_t)d->o.processes + (size_t)i;
			if (pread(d->mfd, buf, sizeof(buf), (off_t)(fpage * NTMM_PAGE_SIZE)) !=
			        (ssize_t)sizeof(buf) ||
			    !check_page(buf, i, fpage, w->mversion[k]))
				d->mbad++;
			else
				d->mverified++;
		}
	}
}

/* Every page of every process against the version its worker last wrote:
   the whole point. Then the audit. */
static void demo_verify(demo_t *d)
{
	ntmm_thread_register(d->e);
	for (int i = 0; i < d->o.processes && !d->stopped_by; i++) {
		const worker_t *w = &d->w[i];
		for (size_t pg = 0; pg < d->pages; pg++) {
			if (!(pg & 255) && stop_signal_taken(d, 0))
				break;
			void *host;
			ntmm_access_begin(d->e);
			int err = ntmm_translate(w->p, w->base + pg * NTMM_PAGE_SIZE,
			                         NTMM_ACCESS_READ, &host);
			if (err && !d->verify_errors++ && !d->o.json)
				fprintf(stderr, "verify: process %d page %zu: %s (%s)\n", i, pg,
				        ntmm_strerror(err), ntmm_error_detail());
			if (err)
				;
			else if (!check_page(host, i, pg, w->version[pg]))
				d->bad++;
			else
				d->verified++;
			ntmm_access_end(d->e);
		}
	}
	ntmm_thread_unregister(d->e);
	if (!d->stopped_by)
		demo_verify_mapped(d);
	if (!d->stopped_by)
		d->audit = ntmm_audit(d->e);
}

static void demo_summarise(demo_t *d, summary_t *m)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < d->o.processes; i++) {
		const worker_t *w = &d->w[i];
		if (w->errors && !m->first_err)
			m->first_err = w;
		for (unsigned k = 0; k < NTMM_FAULT_KINDS; k++)
			hist_merge(&m->all[k], &w->hist[k]);
		m->accesses += w->accesses;
		m->writes += w->writes;
		m->errors += w->errors;
		m->mismatches += w->mismatches;
	}
	hist_merge(&m->sz, &m->all[NTMM_FAULT_SOFT]);
	hist_merge(&m->sz, &m->all[NTMM_FAULT_DEMAND_ZERO]);
	m->hard = d->s1.hard_faults - d->s0.hard_faults;
	m->written = d->s1.pages_written - d->s0.pages_written;
	/* any failed access fails the demo: an ENOMEM or EIO under load is a
	   bug the run must not hide, even if every page verifies afterwards */
	if (m->errors)
		m->failures[m->nfail++] = "access_errors";
	if (d->bad)
		m->failures[m->nfail++] = "bad_pages";
	if (d->verify_errors)
		m->failures[m->nfail++] = "verify_errors";
	if (m->mismatches)
		m->failures[m->nfail++] = "read_mismatches";
	if (d->audit)
		m->failures[m->nfail++] = "audit";
	if (d->mbad)
		m->failures[m->nfail++] = "mapped_bad_pages";
	m->mapped_written = d->s1.mapped_pages_written - d->s0.mapped_pages_written;
	m->ok = m->nfail == 0;
	ntmm_engine_io_backend(d->e, m->io_backend_end, sizeof(m->io_backend_end));
	m->io_changed = strcmp(d->io_backend, m->io_backend_end) != 0;
}

/* ------------------------------------------------------------ reporting */

static void add_u64(json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static json_object *faults_json(const summary_t *m)
{
	json_object *f = json_object_new_object();
	for (unsigned k = 0; k < NTMM_FAULT_KINDS; k++) {
		json_object *h = json_object_new_object();
		add_u64(h, "count", m->all[k].count);
		add_u64(h, "p50_ns", hist_pct(&m->all[k], .5));
		add_u64(h, "p99_ns", hist_pct(&m->all[k], .99));
		add_u64(h, "p999_ns", hist_pct(&m->all[k], .999));
		json_object_object_add(f, kind_names[k], h);
	}
	return f;
}

static void report_json(demo_t *d, const summary_t *m)
{
	const ntmm_stats_t *s1 = &d->s1;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "seconds", ntmm__tool_json_double(d->secs, "%.3f"));
	json_object_object_add(o, "processes", json_object_new_int(d->o.processes));
	add_u64(o, "physical_bytes", d->o.physical);
	add_u64(o, "committed_bytes", d->per_proc * (size_t)d->o.processes);
	add_u64(o, "accesses", m->accesses);
	add_u64(o, "writes", m->writes);
	add_u64(o, "access_errors", m->errors);
	if (m->first_err) {
		json_object *fe = json_object_new_object();
		json_object_object_add(fe, "process", json_object_new_int(m->first_err->id));
		json_object_object_add(
		    fe, "error", json_object_new_string(ntmm_strerror(m->first_err->first_error)));
		json_object_object_add(fe, "detail",
		                       json_object_new_string(m->first_err->first_error_detail));
		json_object_object_add(o, "first_access_error", fe);
	}
	json_object_object_add(o, "io_backend", json_object_new_string(m->io_backend_end));
	json_object_object_add(o, "faults", faults_json(m));
	json_object *sz = json_object_new_object();
	add_u64(sz, "p50_ns", hist_pct(&m->sz, .5));
	add_u64(sz, "p99_ns", hist_pct(&m->sz, .99));
	json_object_object_add(o, "soft_plus_demand_zero", sz);
	json_object_object_add(o, "hard_faults_per_s",
	                       ntmm__tool_json_double(m->hard / d->secs, "%.1f"));
	json_object_object_add(o, "pages_written_per_s",
	                       ntmm__tool_json_double(m->written / d->secs, "%.1f"));
	json_object_object_add(o, "rss_kib", json_object_new_int64(d->rss));
	json_object *lists = json_object_new_object();
	add_u64(lists, "zeroed", s1->zeroed_pages);
	add_u64(lists, "free", s1->free_pages);
	add_u64(lists, "standby", s1->standby_pages);
	add_u64(lists, "modified", s1->modified_pages);
	add_u64(lists, "active", s1->active_pages);
	json_object_object_add(o, "lists", lists);
	json_object_object_add(o, "threads", ntmm__tool_threads_json(d->e));
	add_u64(o, "verified_pages", d->verified);
	add_u64(o, "bad_pages", d->bad);
	add_u64(o, "verify_errors", d->verify_errors);
	add_u64(o, "read_mismatches", m->mismatches);
	json_object *mp = json_object_new_object();
	add_u64(mp, "bytes", d->sec ? d->o.mapped : 0);
	add_u64(mp, "pages_written", m->mapped_written);
	add_u64(mp, "verified_pages", d->mverified);
	add_u64(mp, "bad_pages", d->mbad);
	json_object_object_add(o, "mapped_file", mp);
	json_object_object_add(o, "audit", json_object_new_int(d->audit));
	json_object *fl = json_object_new_array();
	for (unsigned i = 0; i < m->nfail; i++)
		json_object_array_add(fl, json_object_new_string(m->failures[i]));
	json_object_object_add(o, "failures", fl);
	json_object_object_add(o, "ok", json_object_new_boolean(m->ok));
	ntmm__tool_print_json(o, false);
}

static void report_text(demo_t *d, const summary_t *m)
{
	const ntmm_stats_t *s1 = &d->s1;
	double secs = d->secs;
	printf("\n%.1f s, %llu accesses (%.0f/s), %llu page writes, %llu access errors", secs,
	       (unsigned long long)m->accesses, m->accesses / secs, (unsigned long long)m->writes,
	       (unsigned long long)m->errors);
	if (m->first_err)
		printf(" (first, process %d: %s: %s)", m->first_err->id,
		       ntmm_strerror(m->first_err->first_error), m->first_err->first_error_detail);
	printf("\n\n%-14s %12s %10s %10s %10s\n", "fault kind", "count", "p50", "p99", "p999");
	for (unsigned k = 0; k < NTMM_FAULT_KINDS; k++)
		printf("%-14s %12llu %8lluns %8lluns %8lluns\n", kind_names[k],
		       (unsigned long long)m->all[k].count,
		       (unsigned long long)hist_pct(&m->all[k], .5),
		       (unsigned long long)hist_pct(&m->all[k], .99),
		       (unsigned long long)hist_pct(&m->all[k], .999));
	uint64_t p50 = hist_pct(&m->sz, .5), p99 = hist_pct(&m->sz, .99);
	printf("soft+demand-zero p50 %lluns, p99 %lluns: p99/p50 = %.2f (target <= 5)\n",
	       (unsigned long long)p50, (unsigned long long)p99, p50 ? (double)p99 / p50 : 0.0);
	printf("\nhard faults %.0f/s, pages written %.0f/s (%.1f MiB/s), RSS %ld MiB\n",
	       m->hard / secs, m->written / secs, m->written * 4096.0 / secs / (1 << 20),
	       d->rss / 1024);
	if (m->io_changed)
		printf("paging I/O now: %s\n", m->io_backend_end);
	printf("lists: zeroed %llu  free %llu  standby %llu  modified %llu  active %llu\n",
	       (unsigned long long)s1->zeroed_pages, (unsigned long long)s1->free_pages,
	       (unsigned long long)s1->standby_pages, (unsigned long long)s1->modified_pages,
	       (unsigned long long)s1->active_pages);
	printf("\nsystem threads:\n");
	ntmm__tool_print_threads(d->e, stdout);
	printf("\nverify: %llu pages checked, %llu wrong, %llu unreadable, %llu read "
	       "mismatches and %llu access errors during the run; audit %s\n",
	       (unsigned long long)d->verified, (unsigned long long)d->bad,
	       (unsigned long long)d->verify_errors, (unsigned long long)m->mismatches,
	       (unsigned long long)m->errors, d->audit ? "FAILED" : "ok");
	if (d->sec)
		printf("mapped file: %zu MiB shared by %d processes, %llu pages written to it, "
		       "%llu of its pages checked against the file, %llu wrong\n",
		       d->o.mapped >> 20, d->o.processes, (unsigned long long)m->mapped_written,
		       (unsigned long long)d->mverified, (unsigned long long)d->mbad);
	if (m->ok) {
		printf("OK: nothing lost, no access errors\n");
	} else {
		printf("FAILED:");
		for (unsigned i = 0; i < m->nfail; i++)
			printf("%s %s", i ? "," : "", m->failures[i]);
		printf("\n");
	}
}

/* ------------------------------------------------------------ the command */

/* Releases whatever demo_setup made, in reverse: the processes, the
   engine, the paging file and a directory of our own. */
static void demo_teardown(demo_t *d)
{
	for (int i = 0; d->w && i < d->o.processes; i++) {
		if (d->w[i].p)
			ntmm_process_destroy(d->w[i].p);
		free(d->w[i].version);
		free(d->w[i].mversion);
	}
	free(d->w);
	free(d->zipf_cdf);
	if (d->sec)
		ntmm_section_close(d->sec);
	if (d->e)
		ntmm_engine_destroy(d->e);
	if (d->mfd >= 0)
		close(d->mfd);
	if (d->mf[0])
		unlink(d->mf);
	if (d->pf[0])
		unlink(d->pf);
	if (d->made_dir)
		rmdir(d->dir);
}

/* After a stop signal and the teardown: says so (as JSON too under
   --json), then ends the process by that signal, as its parent expects. */
static int demo_die_by_signal(demo_t *d)
{
	int sig = d->stopped_by;
	ntmm__tool_fail(&d->tool, 128 + sig, "interrupted",
	                "stopped by %s: engine destroyed, paging file %s removed",
	                sig == SIGINT    ? "SIGINT"
	                : sig == SIGTERM ? "SIGTERM"
	                                 : "a signal",
	                d->pf);
	fflush(stdout);
	fflush(stderr);
	signal(sig, SIG_DFL);
	raise(sig); /* blocked here: pending until the unblock delivers it */
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	return 128 + sig; /* not reached */
}

/* Setup, the timed run, the verification and the report: 0, 1 when the
   run failed (or any other exit status); stops early on a stop signal. */
static int demo_main(demo_t *d)
{
	int rc = demo_setup(d);
	if (rc || stop_signal_taken(d, 0))
		return rc;
	if (!d->o.json) {
		printf("ntmm demo: %d processes x %zu MiB committed = %.1fx a %zu MiB frame "
		       "pool; paging file %s\n",
		       d->o.processes, d->per_proc >> 20,
		       (double)d->per_proc * d->o.processes / d->o.physical, d->o.physical >> 20,
		       d->pf);
		printf("paging I/O: %s\n", d->io_backend);
		fflush(stdout);
	}
	if ((rc = demo_run_workers(d)) || d->stopped_by)
		return rc;
	demo_verify(d);
	if (d->stopped_by)
		return 0;
	summary_t m;
	demo_summarise(d, &m);
	if (d->o.json)
		report_json(d, &m);
	else
		report_text(d, &m);
	return m.ok ? 0 : 1;
}

int ntmm__tool_demo(int argc, char **argv)
{
	static demo_t d; /* one demo per process; its workers point into it */
	memset(&d, 0, sizeof(d));
	d.mfd = -1;
	int rc = demo_parse(&d, argc, argv);
	if (rc)
		return rc < 0 ? 0 : rc;
	stop_signals_block(&d);
	rc = demo_main(&d);
	demo_teardown(&d);
	if (d.stopped_by)
		return demo_die_by_signal(&d);
	return rc;
}
