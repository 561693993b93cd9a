/*
 * The engine object and the internal entry points that tie the layers
 * together. Everything hangs off the engine (STYLE.md rule 7): two engines
 * can live in one process.
 *
 * Layer sub-structs are embedded by value; each layer's header owns its
 * struct and its init/fini. Creation (ntmm_engine_create): the options are
 * validated before anything is allocated, then stats → phys → io (adds the
 * configured paging file) → virt (sets the hooks phys calls: repurpose,
 * original_gone) → system threads (systhreads_init always, start only with
 * cfg.start_threads). A failure unwinds what was built. Destruction is the
 * reverse, after the pins still held are released.
 */
#ifndef NTMM_ENGINE_H
#define NTMM_ENGINE_H

#include <ntmm.h>
#include <ntmm/stats.h>
#include <stdio.h>

#include "debug.h"
#include "stats/stats.h"
#include "phys/phys.h"
#include "io/io.h"
#include "virt/virt.h"
#include "threads/systhreads.h"
#include "section/section.h"

struct ntmm_engine {
	ntmm_config_t cfg;             /* validated copy; strings below are owned copies */
	char *topology_str;            /* cfg.topology points here */
	char *pagefile_path;           /* cfg.pagefile_path points here */
	unsigned ncpus;                /* CPUs of this machine (configured), for per-CPU slots */
	ntmm__stats_t stats;           /* per-CPU counters */
	ntmm__phys_t phys;             /* frame pool, PFN database, page lists (phys/) */
	ntmm__virt_t virt;             /* processes, commit charge (virt/) */
	ntmm__io_t io;                 /* paging files, backing-store drivers, I/O rings (io/) */
	ntmm__systhreads_t systhreads; /* the system threads (threads/) */
	ntmm__section_layer_t section; /* sections and segments (section/) */
};

/* options.c */
int ntmm__config_validate(const ntmm_config_t *cfg);
const char *ntmm__backing_name(int backing);
/* "64M" → 67108864 (K/M/G/T suffixes, optional "iB"); -1 if malformed. */
long long ntmm__parse_size(const char *s);
void ntmm__options_print(FILE *out);

/* error.c: records a detail string for ntmm_error_detail, returns err */
int ntmm__error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* engine.c: fills the gauge fields of out from every layer */
void ntmm__engine_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out);

#endif
