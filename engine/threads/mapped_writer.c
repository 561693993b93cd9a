/*
 * The mapped page writer: writes dirty pages of mapped files back to their
 * files. It is a thread of its own, separate from the modified page writer,
 * because its writes go through file systems that may fault and need free
 * pages — the modified page writer must never wait for that.
 *
 * Each pass (once a second, or at once when the allocator runs short of
 * frames or a node's mapped Modified list reaches the writer mark, both
 * of which signal its event) writes the dirty file pages that have waited
 * a whole pass, or all of them when available memory is low
 * (ntmm__section_writer_pass, section/writer.c): pages are written after
 * they have been modified for a while, or when memory is needed. Between
 * passes it runs the work items other layers queue (a FIFO; each runs on
 * this thread and may block).
 */
#include "engine.h"
#include "threads/writers.h"

#define MAPPED_PASS_NS (1000ll * 1000 * 1000)

void ntmm__mapped_writer_init(ntmm__mapped_writer_t *w, ntmm_engine_t *e)
{
	w->e = e;
	pthread_mutex_init(&w->lock, NULL);
	w->head = w->tail = NULL;
	atomic_store_explicit(&w->done, 0, memory_order_relaxed);
}

void ntmm__mapped_writer_fini(ntmm__mapped_writer_t *w)
{
	pthread_mutex_destroy(&w->lock);
}

void ntmm__mapped_writer_queue(ntmm__mapped_writer_t *mw, ntmm__mapped_work_t *w)
{
	w->next = NULL;
	pthread_mutex_lock(&mw->lock);
	if (mw->tail)
		mw->tail->next = w;
	else
		mw->head = w;
	mw->tail = w;
	pthread_mutex_unlock(&mw->lock);
	ntmm__thread_wake(&mw->t);
}

static ntmm__mapped_work_t *pop(ntmm__mapped_writer_t *mw)
{
	pthread_mutex_lock(&mw->lock);
	ntmm__mapped_work_t *w = mw->head;
	if (w) {
		mw->head = w->next;
		if (!mw->head)
			mw->tail = NULL;
	}
	pthread_mutex_unlock(&mw->lock);
	return w;
}

void ntmm__mapped_writer_thread(ntmm__thread_t *self, void *arg)
{
	ntmm__mapped_writer_t *mw = arg;
	for (;;) {
		ntmm__mapped_work_t *w;
		while ((w = pop(mw))) {
			w->fn(mw->e, w);
			atomic_fetch_add_explicit(&mw->done, 1, memory_order_relaxed);
		}
		ntmm__section_writer_pass(mw->e);
		if (!ntmm__thread_wait(self, MAPPED_PASS_NS))
			break;
	}
	/* what is dirty at stop is written by the segments' teardown */
	/* items queued after stop are run here, so none is dropped */
	ntmm__mapped_work_t *w;
	while ((w = pop(mw))) {
		w->fn(mw->e, w);
		atomic_fetch_add_explicit(&mw->done, 1, memory_order_relaxed);
	}
}
