/*
 * Engine options: one table giving each ntmm_config_t field its default,
 * its valid range and its environment override NTMM_<NAME> (sizes accept
 * K/M/G/T suffixes). ntmm_config_init applies defaults then the
 * environment; a variable it cannot apply exactly (not a decimal number,
 * trailing characters, too large, outside the option's range, an unknown
 * name for an enum, an empty string) leaves the field at its default and
 * is recorded in cfg->env_error, so that ntmm_engine_create fails with
 * NTMM_EINVAL naming it: nothing from the environment is silently changed.
 * ntmm__config_validate checks a filled config at engine creation.
 */
#include "engine.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum opt_kind { OPT_SIZE, OPT_INT, OPT_U64, OPT_UINT, OPT_STR, OPT_BACKING };

typedef struct option {
	const char *name; /* env: NTMM_<NAME upper-cased> */
	enum opt_kind kind;
	size_t offset;
	long long def, min, max; /* for OPT_STR: def unused (NULL) */
	const char *help;
} option_t;

#define MiB    (1024LL * 1024)
#define GiB    (1024LL * MiB)
#define OFF(f) offsetof(ntmm_config_t, f)
#define PRIO(idx, name, def)                                                               \
	{"prio_" name,                                                                     \
	 OPT_INT,                                                                          \
	 OFF(thread_priority) + (idx) * sizeof(int),                                       \
	 def,                                                                              \
	 0,                                                                                \
	 31,                                                                               \
	 "NT priority of the " name " thread"},                                            \
	{                                                                                  \
		"cpu_" name, OPT_INT, OFF(thread_cpu) + (idx) * sizeof(int), -1, -1, 4095, \
		    "CPU the " name " thread is pinned to (-1: none)"                      \
	}

static const option_t options[] = {
    /* the PFN index is 32 bits (ntmm__pfn_t): below 16 TiB of frames */
    {"physical_bytes", OPT_SIZE, OFF(physical_bytes), 256 * MiB, 2 * MiB, (1LL << 44) - 2 * MiB,
     "frame pool size, multiple of 2 MiB, below 16 TiB"},
    {"pagefile_path", OPT_STR, OFF(pagefile_path), 0, 0, 0, "first paging file (unset: none)"},
    {"pagefile_initial", OPT_SIZE, OFF(pagefile_initial), 64 * MiB, 0, 1LL << 46,
     "initial paging-file size"},
    {"pagefile_maximum", OPT_SIZE, OFF(pagefile_maximum), 1 * GiB, 0, 1LL << 46,
     "paging-file growth limit"},
    {"backing", OPT_BACKING, OFF(backing), NTMM_BACKING_AUTO, 0, 3, "auto | hugetlb | thp | 4k"},
    {"topology", OPT_STR, OFF(topology), 0, 0, 0, "hwloc synthetic topology (unset: machine)"},
    {"start_threads", OPT_INT, OFF(start_threads), 1, 0, 1, "start the system threads"},
    PRIO(NTMM_THREAD_BALANCE_SET, "balance_set", 16),
    PRIO(NTMM_THREAD_SWAPPER, "swapper", 23),
    PRIO(NTMM_THREAD_MODIFIED_WRITER, "modified_writer", 17),
    PRIO(NTMM_THREAD_MAPPED_WRITER, "mapped_writer", 17),
    PRIO(NTMM_THREAD_SEGMENT_DEREF, "segment_deref", 18),
    PRIO(NTMM_THREAD_ZERO_PAGE, "zero_page", 23),
    {"aslr_seed", OPT_U64, OFF(aslr_seed), 0x6e746d6d, 0, 0, "randomized placement seed"},
    {"ws_min_pages", OPT_SIZE, OFF(ws_min_pages), 50, 1, 1LL << 40,
     "default working-set minimum (pages)"},
    {"ws_max_pages", OPT_SIZE, OFF(ws_max_pages), 345, 1, 1LL << 40,
     "default working-set maximum (pages)"},
    {"swap_idle_ms", OPT_UINT, OFF(swap_idle_ms), 15000, 0, 1LL << 31,
     "swapper: out-swap a process idle this long (0: never)"},
    {"balance_tick_ms", OPT_UINT, OFF(balance_tick_ms), 1000, 1, 60000,
     "balance set manager period (the swapper runs every 4th tick)"},
    {"io_backend", OPT_INT, OFF(io_backend), 0, 0, 2,
     "paging-file I/O: 0 auto, 1 io_uring for all, 2 preadv/pwritev"},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const char *backing_names[] = {"auto", "hugetlb", "thp", "4k"};

const char *ntmm__backing_name(int backing)
{
	return backing >= 0 && backing <= 3 ? backing_names[backing] : "unknown";
}

/*
 * Numbers, for the environment and the command line: decimal digits only
 * (a leading 0 is decimal, "0x" is not accepted), a '-' only where the
 * option allows negative values, nothing before or after (no blanks, no
 * '+'), no value that does not fit 63 bits (64 for OPT_U64). Sizes take
 * one K/M/G/T suffix (powers of 1024, optionally followed by "i" and
 * "B"/"b") and a bare "B"; the scaled value must fit 63 bits as well.
 * Returns NULL and the value, or what is wrong with the text.
 */
static const char *parse_number(const char *s, bool size, bool negative, bool u64,
                                unsigned long long *out, bool *neg)
{
	const char *p = s;
	*neg = false;
	if (!*p)
		return "empty";
	if (*p == '-') {
		if (!negative)
			return "negative";
		*neg = true;
		p++;
	}
	if (!isdigit((unsigned char)*p))
		return "not a decimal number";
	unsigned long long lim = u64 && !*neg ? ~0ull : (unsigned long long)LLONG_MAX;
	unsigned long long v = 0;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (lim - d) / 10)
			return u64 && !*neg ? "does not fit 64 bits" : "does not fit 63 bits";
		v = v * 10 + d;
	}
	if (size) {
		unsigned shift = 0;
		switch (toupper((unsigned char)*p)) {
		case 'K':
			shift = 10;
			break;
		case 'M':
			shift = 20;
			break;
		case 'G':
			shift = 30;
			break;
		case 'T':
			shift = 40;
			break;
		}
		if (shift) {
			p++;
			if (v > lim >> shift)
				return "does not fit 63 bits";
			v <<= shift;
			if (*p == 'i' || *p == 'I')
				p++;
		}
		if (*p == 'B' || *p == 'b')
			p++;
	}
	if (*p)
		return size ? "trailing characters (a size is digits with one K/M/G/T suffix)"
		            : "trailing characters (decimal digits only)";
	*out = v;
	return NULL;
}

long long ntmm__parse_size(const char *s)
{
	unsigned long long v;
	bool neg;
	if (!s || parse_number(s, true, false, false, &v, &neg))
		return -1;
	return (long long)v;
}

static void env_name(const char *name, char *buf, size_t n)
{
	size_t i = snprintf(buf, n, "NTMM_");
	for (; *name && i + 1 < n; name++)
		buf[i++] = (char)toupper((unsigned char)*name);
	buf[i] = 0;
}

static void set_field(ntmm_config_t *cfg, const option_t *o, long long v)
{
	char *f = (char *)cfg + o->offset;
	switch (o->kind) {
	case OPT_SIZE:
		*(size_t *)f = (size_t)v;
		break;
	case OPT_INT:
	case OPT_BACKING:
		*(int *)f = (int)v;
		break;
	case OPT_U64:
		*(uint64_t *)f = (uint64_t)v;
		break;
	case OPT_UINT:
		*(unsigned *)f = (unsigned)v;
		break;
	case OPT_STR:
		break;
	}
}

/* Records the first variable that could not be applied (the field keeps
   its default). */
static void env_reject(ntmm_config_t *cfg, const char *name, const char *value, const char *why)
{
	if (cfg->env_error[0])
		return;
	int vlen = (int)strlen(value);
	const char *cut = "";
	if (vlen > 48) {
		vlen = 48;
		cut = "...";
	}
	/* a reason too long for the field is cut short (the name and the value
	   come first) */
	if (snprintf(cfg->env_error, sizeof(cfg->env_error), "%s=\"%.*s%s\": %s", name, vlen, value,
	             cut, why) < 0)
		snprintf(cfg->env_error, sizeof(cfg->env_error), "%s: rejected", name);
}

/* Applies one NTMM_<NAME> value to its field, or records why not. */
static void env_apply(ntmm_config_t *cfg, const option_t *o, const char *name, const char *v)
{
	char why[96];
	if (o->kind == OPT_STR) {
		if (!*v)
			env_reject(cfg, name, v, "empty (unset the variable for the default)");
		else
			*(const char **)((char *)cfg + o->offset) = v; /* environ outlives cfg */
		return;
	}
	if (o->kind == OPT_BACKING) {
		for (int b = 0; b < 4; b++)
			if (!strcasecmp(v, backing_names[b])) {
				set_field(cfg, o, b);
				return;
			}
		env_reject(cfg, name, v, "not one of auto, hugetlb, thp, 4k");
		return;
	}
	unsigned long long u;
	bool neg;
	const char *err =
	    parse_number(v, o->kind == OPT_SIZE, o->min < 0, o->kind == OPT_U64, &u, &neg);
	if (err) {
		env_reject(cfg, name, v, err);
		return;
	}
	if (o->kind == OPT_U64) {
		*(uint64_t *)((char *)cfg + o->offset) = u;
		return;
	}
	long long x = neg ? -(long long)u : (long long)u;
	if (x < o->min || x > o->max) {
		snprintf(why, sizeof(why), "outside [%lld, %lld]", o->min, o->max);
		env_reject(cfg, name, v, why);
		return;
	}
	set_field(cfg, o, x);
}

void ntmm_config_init(ntmm_config_t *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NOPTIONS; i++)
		set_field(cfg, &options[i], options[i].def);
	for (size_t i = 0; i < NOPTIONS; i++) {
		char name[64];
		env_name(options[i].name, name, sizeof(name));
		const char *v = getenv(name);
		if (v)
			env_apply(cfg, &options[i], name, v);
	}
}

int ntmm_config_init_checked(ntmm_config_t *cfg)
{
	if (!cfg)
		return ntmm__error(NTMM_EINVAL, "config is NULL");
	ntmm_config_init(cfg);
	if (cfg->env_error[0])
		return ntmm__error(NTMM_EINVAL, "environment: %s", cfg->env_error);
	return 0;
}

int ntmm__config_validate(const ntmm_config_t *cfg)
{
	if (!cfg)
		return ntmm__error(NTMM_EINVAL, "config is NULL");
	if (cfg->env_error[0])
		return ntmm__error(NTMM_EINVAL, "environment: %.*s", (int)sizeof(cfg->env_error),
		                   cfg->env_error);
	for (size_t i = 0; i < NOPTIONS; i++) {
		const option_t *o = &options[i];
		const char *f = (const char *)cfg + o->offset;
		long long v;
		switch (o->kind) {
		case OPT_SIZE:
			v = (long long)*(const size_t *)f;
			break;
		case OPT_INT:
		case OPT_BACKING:
			v = *(const int *)f;
			break;
		case OPT_UINT:
			v = *(const unsigned *)f;
			break;
		default:
			continue;
		}
		if (v < o->min || v > o->max)
			return ntmm__error(NTMM_EINVAL, "%s = %lld is outside [%lld, %lld] (%s)",
			                   o->name, v, o->min, o->max, o->help);
	}
	if (cfg->physical_bytes % (2 * MiB))
		return ntmm__error(NTMM_EINVAL, "physical_bytes = %zu is not a multiple of 2 MiB",
		                   cfg->physical_bytes);
	if (cfg->ws_min_pages > cfg->ws_max_pages)
		return ntmm__error(NTMM_EINVAL, "ws_min_pages %zu > ws_max_pages %zu",
		                   cfg->ws_min_pages, cfg->ws_max_pages);
	if (cfg->pagefile_path && cfg->pagefile_initial > cfg->pagefile_maximum)
		return ntmm__error(NTMM_EINVAL, "pagefile_initial %zu > pagefile_maximum %zu",
		                   cfg->pagefile_initial, cfg->pagefile_maximum);
	return 0;
}

void ntmm__options_print(FILE *out)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		char name[64];
		env_name(options[i].name, name, sizeof(name));
		fprintf(out, "  %-24s %s\n", name, options[i].help);
	}
}
