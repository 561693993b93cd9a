/*
 * The physical layer's life cycle and figures: ntmm__phys_init builds the
 * topology, the per-node structures, the per-CPU caches and the pool (in
 * that order, unwinding on failure so a failed create leaks nothing);
 * fini tears them down; the gauges and per-node info read the published
 * list counts without taking locks.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

static void node_init(ntmm__node_t *n)
{
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	/* adaptive: a bounded spin before the futex sleep; sections are short */
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&n->free_lock, &a);
	pthread_mutex_init(&n->standby_lock, &a);
	pthread_mutex_init(&n->grow_lock, &a);
	pthread_mutexattr_destroy(&a);
	ntmm__plist_t empty = {NTMM__PFN_NONE, NTMM__PFN_NONE, 0};
	for (unsigned c = 0; c < NTMM__MAX_COLOURS; c++)
		n->zeroed[c] = n->free_[c] = empty;
	for (unsigned p = 0; p < NTMM__STANDBY_PRIOS; p++)
		n->standby[p] = empty;
	n->bad = n->modified = n->modified_nowrite = n->modified_mapped = empty;
	atomic_init(&n->zero_wake, NULL);
}

static void node_fini(ntmm__node_t *n)
{
	pthread_mutex_destroy(&n->free_lock);
	pthread_mutex_destroy(&n->standby_lock);
	pthread_mutex_destroy(&n->grow_lock);
}

int ntmm__phys_init(ntmm_engine_t *e)
{
	ntmm__phys_t *ph = &e->phys;
	memset(ph, 0, sizeof(*ph));
	ph->memfd = -1;
	ph->ncpus = e->ncpus;
	int err = ntmm__topo_init(&ph->topo, e->cfg.topology, e->ncpus);
	if (err)
		return err;
	ph->nnodes = ph->topo.nnodes;
	ph->ncolours = ph->topo.ncolours;
	ph->colour_mask = ph->ncolours - 1;
	size_t chunks = e->cfg.physical_bytes >> NTMM__CHUNK_SHIFT;
	if (chunks < ph->nnodes) {
		err =
		    ntmm__error(NTMM_EINVAL,
		                "physical_bytes = %zu gives %zu chunks of 2 MiB for %u NUMA nodes "
		                "(at least one chunk per node)",
		                e->cfg.physical_bytes, chunks, ph->nnodes);
		goto fail_topo;
	}
	if ((e->cfg.physical_bytes >> NTMM__PAGE_SHIFT) >= NTMM__PFN_NONE) {
		err = ntmm__error(NTMM_EINVAL, "physical_bytes = %zu exceeds 2^32 frames",
		                  e->cfg.physical_bytes);
		goto fail_topo;
	}
	ph->nodes = aligned_alloc(NTMM__CACHELINE, sizeof(*ph->nodes) * ph->nnodes);
	ph->pcpu = aligned_alloc(NTMM__CACHELINE, sizeof(*ph->pcpu) * ph->ncpus);
	if (!ph->nodes || !ph->pcpu) {
		err = ntmm__error(NTMM_ENOMEM, "per-node/per-CPU structures");
		goto fail_mem;
	}
	memset(ph->nodes, 0, sizeof(*ph->nodes) * ph->nnodes);
	memset(ph->pcpu, 0, sizeof(*ph->pcpu) * ph->ncpus);
	for (unsigned n = 0; n < ph->nnodes; n++)
		node_init(&ph->nodes[n]);
	for (unsigned c = 0; c < ph->ncpus; c++)
		ph->pcpu[c].node = ph->topo.cpu_node[c];
	if ((err = ntmm__pool_init(e)))
		goto fail_nodes;
	for (unsigned n = 0; n < ph->nnodes; n++) {
		ntmm__node_t *nd = &ph->nodes[n];
		size_t high = nd->nframes / 4;
		if (high > 32768)
			high = 32768;
		if (high < 2 * NTMM__MAG_BATCH)
			high = 2 * NTMM__MAG_BATCH;
		nd->zero_high = high;
	}
	ph->ready = true;
	return 0;

fail_nodes:
	for (unsigned n = 0; n < ph->nnodes; n++)
		node_fini(&ph->nodes[n]);
fail_mem:
	free(ph->nodes);
	free(ph->pcpu);
	ph->nodes = NULL;
	ph->pcpu = NULL;
fail_topo:
	ntmm__topo_fini(&ph->topo);
	return err;
}

void ntmm__phys_fini(ntmm_engine_t *e)
{
	ntmm__phys_t *ph = &e->phys;
	if (!ph->ready)
		return;
	ntmm__pool_fini(e);
	for (unsigned n = 0; n < ph->nnodes; n++)
		node_fini(&ph->nodes[n]);
	free(ph->nodes);
	free(ph->pcpu);
	ntmm__topo_fini(&ph->topo);
	ph->nodes = NULL;
	ph->pcpu = NULL;
	ph->ready = false;
}

size_t ntmm__phys_release_chunks(ntmm_engine_t *e, int node, size_t keep_frames)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__phys_flush_caches(e, node);
	size_t released = 0;
	for (unsigned n = 0; n < ph->nnodes; n++)
		if (node == NTMM__ALLOC_NODE_ANY || (unsigned)node == n)
			released += ntmm__pool_release(e, n, keep_frames);
	return released;
}

/* relaxed loads throughout: gauges are a snapshot, not a consistent cut */
#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void ntmm__phys_node_info(ntmm_engine_t *e, unsigned node, ntmm__node_info_t *out)
{
	ntmm__phys_t *ph = &e->phys;
	ntmm__node_t *n = &ph->nodes[node];
	memset(out, 0, sizeof(*out));
	out->frames = n->nframes;
	out->committed_frames = (size_t)LD(n->committed_chunks) * NTMM__CHUNK_FRAMES;
	out->zeroed = LD(n->zeroed_pub);
	out->free_ = LD(n->free_pub);
	out->bad = LD(n->bad_pub);
	for (unsigned p = 0; p < NTMM__STANDBY_PRIOS; p++)
		out->standby += LD(n->standby_pub[p]);
	out->modified = LD(n->modified_pub);
	out->modified_nowrite = LD(n->modified_nowrite_pub);
	out->modified_mapped = LD(n->modified_mapped_pub);
	for (unsigned c = 0; c < ph->ncpus; c++) {
		if (ph->pcpu[c].node != node)
			continue;
		out->ncpus++;
		out->zeroed += LD(ph->pcpu[c].nzero);
		out->free_ += LD(ph->pcpu[c].nfree);
	}
}

void ntmm__phys_fill_gauges(ntmm_engine_t *e, ntmm_stats_t *out)
{
	ntmm__phys_t *ph = &e->phys;
	if (!ph->ready)
		return;
	out->nodes = ph->nnodes;
	out->total_frames = ph->nframes;
	size_t listed = 0;
	for (unsigned n = 0; n < ph->nnodes; n++) {
		ntmm__node_info_t ni;
		ntmm__phys_node_info(e, n, &ni);
		out->committed_chunk_frames += ni.committed_frames;
		out->zeroed_pages += ni.zeroed;
		out->free_pages += ni.free_;
		out->standby_pages += ni.standby;
		out->modified_pages += ni.modified;
		out->modified_nowrite_pages += ni.modified_nowrite;
		out->modified_mapped_pages += ni.modified_mapped;
		out->bad_pages += ni.bad;
		for (unsigned p = 0; p < NTMM__STANDBY_PRIOS; p++)
			out->standby_by_priority[p] += LD(ph->nodes[n].standby_pub[p]);
	}
	listed = out->zeroed_pages + out->free_pages + out->standby_pages + out->modified_pages +
	         out->modified_nowrite_pages + out->modified_mapped_pages + out->bad_pages;
	/* TRANSITION frames are not on any list: count them in the committed
	   chunks (a scan of the state words; chunks never committed have no
	   entries, released ones only OFFLINE frames) */
	size_t transition = 0;
	for (uint32_t c = 0; c < ph->nchunks; c++) {
		ntmm__pfn_t first = c * NTMM__CHUNK_FRAMES;
		if (!ntmm__pfn_populated(ph, first) ||
		    ntmm__pfn_loc(LD(ph->pfndb[first].state)) == NTMM__LOC_OFFLINE)
			continue;
		for (ntmm__pfn_t f = first; f < first + NTMM__CHUNK_FRAMES; f++)
			transition += ntmm__pfn_loc(LD(ph->pfndb[f].state)) == NTMM__LOC_TRANSITION;
	}
	out->transition_pages = transition;
	size_t used = listed + transition;
	out->active_pages =
	    out->committed_chunk_frames > used ? out->committed_chunk_frames - used : 0;
	/* the per-CPU path counts allocations and frees in its slot */
	for (unsigned c = 0; c < ph->ncpus; c++) {
		out->frame_allocs += LD(ph->pcpu[c].allocs);
		out->frame_frees += LD(ph->pcpu[c].frees);
	}
}
