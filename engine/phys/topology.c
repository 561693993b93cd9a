/*
 * Topology through hwloc: the NUMA nodes, which node each CPU slot belongs
 * to, node distances and the fallback order they give, the page-colour
 * count, and binding a range of the pool to its node. A synthetic hwloc
 * string (ntmm_config_t.topology) replaces the machine, so the multi-node
 * paths are exercised on a one-node box; memory is then not bound.
 */
#include "engine.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <hwloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static unsigned tree_distance(hwloc_topology_t hw, hwloc_obj_t a, hwloc_obj_t b)
{
	if (a == b)
		return 10;
	hwloc_obj_t anc = hwloc_get_common_ancestor_obj(hw, a, b);
	int da = a->parent ? a->parent->depth : 0, db = b->parent ? b->parent->depth : 0;
	int d = (da > db ? da : db) - (anc && anc->depth >= 0 ? anc->depth : 0);
	return 10 + 10 * (unsigned)(d > 0 ? d : 1);
}

static unsigned colours_from_l2(hwloc_topology_t hw)
{
	hwloc_obj_t l2 = hwloc_get_obj_by_type(hw, HWLOC_OBJ_L2CACHE, 0);
	unsigned long long c = 16;
	if (l2 && l2->attr && l2->attr->cache.associativity > 0 && l2->attr->cache.size)
		c = l2->attr->cache.size /
		    ((unsigned long long)l2->attr->cache.associativity << NTMM__PAGE_SHIFT);
	unsigned p = 1;
	while (p * 2 <= c && p * 2 <= NTMM__MAX_COLOURS)
		p *= 2;
	return p;
}

/*
 * A synthetic description is checked before hwloc loads it: loading builds
 * every object, and its time grows faster than the object count (10 000
 * NUMA nodes take over 20 s; 1024 PUs take 0.01-0.4 s). Levels are
 * whitespace-separated "type:count" or bare "count" tokens, each with an
 * optional "(attributes)"; a "[numa...]" token attaches one memory node to
 * every object of the level before it. Limits: NTMM__SYNTH_MAX_PUS PUs
 * (the product of the counts), NTMM__SYNTH_MAX_OBJECTS objects in all,
 * NTMM__SYNTH_MAX_LEVELS levels, and at most NTMM__MAX_NODES NUMA nodes
 * (the per-node arrays) where the string names them (an untyped level that
 * hwloc makes NUMA is caught after the load by the same limit). The syntax
 * itself is left to hwloc.
 */
#define NTMM__SYNTH_MAX_PUS     1024u
#define NTMM__SYNTH_MAX_OBJECTS 8192u
#define NTMM__SYNTH_MAX_LEVELS  32u

static bool is_numa_type(const char *s, size_t n)
{
	return (n >= 4 && !strncasecmp(s, "numa", 4)) || (n == 4 && !strncasecmp(s, "node", 4));
}

/* Skips a bracketed or parenthesised group starting at *p (nesting
   counted); returns the character after it. */
static const char *skip_group(const char *p)
{
	int depth = 0;
	do {
		if (*p == '(' || *p == '[')
			depth++;
		else if (*p == ')' || *p == ']')
			depth--;
		p++;
	} while (*p && depth > 0);
	return p;
}

/* NTMM_EINVAL with a detail quoting the description (shortened if long). */
static int synth_error(const char *desc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int synth_error(const char *desc, const char *fmt, ...)
{
	char why[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	int n = (int)strlen(desc);
	bool cut = n > 60;
	return ntmm__error(NTMM_EINVAL, "topology \"%.*s%s\": %s", cut ? 57 : n, desc,
	                   cut ? "..." : "", why);
}

static int check_synthetic(const char *desc)
{
	unsigned long long objects = 1, width = 1, numa = 0; /* width: objects per level */
	unsigned levels = 0;
	const char *p = desc;
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (*p == '[' || *p == '(') {
			/* memory children of each object of the current level, or
			   attributes */
			const char *q = skip_group(p);
			if (*p == '[' && is_numa_type(p + 1, (size_t)(q - p - 1)))
				numa += width;
			p = q;
			continue;
		}
		const char *type = p;
		while (isalnum((unsigned char)*p) && *p != ':')
			p++;
		size_t tlen = (size_t)(p - type);
		bool typed = *p == ':';
		if (typed)
			p++;
		else
			p = type; /* a bare count */
		if (!isdigit((unsigned char)*p))
			return synth_error(desc,
			                   "level %u has no count (levels are \"type:count\", e.g. "
			                   "\"pack:2 numa:1 core:2 pu:1\")",
			                   levels + 1);
		unsigned long long count = 0;
		while (isdigit((unsigned char)*p)) {
			count = count * 10 + (unsigned)(*p++ - '0');
			if (count > NTMM__SYNTH_MAX_PUS)
				break;
		}
		while (isdigit((unsigned char)*p))
			p++;
		if (count > NTMM__SYNTH_MAX_PUS) {
			if (typed && is_numa_type(type, tlen))
				return synth_error(
				    desc,
				    "level %u asks for over %u NUMA nodes; at most %d "
				    "supported",
				    levels + 1, NTMM__SYNTH_MAX_PUS, NTMM__MAX_NODES);
			return synth_error(desc,
			                   "level %u count is above %u (at most %u PUs in all)",
			                   levels + 1, NTMM__SYNTH_MAX_PUS, NTMM__SYNTH_MAX_PUS);
		}
		if (*p == '(')
			p = skip_group(p);
		if (*p && !isspace((unsigned char)*p) && *p != '[')
			return synth_error(desc, "cannot read level %u", levels + 1);
		if (++levels > NTMM__SYNTH_MAX_LEVELS)
			return synth_error(desc, "more than %u levels", NTMM__SYNTH_MAX_LEVELS);
		width *= count ? count : 1; /* ≤ 1024 × 1024: no overflow */
		if (typed && is_numa_type(type, tlen))
			numa += width;
		if (numa > NTMM__MAX_NODES)
			return synth_error(desc, "%llu NUMA nodes; at most %d supported", numa,
			                   NTMM__MAX_NODES);
		if (width > NTMM__SYNTH_MAX_PUS)
			return synth_error(desc,
			                   "more than %u objects on level %u (at most %u PUs)",
			                   NTMM__SYNTH_MAX_PUS, levels, NTMM__SYNTH_MAX_PUS);
		objects += width;
		if (objects > NTMM__SYNTH_MAX_OBJECTS)
			return synth_error(desc, "more than %u objects in all",
			                   NTMM__SYNTH_MAX_OBJECTS);
	}
	return 0;
}

int ntmm__topo_init(ntmm__topo_t *t, const char *synthetic, unsigned ncpus)
{
	memset(t, 0, sizeof(*t));
	if (synthetic) {
		int err = check_synthetic(synthetic);
		if (err)
			return err;
	}
	hwloc_topology_t hw;
	if (hwloc_topology_init(&hw))
		return ntmm__error(NTMM_ENOMEM, "hwloc_topology_init failed");
	if (synthetic) {
		if (hwloc_topology_set_synthetic(hw, synthetic)) {
			hwloc_topology_destroy(hw);
			return ntmm__error(NTMM_EINVAL,
			                   "topology \"%s\" is not a valid hwloc synthetic "
			                   "description (e.g. \"pack:2 numa:1 core:2 pu:1\")",
			                   synthetic);
		}
		t->synthetic = true;
	}
	if (hwloc_topology_load(hw)) {
		hwloc_topology_destroy(hw);
		return ntmm__error(synthetic ? NTMM_EINVAL : NTMM_ENOTSUP,
		                   "hwloc_topology_load: %s", strerror(errno));
	}
	t->hw = hw;
	int nn = hwloc_get_nbobjs_by_type(hw, HWLOC_OBJ_NUMANODE);
	t->nnodes = nn > 0 ? (unsigned)nn : 1;
	if (t->nnodes > NTMM__MAX_NODES) {
		ntmm__topo_fini(t);
		return ntmm__error(NTMM_EINVAL, "topology has %u NUMA nodes; at most %d supported",
		                   (unsigned)nn, NTMM__MAX_NODES);
	}
	t->ncpus = ncpus;
	t->cpu_node = calloc(ncpus, sizeof(*t->cpu_node));
	if (!t->cpu_node) {
		ntmm__topo_fini(t);
		return ntmm__error(NTMM_ENOMEM, "topology CPU map");
	}
	hwloc_obj_t node[NTMM__MAX_NODES] = {0};
	for (unsigned i = 0; i < t->nnodes && nn > 0; i++) {
		node[i] = hwloc_get_obj_by_type(hw, HWLOC_OBJ_NUMANODE, i);
		t->os_node[i] = node[i]->os_index;
	}
	for (unsigned c = 0; c < ncpus; c++) {
		if (t->synthetic || nn <= 0) {
			t->cpu_node[c] = c % t->nnodes;
			continue;
		}
		for (unsigned i = 0; i < t->nnodes; i++)
			if (node[i]->cpuset && hwloc_bitmap_isset(node[i]->cpuset, c))
				t->cpu_node[c] = i;
	}

	/* distances: the OS matrix if hwloc has one, else the tree */
	struct hwloc_distances_s *dist = NULL;
	unsigned nr = 1;
	if (!t->synthetic && nn > 1 &&
	    hwloc_distances_get_by_type(hw, HWLOC_OBJ_NUMANODE, &nr, &dist, 0, 0) == 0 && nr == 1 &&
	    dist->nbobjs == t->nnodes) {
		for (unsigned i = 0; i < t->nnodes; i++)
			for (unsigned j = 0; j < t->nnodes; j++)
				t->distance[dist->objs[i]->logical_index]
				           [dist->objs[j]->logical_index] =
				    (unsigned)dist->values[i * t->nnodes + j];
	} else {
		for (unsigned i = 0; i < t->nnodes; i++)
			for (unsigned j = 0; j < t->nnodes; j++)
				t->distance[i][j] =
				    nn > 0 ? tree_distance(hw, node[i], node[j]) : 10;
	}
	if (dist && nr == 1)
		hwloc_distances_release(hw, dist);

	/* order[i]: nodes by distance from i, ties by index (stable insertion) */
	for (unsigned i = 0; i < t->nnodes; i++) {
		unsigned n = 0;
		t->order[i][n++] = (unsigned char)i;
		for (unsigned j = 0; j < t->nnodes; j++) {
			if (j == i)
				continue;
			unsigned k = n++;
			while (k > 1 && t->distance[i][t->order[i][k - 1]] > t->distance[i][j]) {
				t->order[i][k] = t->order[i][k - 1];
				k--;
			}
			t->order[i][k] = (unsigned char)j;
		}
	}
	t->ncolours = colours_from_l2(hw);
	return 0;
}

void ntmm__topo_fini(ntmm__topo_t *t)
{
	if (t->hw)
		hwloc_topology_destroy(t->hw);
	free(t->cpu_node);
	memset(t, 0, sizeof(*t));
}

int ntmm__topo_bind(ntmm__topo_t *t, unsigned node, void *addr, size_t len)
{
	if (t->synthetic || t->nnodes < 2)
		return 0;
	hwloc_obj_t o = hwloc_get_obj_by_type(t->hw, HWLOC_OBJ_NUMANODE, node);
	if (!o)
		return -EINVAL;
	if (hwloc_set_area_membind(t->hw, addr, len, o->nodeset, HWLOC_MEMBIND_BIND,
	                           HWLOC_MEMBIND_BYNODESET))
		return -errno;
	return 0;
}
