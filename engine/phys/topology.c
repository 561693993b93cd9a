/*
 * Topology through hwloc: the NUMA nodes, which node each CPU slot belongs
 * to, node distances and the fallback order they give, the page-colour
 * count, and binding a range of the pool to its node. A synthetic hwloc
 * string (ntmm_config_t.topology) replaces the machine, so the multi-node
 * paths are exercised on a one-node box; memory is then not bound.
 */
#include "engine.h"

#include <errno.h>
#include <hwloc.h>
#include <stdlib.h>
#include <string.h>

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

int ntmm__topo_init(ntmm__topo_t *t, const char *synthetic, unsigned ncpus)
{
	memset(t, 0, sizeof(*t));
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
