/*
 * Paging files: the file list, the per-file slot allocator, growth and
 * shrink, and page I/O by pagefile location. The protocols are described in
 * pagefile.h; the comments here say where each ordering comes from.
 */
#include "io/io.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine.h"
#include "sync/rcu.h"

#define GROW_MIN_STEP 256u /* pages (1 MiB): the smallest growth increment */

static inline ntmm__pagefile_t *pf_at(ntmm__io_t *io, unsigned index)
{
	/* acquire: pairs with the release store that published the file */
	return atomic_load_explicit(&io->files[index], memory_order_acquire);
}

/* Adds to up to three I/O counters. */
static void stat_io(ntmm__io_t *io, bool write, uint64_t pages, uint64_t ios, uint64_t errors)
{
	ntmm__stats_t *s = io->stats;
	if (!s)
		return;
	if (pages)
		ntmm__stat_add_idx(s, write ? NTMM__STAT_pages_written : NTMM__STAT_pages_read,
		                   pages);
	if (ios)
		ntmm__stat_add_idx(s, write ? NTMM__STAT_write_ios : NTMM__STAT_read_ios, ios);
	if (errors)
		ntmm__stat_add_idx(s, NTMM__STAT_io_errors, errors);
}

/* The io-wide totals the commit limit reads without a lock. Writers keep
   size <= max at every instant by ordering their updates: max grows before
   size, size shrinks before max (release stores; ntmm__pagefile_totals'
   acquire loads pair with them). */
static void totals_add(ntmm__io_t *io, int64_t size_delta, int64_t max_delta)
{
	if (max_delta > 0)
		atomic_fetch_add_explicit(&io->max_pages_total, (uint64_t)max_delta,
		                          memory_order_release);
	if (size_delta)
		atomic_fetch_add_explicit(&io->size_pages_total, (uint64_t)size_delta,
		                          memory_order_release);
	if (max_delta < 0)
		atomic_fetch_add_explicit(&io->max_pages_total, (uint64_t)max_delta,
		                          memory_order_release);
}

/* Slots became free (a free, a growth): wake the writer waiting for space,
   once per arm. seq_cst: the caller made the slots free with a seq_cst RMW
   first (Dekker with ntmm__pagefile_space_arm, io.h). */
static void space_signal(ntmm__io_t *io)
{
	if (!atomic_load_explicit(&io->space_wanted, memory_order_seq_cst))
		return;
	/* relaxed: the exchange only elects the one signaller */
	if (!atomic_exchange_explicit(&io->space_wanted, false, memory_order_relaxed))
		return;
	/* acquire: pairs with the release in ntmm__pagefile_set_space_wake */
	ntmm__event_t *ev = atomic_load_explicit(&io->space_wake, memory_order_acquire);
	if (ev)
		ntmm__event_signal(ev);
}

/* The commit charge's floor (io.h), 0 without one. Called after the total
   was lowered by a seq_cst RMW; the callee reads the charge seq_cst. */
static uint64_t commit_floor(ntmm__io_t *io)
{
	return io->commit_floor ? io->commit_floor(io->commit_floor_arg) : 0;
}

/* ---------------------------------------------------------------- bitmap */

static inline uint64_t bits_mask(unsigned from, unsigned count)
{
	return (count >= 64 ? ~0ull : ((1ull << count) - 1)) << from;
}

/* The word w as an allocator sees it: slots at or past size count as used. */
static inline uint64_t word_view(ntmm__pagefile_t *pf, uint64_t w, uint64_t size)
{
	uint64_t v = atomic_load_explicit(&pf->bitmap[w], memory_order_relaxed);
	uint64_t first = w * 64;
	if (first + 64 > size)
		v |= ~bits_mask(0, (unsigned)(size - first));
	return v;
}

/* Clears bits [first, first + n). order: release when freeing slots (pairs
   with the acquire CAS of the next claimer), relaxed when undoing our own
   claim. Returns false if some bit was already clear (a double free). */
static bool clear_range(ntmm__pagefile_t *pf, uint64_t first, uint64_t n, memory_order order)
{
	bool ok = true;
	for (uint64_t s = first, end = first + n; s < end;) {
		unsigned b = (unsigned)(s % 64);
		unsigned cnt = (unsigned)(end - s < 64 - b ? end - s : 64 - b);
		uint64_t m = bits_mask(b, cnt);
		uint64_t old = atomic_fetch_and_explicit(&pf->bitmap[s / 64], ~m, order);
		ok &= (old & m) == m;
		s += cnt;
	}
	return ok;
}

/* Claims bits [first, first + n) word by word; if any bit is taken, undoes
   what it claimed and fails. acquire on success pairs with clear_range's
   release: the previous holder's use of the slots happens before ours. */
static bool claim_range(ntmm__pagefile_t *pf, uint64_t first, uint64_t n)
{
	for (uint64_t s = first, end = first + n; s < end;) {
		unsigned b = (unsigned)(s % 64);
		unsigned cnt = (unsigned)(end - s < 64 - b ? end - s : 64 - b);
		uint64_t m = bits_mask(b, cnt);
		_Atomic uint64_t *w = &pf->bitmap[s / 64];
		uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
		do {
			if (old & m) {
				if (s > first)
					clear_range(pf, first, s - first, memory_order_relaxed);
				return false;
			}
		} while (!atomic_compare_exchange_weak_explicit(
		    w, &old, old | m, memory_order_acquire, memory_order_relaxed));
		s += cnt;
	}
	return true;
}

/* One free slot in word w (below size), or 0. */
static uint64_t claim_one(ntmm__pagefile_t *pf, uint64_t w, uint64_t size)
{
	_Atomic uint64_t *word = &pf->bitmap[w];
	uint64_t first = w * 64;
	uint64_t outside = first + 64 > size ? ~bits_mask(0, (unsigned)(size - first)) : 0;
	uint64_t old = atomic_load_explicit(word, memory_order_relaxed);
	while ((old | outside) != ~0ull) {
		unsigned b = (unsigned)__builtin_ctzll(~(old | outside));
		/* acquire: pairs with clear_range's release (see claim_range) */
		if (atomic_compare_exchange_weak_explicit(
		        word, &old, old | (1ull << b), memory_order_acquire, memory_order_relaxed))
			return first + b;
	}
	return 0;
}

/* How many bitmap words pf_claim reads past the first usable run before it
   settles for the longest run it has seen (512 words = 32768 slots = 128 MiB
   of file): a fragmented file then costs a bounded scan, not one pass over
   the whole bitmap per run length tried. */
#define CLAIM_SCAN_WORDS 512u

/* Claims a run of free slots in pf, next-fit from the hint: the first run of
   `want` slots it meets, or else the longest run of at least `min` slots it
   saw (the scan stops CLAIM_SCAN_WORDS words after it first saw one). Sets
   *got and returns the first slot, or 0 when no run of `min` slots was
   found. Runs do not wrap from the end of the file to its start. A run lost
   to a racing allocator is skipped, so this may miss space under
   contention; callers retry before they conclude the file is full. */
static uint64_t pf_claim(ntmm__pagefile_t *pf, uint64_t want, uint64_t min, uint64_t *got)
{
	/* acquire: pairs with the release store of size_pages in grow/shrink, so
	   the bits below size are the ones that grow cleared */
	uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_acquire);
	uint64_t used = atomic_load_explicit(&pf->used, memory_order_relaxed);
	if (size < 1 + used + min)
		return 0;
	uint64_t nw = (size + 63) / 64;
	uint64_t h = atomic_load_explicit(&pf->hint, memory_order_relaxed);
	uint64_t w0 = h < size ? h / 64 : 0;
	uint64_t run_start = 0, run_len = 0;
	uint64_t best_start = 0, best_len = 0, budget = nw;
	for (uint64_t i = 0; i < nw && budget; i++, budget--) {
		uint64_t w = w0 + i >= nw ? w0 + i - nw : w0 + i;
		if (w == 0)
			run_len = 0;
		uint64_t v = word_view(pf, w, size);
		if (v == ~0ull) {
			run_len = 0;
			continue;
		}
		if (want == 1) {
			uint64_t s = claim_one(pf, w, size);
			if (s) {
				atomic_store_explicit(&pf->hint, s + 1, memory_order_relaxed);
				*got = 1;
				return s;
			}
			continue;
		}
		uint64_t f = ~v; /* 1 = free */
		unsigned pos = 0;
		while (pos < 64) {
			uint64_t rest = f >> pos;
			if (!rest) {
				run_len = 0;
				break;
			}
			unsigned z = (unsigned)__builtin_ctzll(rest);
			if (z) {
				run_len = 0;
				pos += z;
				rest >>= z;
			}
			unsigned ones = ~rest ? (unsigned)__builtin_ctzll(~rest) : 64;
			if (run_len == 0)
				run_start = w * 64 + pos;
			run_len += ones;
			pos += ones;
			if (run_len >= want) {
				if (claim_range(pf, run_start, want)) {
					atomic_store_explicit(&pf->hint, run_start + want,
					                      memory_order_relaxed);
					*got = want;
					return run_start;
				}
				run_len = 0;
			} else if (run_len >= min && run_len > best_len) {
				if (best_len == 0 && budget > CLAIM_SCAN_WORDS)
					budget = CLAIM_SCAN_WORDS;
				best_start = run_start;
				best_len = run_len;
			}
		}
	}
	/* no run of `want`: the longest one seen (it may have grown past the
	   word where it was recorded, but best_len of it were free then) */
	if (best_len && claim_range(pf, best_start, best_len)) {
		atomic_store_explicit(&pf->hint, best_start + best_len, memory_order_relaxed);
		*got = best_len;
		return best_start;
	}
	return 0;
}

/* ---------------------------------------------------------- grow, shrink */

static int errno_to_ntmm(int neg_errno)
{
	return neg_errno == -EBUSY ? NTMM_EBUSY : NTMM_EIO;
}

/* Sets bits [first, first + n) (slots past the published size, which no
   allocator can see: relaxed, published by the size's release store). */
static void set_range(ntmm__pagefile_t *pf, uint64_t first, uint64_t n)
{
	for (uint64_t s = first, end = first + n; s < end;) {
		unsigned b = (unsigned)(s % 64);
		unsigned cnt = (unsigned)(end - s < 64 - b ? end - s : 64 - b);
		atomic_fetch_or_explicit(&pf->bitmap[s / 64], bits_mask(b, cnt),
		                         memory_order_relaxed);
		s += cnt;
	}
}

/*
 * Grows pf by at least `need` slots (not past its maximum). Tries a generous
 * step first (a quarter of the size, at least 1 MiB), then just `need` if
 * the store refuses the step.
 *
 * With slot_out (the allocation path), under the resize lock it first
 * tries to claim a run of `need` free slots (someone may have grown the
 * file meanwhile), and otherwise claims the first `need` new slots before
 * the new size is published — so a shrink cannot take back the space the
 * grower is about to use, and the grower always gets a run when it grows.
 */
static int pf_grow(ntmm__io_t *io, ntmm__pagefile_t *pf, uint64_t need, uint64_t *slot_out)
{
	pthread_mutex_lock(&pf->resize_lock);
	int err = 0;
	uint64_t got;
	if (slot_out && (*slot_out = pf_claim(pf, need, need, &got)))
		goto out;
	uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_relaxed);
	uint64_t max = atomic_load_explicit(&pf->max_pages, memory_order_relaxed);
	if (size >= max || max - size < need) {
		err = ntmm__error(NTMM_ECOMMIT, "paging file %s is at its maximum (%llu pages)",
		                  pf->path, (unsigned long long)max);
		goto out;
	}
	uint64_t step = size / 4 > GROW_MIN_STEP ? size / 4 : GROW_MIN_STEP;
	if (step < need)
		step = need;
	uint64_t target = max - size < step ? max : size + step;
	int r = pf->drv->ops->grow(pf->drv, pf->store, target * NTMM__PF_PAGE);
	if (r < 0 && target > size + need) {
		target = size + need;
		r = pf->drv->ops->grow(pf->drv, pf->store, target * NTMM__PF_PAGE);
	}
	if (r < 0) {
		/* the store cannot give more: stop counting space it does not have */
		atomic_store_explicit(&pf->max_pages, size, memory_order_relaxed);
		totals_add(io, 0, -(int64_t)(max - size));
		err = ntmm__error(NTMM_EIO, "growing paging file %s to %llu bytes: %s", pf->path,
		                  (unsigned long long)target * NTMM__PF_PAGE, strerror(-r));
		goto out;
	}
	/* the new slots' bits may be set from an earlier shrink: clear them,
	   except the run the grower takes (relaxed: published by the release
	   store of size_pages below) */
	uint64_t mine = slot_out ? need : 0;
	if (mine) {
		set_range(pf, size, mine);
		*slot_out = size;
	}
	clear_range(pf, size + mine, target - size - mine, memory_order_relaxed);
	/* release: pairs with pf_claim's acquire load of size_pages */
	atomic_store_explicit(&pf->size_pages, target, memory_order_release);
	atomic_fetch_add_explicit(&pf->grows, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&io->grows_total, 1, memory_order_relaxed);
	totals_add(io, (int64_t)(target - size), 0);
	/* seq_cst: the new slots are free before the writer's flag is read */
	atomic_thread_fence(memory_order_seq_cst);
	space_signal(io);
out:
	pthread_mutex_unlock(&pf->resize_lock);
	return err;
}

/* Claims the free tail of pf (down to its initial size, and by at most
   `budget` slots), cuts the store and publishes the smaller size. Returns
   the slots released or NTMM_EIO. */
static int64_t pf_shrink(ntmm__io_t *io, ntmm__pagefile_t *pf, uint64_t budget)
{
	pthread_mutex_lock(&pf->resize_lock);
	uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_relaxed);
	uint64_t floor = pf->initial_pages;
	if (size > budget && size - budget > floor)
		floor = size - budget;
	uint64_t nsize = size;
	while (nsize > floor) {
		uint64_t w = (nsize - 1) / 64, first = w * 64;
		uint64_t lo = first > floor ? first : floor;
		uint64_t m = bits_mask((unsigned)(lo - first), (unsigned)(nsize - lo));
		_Atomic uint64_t *word = &pf->bitmap[w];
		uint64_t old = atomic_load_explicit(word, memory_order_relaxed);
		uint64_t claim, stop;
		for (;;) {
			uint64_t taken = old & m;
			if (taken) {
				unsigned hi = 63u - (unsigned)__builtin_clzll(taken);
				claim = m & ~bits_mask(0, hi + 1);
				stop = first + hi + 1;
			} else {
				claim = m;
				stop = lo;
			}
			/* relaxed: these slots stay unavailable; nothing is published */
			if (!claim || atomic_compare_exchange_weak_explicit(word, &old, old | claim,
			                                                    memory_order_relaxed,
			                                                    memory_order_relaxed))
				break;
		}
		nsize = stop;
		if (old & m)
			break;
	}
	int64_t released = 0;
	if (nsize < size) {
		/* The commit limit drops first (seq_cst, see io.h), then the
		   charge is read: space the charge needs is given back to the
		   file before anything is cut, so the limit never falls below
		   the charge, not even for a moment. */
		uint64_t cut = size - nsize;
		uint64_t left =
		    atomic_fetch_sub_explicit(&io->size_pages_total, cut, memory_order_seq_cst) -
		    cut;
		uint64_t floor_now = commit_floor(io);
		if (floor_now > left) {
			uint64_t back = floor_now - left < cut ? floor_now - left : cut;
			clear_range(pf, nsize, back, memory_order_relaxed);
			nsize += back;
			cut -= back;
			atomic_fetch_add_explicit(&io->size_pages_total, back,
			                          memory_order_release);
		}
		int r = cut ? pf->drv->ops->shrink(pf->drv, pf->store, nsize * NTMM__PF_PAGE) : 0;
		if (r < 0) {
			clear_range(pf, nsize, cut, memory_order_relaxed);
			atomic_fetch_add_explicit(&io->size_pages_total, cut, memory_order_release);
			released = ntmm__error(NTMM_EIO, "shrinking paging file %s: %s", pf->path,
			                       strerror(-r));
		} else if (cut) {
			/* release: pairs with pf_claim's acquire (readers of the size) */
			atomic_store_explicit(&pf->size_pages, nsize, memory_order_release);
			if (atomic_load_explicit(&pf->hint, memory_order_relaxed) >= nsize)
				atomic_store_explicit(&pf->hint, 1, memory_order_relaxed);
			atomic_fetch_add_explicit(&pf->shrinks, 1, memory_order_relaxed);
			released = (int64_t)cut;
		}
	}
	pthread_mutex_unlock(&pf->resize_lock);
	return released;
}

/* -------------------------------------------------------------- add/remove */

static void pf_destroy(ntmm__pagefile_t *pf)
{
	if (pf->store)
		pf->drv->ops->close(pf->drv, pf->store);
	if (pf->drv)
		atomic_fetch_sub_explicit(&pf->drv->users, 1, memory_order_relaxed);
	pthread_mutex_destroy(&pf->resize_lock);
	free(pf->bitmap);
	free(pf->path);
	free(pf);
}

/*
 * The absolute path that path stands for now: the real path of its
 * directory and its last component, or the whole real path when path names
 * an existing file (a symbolic link to a file then stands for the file).
 * NULL with errno set when it cannot be resolved (a missing directory, a
 * parent that is not a directory, ENOMEM).
 */
static char *resolve_path(const char *path)
{
	char *real = realpath(path, NULL);
	if (real || errno != ENOENT)
		return real;
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (!*name || !strcmp(name, ".") || !strcmp(name, "..")) {
		errno = ENOENT; /* a directory that is not there */
		return NULL;
	}
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return NULL;
	char *rdir = realpath(dir, NULL);
	int saved = errno;
	free(dir);
	if (!rdir) {
		errno = saved;
		return NULL;
	}
	char *out = NULL;
	if (asprintf(&out, "%s%s%s", rdir, strcmp(rdir, "/") ? "/" : "", name) < 0)
		out = NULL, errno = ENOMEM;
	free(rdir);
	return out;
}

/* What a path given to remove/lookup names: its resolution (NULL if it has
   none) and, when it names an existing file, that file's identity. */
typedef struct pf_name {
	char *resolved;
	bool exists;
	struct stat st;
} pf_name_t;

static void pf_name_get(pf_name_t *n, const char *path)
{
	n->resolved = resolve_path(path);
	/* an absolute path whose directory is gone (renamed or removed since
	   the file was added) still names the file by its text */
	if (!n->resolved && path[0] == '/')
		n->resolved = strdup(path);
	n->exists = stat(path, &n->st) == 0;
}

static bool pf_matches(const ntmm__pagefile_t *pf, const pf_name_t *n)
{
	if (n->resolved && !strcmp(pf->path, n->resolved))
		return true;
	return n->exists && pf->has_id && (uint64_t)n->st.st_dev == pf->dev &&
	       (uint64_t)n->st.st_ino == pf->ino;
}

/* The index of the live file n names, or -1 (io->lock held). */
static int index_of_locked(ntmm__io_t *io, const pf_name_t *n)
{
	ntmm__assert_mutex_held(&io->lock);
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[i], memory_order_relaxed);
		if (pf && pf_matches(pf, n))
			return (int)i;
	}
	return -1;
}

int ntmm__pagefile_index_of(ntmm__io_t *io, const char *path)
{
	if (!io || !path)
		return -1;
	pf_name_t n;
	pf_name_get(&n, path);
	pthread_mutex_lock(&io->lock);
	int i = index_of_locked(io, &n);
	pthread_mutex_unlock(&io->lock);
	free(n.resolved);
	return i;
}

int ntmm__pagefile_add(ntmm__io_t *io, const char *path, size_t initial, size_t maximum,
                       const char *driver, unsigned *index_out)
{
	if (!io || !path || !*path)
		return ntmm__error(NTMM_EINVAL, "paging file path is NULL or empty");
	uint64_t ipages = initial / NTMM__PF_PAGE, mpages = maximum / NTMM__PF_PAGE;
	if (ipages < 2)
		ipages = 2;
	if (mpages < 2 || mpages >= NTMM__PF_MAX_SLOTS)
		return ntmm__error(NTMM_EINVAL,
		                   "paging file %s: maximum %zu bytes is outside [8 KiB, 16 TiB)",
		                   path, maximum);
	if (ipages > mpages)
		return ntmm__error(NTMM_EINVAL, "paging file %s: initial %zu > maximum %zu", path,
		                   initial, maximum);

	pthread_mutex_lock(&io->lock);
	int err;
	ntmm__bsdriver_t *drv = ntmm__io_driver_find(io, driver ? driver : "file");
	if (!drv) {
		err = ntmm__error(NTMM_EINVAL, "no backing-store driver named %s", driver);
		goto unlock;
	}
	pf_name_t name = {.resolved = resolve_path(path)};
	if (!name.resolved) {
		int why = errno;
		err = ntmm__error(why == ENOMEM ? NTMM_ENOMEM : NTMM_EIO,
		                  "paging file %s: cannot resolve its directory: %s", path,
		                  strerror(why));
		goto unlock;
	}
	name.exists = stat(path, &name.st) == 0;
	int dup = index_of_locked(io, &name);
	if (dup >= 0) {
		err = ntmm__error(NTMM_EINVAL, "%s is already paging file %d (%s)", path, dup,
		                  name.resolved);
		free(name.resolved);
		goto unlock;
	}
	unsigned idx = NTMM__PF_MAX_FILES;
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES && idx == NTMM__PF_MAX_FILES; i++)
		if (!atomic_load_explicit(&io->files[i], memory_order_relaxed))
			idx = i;
	if (idx == NTMM__PF_MAX_FILES) {
		free(name.resolved);
		err = ntmm__error(NTMM_EBUSY, "already %u paging files", NTMM__PF_MAX_FILES);
		goto unlock;
	}

	ntmm__pagefile_t *pf = calloc(1, sizeof(*pf));
	if (!pf) {
		free(name.resolved);
		err = ntmm__error(NTMM_ENOMEM, "paging file allocation");
		goto unlock;
	}
	pthread_mutex_init(&pf->resize_lock, NULL);
	pf->index = idx;
	pf->initial_pages = ipages;
	pf->max_cfg_pages = mpages;
	pf->nwords = (mpages + 63) / 64;
	/* calloc: for large maxima this is an untouched mapping; only words the
	   file grows into are ever written */
	pf->bitmap = calloc(pf->nwords, sizeof(*pf->bitmap));
	pf->path = name.resolved;
	if (!pf->bitmap) {
		pf_destroy(pf);
		err = ntmm__error(NTMM_ENOMEM, "paging file allocation");
		goto unlock;
	}
	int r = drv->ops->open(drv, io, pf->path, &pf->store);
	if (r < 0) {
		pf->store = NULL;
		err = ntmm__error(errno_to_ntmm(r), "paging file %s: cannot create: %s", path,
		                  r == -EBUSY    ? "in use by another engine"
		                  : r == -EEXIST ? "a file that is not a paging file is there "
		                                   "(left as it is)"
		                                 : strerror(-r));
		pf_destroy(pf);
		goto unlock;
	}
	pf->drv = drv;
	pf->has_id =
	    drv->ops->identify && drv->ops->identify(drv, pf->store, &pf->dev, &pf->ino) == 0;
	for (int w = 0; w < 2; w++)
		pf->direct_fd[w] =
		    drv->ops->direct_fd ? drv->ops->direct_fd(drv, pf->store, w) : -1;
	atomic_fetch_add_explicit(&drv->users, 1, memory_order_relaxed);
	r = drv->ops->grow(drv, pf->store, ipages * NTMM__PF_PAGE);
	if (r < 0) {
		pf_destroy(pf);
		err = ntmm__error(NTMM_EIO, "paging file %s: cannot extend to %llu bytes: %s", path,
		                  (unsigned long long)ipages * NTMM__PF_PAGE, strerror(-r));
		goto unlock;
	}
	atomic_store_explicit(&pf->bitmap[0], 1, memory_order_relaxed); /* slot 0 reserved */
	atomic_store_explicit(&pf->size_pages, ipages, memory_order_relaxed);
	atomic_store_explicit(&pf->max_pages, mpages, memory_order_relaxed);
	atomic_store_explicit(&pf->hint, 1, memory_order_relaxed);
	/* release: publishes the initialized file; pairs with pf_at's acquire */
	atomic_store_explicit(&io->files[idx], pf, memory_order_release);
	totals_add(io, (int64_t)ipages - 1, (int64_t)mpages - 1);
	/* seq_cst: the new file's slots are free before the writer's flag is
	   read (io.h) */
	atomic_thread_fence(memory_order_seq_cst);
	space_signal(io);
	if (index_out)
		*index_out = idx;
	err = 0;
unlock:
	pthread_mutex_unlock(&io->lock);
	return err;
}

/* Removes file idx unless it still holds pages or the commit charge needs
   its space (NTMM_EBUSY; with NTMM__PF_REMOVE_KEEP_DRAINING it is left
   draining). io->lock held. */
static int remove_locked(ntmm__io_t *io, unsigned idx, unsigned flags)
{
	ntmm__assert_mutex_held(&io->lock);
	ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[idx], memory_order_relaxed);
	/* relaxed: the grace period below orders it before every allocator
	   that starts later, and waits out every one that started earlier */
	atomic_store_explicit(&pf->draining, true, memory_order_relaxed);
	ntmm__rcu_synchronize();
	uint64_t used = atomic_load_explicit(&pf->used, memory_order_relaxed);
	if (used) {
		if (!(flags & NTMM__PF_REMOVE_KEEP_DRAINING))
			atomic_store_explicit(&pf->draining, false, memory_order_relaxed);
		return ntmm__error(NTMM_EBUSY, "paging file %s still holds %llu pages%s", pf->path,
		                   (unsigned long long)used,
		                   flags & NTMM__PF_REMOVE_KEEP_DRAINING ? " (left draining)" : "");
	}
	/* Its space leaves the commit limit before the charge is read (seq_cst,
	   see io.h): a charge that needs it keeps the file. No resize of pf
	   can run now (the grace period waited out allocators, and io->lock
	   keeps explicit grow/shrink out). */
	uint64_t slots = atomic_load_explicit(&pf->size_pages, memory_order_relaxed) - 1;
	uint64_t left =
	    atomic_fetch_sub_explicit(&io->size_pages_total, slots, memory_order_seq_cst) - slots;
	uint64_t need = commit_floor(io);
	if (need > left) {
		atomic_fetch_add_explicit(&io->size_pages_total, slots, memory_order_release);
		if (!(flags & NTMM__PF_REMOVE_KEEP_DRAINING))
			atomic_store_explicit(&pf->draining, false, memory_order_relaxed);
		return ntmm__error(NTMM_EBUSY,
		                   "the commit charge needs paging file %s (%llu slots needed, "
		                   "%llu left without it)",
		                   pf->path, (unsigned long long)need, (unsigned long long)left);
	}
	atomic_store_explicit(&io->files[idx], NULL, memory_order_relaxed);
	ntmm__rcu_synchronize(); /* no reader still holds pf */
	totals_add(io, 0,
	           -(int64_t)(atomic_load_explicit(&pf->max_pages, memory_order_relaxed) - 1));
	pf_destroy(pf);
	return 0;
}

int ntmm__pagefile_remove_index(ntmm__io_t *io, unsigned index, unsigned flags)
{
	if (!io || index >= NTMM__PF_MAX_FILES)
		return ntmm__error(NTMM_EINVAL, "paging file index %u", index);
	pthread_mutex_lock(&io->lock);
	int err;
	if (!atomic_load_explicit(&io->files[index], memory_order_relaxed))
		err = ntmm__error(NTMM_EINVAL, "no paging file %u", index);
	else
		err = remove_locked(io, index, flags);
	pthread_mutex_unlock(&io->lock);
	return err;
}

void ntmm__pagefile_remove_all(ntmm__io_t *io)
{
	ntmm__pagefile_t *gone[NTMM__PF_MAX_FILES];
	unsigned n = 0;
	pthread_mutex_lock(&io->lock);
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[i], memory_order_relaxed);
		if (pf) {
			atomic_store_explicit(&io->files[i], NULL, memory_order_relaxed);
			gone[n++] = pf;
		}
	}
	pthread_mutex_unlock(&io->lock);
	if (n)
		ntmm__rcu_synchronize();
	for (unsigned i = 0; i < n; i++)
		pf_destroy(gone[i]);
	atomic_store_explicit(&io->size_pages_total, 0, memory_order_relaxed);
	atomic_store_explicit(&io->max_pages_total, 0, memory_order_relaxed);
}

int ntmm__pagefile_remove(ntmm__io_t *io, const char *path, unsigned flags)
{
	if (!io || !path)
		return ntmm__error(NTMM_EINVAL, "paging file path is NULL");
	pf_name_t n;
	pf_name_get(&n, path);
	pthread_mutex_lock(&io->lock);
	int i = index_of_locked(io, &n);
	int err = i < 0 ? ntmm__error(NTMM_EINVAL, "%s is not a paging file of this engine", path)
	                : remove_locked(io, (unsigned)i, flags);
	pthread_mutex_unlock(&io->lock);
	free(n.resolved);
	return err;
}

/* ------------------------------------------------------------- allocation */

static int alloc_common(ntmm__io_t *io, size_t want, size_t min, ntmm__pfloc_t *loc, size_t *got,
                        bool may_grow)
{
	if (!io || !loc || !got || min < 1 || min > want || want > NTMM__PF_MAX_CLUSTER)
		return ntmm__error(NTMM_EINVAL, "pagefile alloc: want %zu min %zu", want, min);
	ntmm__assert(ntmm__rcu_thread_registered());
	unsigned start = atomic_load_explicit(&io->rotor, memory_order_relaxed);
	uint64_t slot = 0;
	size_t n = want;
	unsigned idx = 0;
	ntmm__pagefile_t *pf = NULL;
	int err = 0;

	ntmm__rcu_read_lock();
	/* two rounds: the first may lose runs to racing allocators */
	for (int round = 0; round < 2 && !slot; round++) {
		for (unsigned k = 0; k < NTMM__PF_MAX_FILES && !slot; k++) {
			idx = (start + k) % NTMM__PF_MAX_FILES;
			pf = pf_at(io, idx);
			/* relaxed: remove's grace period orders the mark before every
			   allocation that starts after it */
			if (!pf || atomic_load_explicit(&pf->draining, memory_order_relaxed))
				continue;
			uint64_t claimed = 0;
			slot = pf_claim(pf, want, min, &claimed);
			n = (size_t)claimed;
		}
	}
	/* every file is full: grow one, then claim from it */
	for (unsigned k = 0; may_grow && !slot && k < NTMM__PF_MAX_FILES; k++) {
		idx = (start + k) % NTMM__PF_MAX_FILES;
		pf = pf_at(io, idx);
		if (!pf || atomic_load_explicit(&pf->draining, memory_order_relaxed))
			continue;
		n = want;
		int g = pf_grow(io, pf, want, &slot);
		if (g == NTMM_EIO)
			err = g; /* keep the disk's reason for the caller */
	}
	ntmm__rcu_read_unlock();

	if (!slot) {
		if (err == NTMM_EIO)
			return ntmm__error(NTMM_ECOMMIT, "no paging-file space: %s",
			                   ntmm_error_detail());
		return ntmm__error(NTMM_ECOMMIT,
		                   "no paging-file space for %zu pages: every file full%s", min,
		                   may_grow ? " and at its maximum" : "");
	}
	if (idx != start % NTMM__PF_MAX_FILES)
		atomic_store_explicit(&io->rotor, idx, memory_order_relaxed);
	atomic_fetch_add_explicit(&pf->used, n, memory_order_relaxed);
	*loc = ntmm__pfloc_make(idx, slot);
	*got = n;
	return 0;
}

int ntmm__pagefile_alloc(ntmm__io_t *io, size_t want, size_t min, ntmm__pfloc_t *loc, size_t *got)
{
	return alloc_common(io, want, min, loc, got, true);
}

int ntmm__pagefile_alloc_nogrow(ntmm__io_t *io, size_t want, size_t min, ntmm__pfloc_t *loc,
                                size_t *got)
{
	return alloc_common(io, want, min, loc, got, false);
}

int ntmm__pagefile_growable(ntmm__io_t *io)
{
	int found = -1;
	uint64_t best = 0;
	ntmm__rcu_read_lock();
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		ntmm__pagefile_t *pf = pf_at(io, i);
		if (!pf || atomic_load_explicit(&pf->draining, memory_order_relaxed))
			continue;
		/* relaxed: a hint; the grower rechecks under resize_lock */
		uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_relaxed);
		uint64_t max = atomic_load_explicit(&pf->max_pages, memory_order_relaxed);
		if (max > size && max - size > best) {
			best = max - size;
			found = (int)i;
		}
	}
	ntmm__rcu_read_unlock();
	return found;
}

void ntmm__pagefile_free(ntmm__io_t *io, ntmm__pfloc_t loc, size_t n)
{
	ntmm__pagefile_t *pf = pf_at(io, ntmm__pfloc_file(loc));
	uint64_t slot = ntmm__pfloc_slot(loc);
	ntmm__assert(pf && slot >= 1 && n >= 1);
	ntmm__assert(slot + n <= atomic_load_explicit(&pf->size_pages, memory_order_relaxed));
	bool ok = clear_range(pf, slot, n, memory_order_release);
	ntmm__assert(ok); /* freeing a slot that was not held */
	(void)ok;
	/* seq_cst: Dekker with ntmm__pagefile_space_arm (io.h); on x86 the
	   same locked instruction as a relaxed one */
	atomic_fetch_sub_explicit(&pf->used, n, memory_order_seq_cst);
	space_signal(io);
}

uint64_t ntmm__pagefile_free_slots(ntmm__io_t *io, uint64_t *room)
{
	uint64_t free_now = 0, grow = 0;
	ntmm__rcu_read_lock();
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		ntmm__pagefile_t *pf = pf_at(io, i);
		/* relaxed: a policy's estimate */
		if (!pf || atomic_load_explicit(&pf->draining, memory_order_relaxed))
			continue;
		uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_relaxed);
		uint64_t max = atomic_load_explicit(&pf->max_pages, memory_order_relaxed);
		uint64_t used = atomic_load_explicit(&pf->used, memory_order_relaxed);
		free_now += size > used + 1 ? size - used - 1 : 0;
		grow += max > size ? max - size : 0;
	}
	ntmm__rcu_read_unlock();
	if (room)
		*room = free_now + grow;
	return free_now;
}

bool ntmm__pagefile_space_arm(ntmm__io_t *io)
{
	/* seq_cst store, then seq_cst loads of every file's count: Dekker with
	   the free's seq_cst RMW and its seq_cst load of the flag (io.h) */
	atomic_store_explicit(&io->space_wanted, true, memory_order_seq_cst);
	/* also orders the store before the file-pointer loads below (a file
	   added meanwhile: its adder fences, then reads the flag) */
	atomic_thread_fence(memory_order_seq_cst);
	bool none = true;
	ntmm__rcu_read_lock();
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES && none; i++) {
		ntmm__pagefile_t *pf = pf_at(io, i);
		if (!pf || atomic_load_explicit(&pf->draining, memory_order_relaxed))
			continue;
		uint64_t used = atomic_load_explicit(&pf->used, memory_order_seq_cst);
		uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_seq_cst);
		none = size <= used + 1;
	}
	ntmm__rcu_read_unlock();
	return none;
}

void ntmm__pagefile_set_space_wake(ntmm__io_t *io, ntmm__event_t *ev)
{
	/* release: the event is initialised before a signaller loads it */
	atomic_store_explicit(&io->space_wake, ev, memory_order_release);
}

void ntmm__pagefile_set_commit_floor(ntmm__io_t *io, uint64_t (*floor)(void *arg), void *arg)
{
	pthread_mutex_lock(&io->lock); /* readers (shrink, remove) hold it */
	io->commit_floor = floor;
	io->commit_floor_arg = arg;
	pthread_mutex_unlock(&io->lock);
}

/* -------------------------------------------------------------------- I/O */

static int check_range(ntmm__io_t *io, const ntmm__pfio_t *e, ntmm__pagefile_t **out)
{
	unsigned f = ntmm__pfloc_file(e->loc);
	uint64_t slot = ntmm__pfloc_slot(e->loc);
	ntmm__pagefile_t *pf = pf_at(io, f);
	if (!pf)
		return ntmm__error(NTMM_EINVAL, "paging file %u does not exist", f);
	if (!e->pages || e->npages < 1 || e->npages > NTMM__PF_MAX_CLUSTER)
		return ntmm__error(NTMM_EINVAL, "%u pages (1..%u)", e->npages,
		                   NTMM__PF_MAX_CLUSTER);
	uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_acquire);
	if (slot < 1 || slot + e->npages > size)
		return ntmm__error(NTMM_EINVAL, "slots %llu..+%u outside paging file %u (%llu)",
		                   (unsigned long long)slot, e->npages, f,
		                   (unsigned long long)size);
	*out = pf;
	return 0;
}

/* The NTMM_EIO (with detail) for a request that did not move all its bytes. */
static int io_failed(const ntmm__pagefile_t *pf, bool write, const ntmm__pfio_t *e,
                     const ntmm__ioreq_t *q)
{
	const char *what = write ? "write" : "read";
	unsigned long long slot = (unsigned long long)ntmm__pfloc_slot(e->loc);
	if (q->res < 0)
		return ntmm__error(NTMM_EIO, "%s of %u pages at %s slot %llu: %s", what, e->npages,
		                   pf->path, slot, strerror((int)-q->res));
	return ntmm__error(NTMM_EIO, "short %s at %s slot %llu: %zd of %zu bytes", what, pf->path,
	                   slot, q->res, q->len);
}

/* One cluster: the hard-fault and single-cluster write path, kept short. */
static int pf_io_one(ntmm__io_t *io, bool write, ntmm__pfio_t *e)
{
	ntmm__pagefile_t *pf;
	if ((e->result = check_range(io, e, &pf)))
		return e->result;
	int fd = pf->direct_fd[write];
	if (e->npages == 1 && fd >= 0) {
		/* one page, and the driver would only have handed it to the
		   system call: make the call here (a hard fault's read). Any
		   failure or short transfer takes the general path below, which
		   retries and reports it. */
		off_t off = (off_t)(ntmm__pfloc_slot(e->loc) * NTMM__PF_PAGE);
		if (ntmm__io_sys_rw(write, fd, e->pages[0], NTMM__PF_PAGE, off) == NTMM__PF_PAGE) {
			stat_io(io, write, 1, 1, 0);
			return e->result = 0;
		}
	}
	struct iovec iov_stack[16],
	    *iov = e->npages <= 16 ? iov_stack : malloc(e->npages * sizeof(*iov));
	if (!iov)
		return e->result = ntmm__error(NTMM_ENOMEM, "pagefile io: %u pages", e->npages);
	for (unsigned p = 0; p < e->npages; p++) {
		iov[p].iov_base = e->pages[p];
		iov[p].iov_len = NTMM__PF_PAGE;
	}
	ntmm__ioreq_t q = {.fd = -1,
	                   .write = write,
	                   .offset = ntmm__pfloc_slot(e->loc) * NTMM__PF_PAGE,
	                   .iov = iov,
	                   .iovcnt = e->npages,
	                   .len = (size_t)e->npages * NTMM__PF_PAGE};
	if (write)
		pf->drv->ops->write(pf->drv, pf->store, &q, 1);
	else
		pf->drv->ops->read(pf->drv, pf->store, &q, 1);
	bool ok = q.res >= 0 && (size_t)q.res == q.len;
	stat_io(io, write, ok ? e->npages : 0, 1, !ok);
	e->result = ok ? 0 : io_failed(pf, write, e, &q);
	if (iov != iov_stack)
		free(iov);
	return e->result;
}

#define STACK_REQS 8u
#define STACK_IOVS 64u

int ntmm__pagefile_io(ntmm__io_t *io, bool write, ntmm__pfio_t *v, unsigned n)
{
	if (!io || (!v && n))
		return ntmm__error(NTMM_EINVAL, "pagefile io: NULL");
	if (n == 1)
		return pf_io_one(io, write, v);
	ntmm__ioreq_t req_stack[STACK_REQS];
	unsigned map_stack[STACK_REQS];
	struct iovec iov_stack[STACK_IOVS];
	ntmm__pagefile_t *pfs_stack[STACK_REQS];
	size_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += v[i].npages;
	ntmm__ioreq_t *reqs = n <= STACK_REQS ? req_stack : malloc(n * sizeof(*reqs));
	unsigned *map = n <= STACK_REQS ? map_stack : malloc(n * sizeof(*map));
	ntmm__pagefile_t **pfs = n <= STACK_REQS ? pfs_stack : malloc(n * sizeof(*pfs));
	struct iovec *iov = total <= STACK_IOVS ? iov_stack : malloc(total * sizeof(*iov));
	int first_err = 0;
	if (!reqs || !map || !pfs || !iov) {
		first_err = ntmm__error(NTMM_ENOMEM, "pagefile io: %u requests", n);
		for (unsigned i = 0; i < n; i++)
			v[i].result = first_err;
		goto out;
	}

	/* validate, then order the requests by file (counting sort) so each
	   file's driver gets one batch */
	unsigned count[NTMM__PF_MAX_FILES] = {0}, valid = 0;
	for (unsigned i = 0; i < n; i++) {
		v[i].result = check_range(io, &v[i], &pfs[i]);
		if (v[i].result) {
			if (!first_err)
				first_err = v[i].result;
			continue;
		}
		count[ntmm__pfloc_file(v[i].loc)]++;
		valid++;
	}
	unsigned pos[NTMM__PF_MAX_FILES], sum = 0;
	for (unsigned f = 0; f < NTMM__PF_MAX_FILES; f++)
		pos[f] = sum, sum += count[f];
	size_t io_at = 0;
	for (unsigned i = 0; i < n; i++) {
		if (v[i].result)
			continue;
		unsigned k = pos[ntmm__pfloc_file(v[i].loc)]++;
		map[k] = i;
		ntmm__ioreq_t *q = &reqs[k];
		q->fd = -1;
		q->write = write;
		q->offset = ntmm__pfloc_slot(v[i].loc) * NTMM__PF_PAGE;
		q->iov = &iov[io_at];
		q->iovcnt = v[i].npages;
		q->len = (size_t)v[i].npages * NTMM__PF_PAGE;
		q->res = 0;
		for (unsigned p = 0; p < v[i].npages; p++) {
			iov[io_at + p].iov_base = v[i].pages[p];
			iov[io_at + p].iov_len = NTMM__PF_PAGE;
		}
		io_at += v[i].npages;
	}
	for (unsigned k = 0; k < valid;) {
		ntmm__pagefile_t *pf = pfs[map[k]];
		unsigned f = pf->index, cnt = count[f];
		if (write)
			pf->drv->ops->write(pf->drv, pf->store, &reqs[k], cnt);
		else
			pf->drv->ops->read(pf->drv, pf->store, &reqs[k], cnt);
		k += cnt;
	}
	uint64_t pages_ok = 0, errors = 0;
	for (unsigned k = 0; k < valid; k++) {
		ntmm__pfio_t *e = &v[map[k]];
		ntmm__ioreq_t *q = &reqs[k];
		if (q->res >= 0 && (size_t)q->res == q->len) {
			pages_ok += e->npages;
			continue;
		}
		errors++;
		e->result = io_failed(pfs[map[k]], write, e, q);
	}
	for (unsigned i = 0; i < n && !first_err; i++)
		first_err = v[i].result;
	stat_io(io, write, pages_ok, valid, errors);
out:
	if (reqs != req_stack)
		free(reqs);
	if (map != map_stack)
		free(map);
	if (pfs != pfs_stack)
		free(pfs);
	if (iov != iov_stack)
		free(iov);
	return first_err;
}

int ntmm__pagefile_write(ntmm__io_t *io, ntmm__pfloc_t loc, void *const *pages, size_t n)
{
	ntmm__pfio_t e = {.loc = loc, .pages = pages, .npages = n > UINT_MAX ? 0 : (unsigned)n};
	return ntmm__pagefile_io(io, true, &e, 1);
}

int ntmm__pagefile_read(ntmm__io_t *io, ntmm__pfloc_t loc, void *const *pages, size_t n)
{
	ntmm__pfio_t e = {.loc = loc, .pages = pages, .npages = n > UINT_MAX ? 0 : (unsigned)n};
	return ntmm__pagefile_io(io, false, &e, 1);
}

int ntmm__pagefile_flush(ntmm__io_t *io)
{
	int err = 0;
	pthread_mutex_lock(&io->lock);
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[i], memory_order_relaxed);
		if (!pf)
			continue;
		int r = pf->drv->ops->flush(pf->drv, pf->store);
		if (r < 0 && !err)
			err = ntmm__error(NTMM_EIO, "flushing paging file %s: %s", pf->path,
			                  strerror(-r));
	}
	pthread_mutex_unlock(&io->lock);
	return err;
}

int ntmm__pagefile_grow(ntmm__io_t *io, unsigned index, uint64_t pages)
{
	if (!io || index >= NTMM__PF_MAX_FILES || pages == 0)
		return ntmm__error(NTMM_EINVAL, "grow: paging file %u by %llu pages", index,
		                   (unsigned long long)pages);
	pthread_mutex_lock(&io->lock); /* keeps the file from being removed */
	ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[index], memory_order_relaxed);
	int err = pf ? pf_grow(io, pf, pages, NULL)
	             : ntmm__error(NTMM_EINVAL, "no paging file %u", index);
	pthread_mutex_unlock(&io->lock);
	return err;
}

int ntmm__pagefile_grow_upto(ntmm__io_t *io, unsigned index, uint64_t pages)
{
	if (index >= NTMM__PF_MAX_FILES || pages == 0)
		return ntmm__error(NTMM_EINVAL, "grow: paging file %u by %llu pages", index,
		                   (unsigned long long)pages);
	pthread_mutex_lock(&io->lock); /* keeps the file from being removed */
	ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[index], memory_order_relaxed);
	int err;
	if (!pf) {
		err = ntmm__error(NTMM_EINVAL, "no paging file %u", index);
	} else {
		/* relaxed: a clamp; pf_grow rechecks under resize_lock (a racing
		   growth can make it refuse, and the asker asks again) */
		uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_relaxed);
		uint64_t max = atomic_load_explicit(&pf->max_pages, memory_order_relaxed);
		uint64_t room = max > size ? max - size : 0;
		err = pf_grow(io, pf, room && pages > room ? room : pages, NULL);
	}
	pthread_mutex_unlock(&io->lock);
	return err;
}

int64_t ntmm__pagefile_shrink(ntmm__io_t *io, uint64_t keep)
{
	int64_t total = 0;
	int err = 0;
	pthread_mutex_lock(&io->lock);
	uint64_t size, max;
	ntmm__pagefile_totals(io, &size, &max);
	uint64_t budget = size > keep ? size - keep : 0;
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES && budget; i++) {
		ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[i], memory_order_relaxed);
		if (!pf)
			continue;
		int64_t r = pf_shrink(io, pf, budget);
		if (r < 0) {
			err = (int)r;
		} else {
			total += r;
			budget -= (uint64_t)r;
		}
	}
	pthread_mutex_unlock(&io->lock);
	return err ? err : total;
}

unsigned ntmm__pagefile_retry_growth(ntmm__io_t *io)
{
	unsigned n = 0;
	pthread_mutex_lock(&io->lock); /* keeps the files from being removed */
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[i], memory_order_relaxed);
		/* relaxed: io->lock orders it with remove */
		if (!pf || atomic_load_explicit(&pf->draining, memory_order_relaxed))
			continue;
		pthread_mutex_lock(&pf->resize_lock);
		uint64_t max = atomic_load_explicit(&pf->max_pages, memory_order_relaxed);
		if (max < pf->max_cfg_pages) {
			atomic_store_explicit(&pf->max_pages, pf->max_cfg_pages,
			                      memory_order_relaxed);
			totals_add(io, 0, (int64_t)(pf->max_cfg_pages - max));
			n++;
		}
		pthread_mutex_unlock(&pf->resize_lock);
	}
	pthread_mutex_unlock(&io->lock);
	return n;
}

/* ------------------------------------------------------------------ totals */

void ntmm__pagefile_totals(ntmm__io_t *io, uint64_t *size, uint64_t *max)
{
	/* max, size, max again: if max did not move, size was read while that
	   max held, and size <= max then (see totals_add). Bounded retries; a
	   last answer is clamped. */
	uint64_t m, s;
	for (int tries = 0;; tries++) {
		m = atomic_load_explicit(&io->max_pages_total, memory_order_acquire);
		s = atomic_load_explicit(&io->size_pages_total, memory_order_acquire);
		if (atomic_load_explicit(&io->max_pages_total, memory_order_acquire) == m ||
		    tries == 8)
			break;
	}
	*size = s < m ? s : m;
	*max = m;
}

uint64_t ntmm__pagefile_total_pages(ntmm__io_t *io)
{
	return atomic_load_explicit(&io->size_pages_total, memory_order_acquire);
}

uint64_t ntmm__pagefile_grow_count(ntmm__io_t *io)
{
	return atomic_load_explicit(&io->grows_total, memory_order_relaxed);
}

uint64_t ntmm__pagefile_obtained_sc(ntmm__io_t *io)
{
	return atomic_load_explicit(&io->size_pages_total, memory_order_seq_cst);
}

uint64_t ntmm__pagefile_maximum_pages(ntmm__io_t *io)
{
	return atomic_load_explicit(&io->max_pages_total, memory_order_acquire);
}

uint64_t ntmm__pagefile_used_pages(ntmm__io_t *io)
{
	uint64_t sum = 0;
	pthread_mutex_lock(&io->lock);
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[i], memory_order_relaxed);
		if (pf)
			sum += atomic_load_explicit(&pf->used, memory_order_relaxed);
	}
	pthread_mutex_unlock(&io->lock);
	return sum;
}

int ntmm__pagefile_audit(ntmm__io_t *io)
{
	int bad = 0;
	uint64_t size_sum = 0, max_sum = 0;
	pthread_mutex_lock(&io->lock);
	for (unsigned i = 0; i < NTMM__PF_MAX_FILES; i++) {
		ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[i], memory_order_relaxed);
		if (!pf)
			continue;
		pthread_mutex_lock(&pf->resize_lock);
		uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_relaxed);
		uint64_t max = atomic_load_explicit(&pf->max_pages, memory_order_relaxed);
		uint64_t used = atomic_load_explicit(&pf->used, memory_order_relaxed);
		uint64_t set = 0;
		size_sum += size - 1;
		max_sum += max - 1;
		for (uint64_t w = 0; w * 64 < size; w++) {
			uint64_t v = atomic_load_explicit(&pf->bitmap[w], memory_order_relaxed);
			if ((w + 1) * 64 > size)
				v &= bits_mask(0, (unsigned)(size - w * 64));
			set += (uint64_t)__builtin_popcountll(v);
		}
		if (!(atomic_load_explicit(&pf->bitmap[0], memory_order_relaxed) & 1)) {
			fprintf(stderr, "ntmm audit: paging file %u: slot 0 not reserved\n", i);
			bad = 1;
		}
		if (set != used + 1) {
			fprintf(stderr,
			        "ntmm audit: paging file %u: %llu slots marked, %llu used + 1\n", i,
			        (unsigned long long)set, (unsigned long long)used);
			bad = 1;
		}
		if (size < pf->initial_pages || size > max || max > pf->max_cfg_pages) {
			fprintf(stderr,
			        "ntmm audit: paging file %u: size %llu outside [%llu, %llu]\n", i,
			        (unsigned long long)size, (unsigned long long)pf->initial_pages,
			        (unsigned long long)max);
			bad = 1;
		}
		pthread_mutex_unlock(&pf->resize_lock);
	}
	if (size_sum != ntmm__pagefile_total_pages(io) ||
	    max_sum != ntmm__pagefile_maximum_pages(io)) {
		fprintf(stderr, "ntmm audit: paging-file totals %llu/%llu, files say %llu/%llu\n",
		        (unsigned long long)ntmm__pagefile_total_pages(io),
		        (unsigned long long)ntmm__pagefile_maximum_pages(io),
		        (unsigned long long)size_sum, (unsigned long long)max_sum);
		bad = 1;
	}
	pthread_mutex_unlock(&io->lock);
	return bad ? ntmm__error(NTMM_EINVAL, "paging-file audit failed") : 0;
}

#define LEAKS_SHOWN 8u /* leaked slots printed per file */

void ntmm__pagefile_check_refs(ntmm__io_t *io, const ntmm__pfloc_t *refs, size_t n,
                               ntmm__pf_badref_fn bad, void *arg, uint64_t *leaks)
{
	*leaks = 0;
	size_t i = 0;
	pthread_mutex_lock(&io->lock);
	for (unsigned f = 0; f < NTMM__PF_MAX_FILES; f++) {
		size_t k = i;
		while (i < n && ntmm__pfloc_file(refs[i]) == f)
			i++;
		/* relaxed: io->lock orders the list */
		ntmm__pagefile_t *pf = atomic_load_explicit(&io->files[f], memory_order_relaxed);
		if (!pf) {
			for (; k < i; k++)
				bad(arg, k, NTMM__PF_REF_NO_FILE);
			continue;
		}
		pthread_mutex_lock(&pf->resize_lock);
		uint64_t size = atomic_load_explicit(&pf->size_pages, memory_order_relaxed);
		uint64_t file_leaks = 0;
		for (uint64_t w = 0; w * 64 < size; w++) {
			/* relaxed: exact only at rest (see the header) */
			uint64_t inuse = atomic_load_explicit(&pf->bitmap[w], memory_order_relaxed);
			if ((w + 1) * 64 > size)
				inuse &= bits_mask(0, (unsigned)(size - w * 64));
			if (w == 0)
				inuse &= ~1ull; /* slot 0: reserved, nobody's */
			uint64_t named = 0;
			for (; k < i && ntmm__pfloc_slot(refs[k]) < (w + 1) * 64; k++) {
				uint64_t s = ntmm__pfloc_slot(refs[k]);
				if (s >= size)
					break; /* this and the rest: past the end, below */
				uint64_t bit = 1ull << (s % 64);
				named |= bit;
				if (!(inuse & bit))
					bad(arg, k, NTMM__PF_REF_FREE);
			}
			for (uint64_t leak = inuse & ~named; leak; leak &= leak - 1) {
				if (file_leaks++ < LEAKS_SHOWN)
					fprintf(
					    stderr,
					    "ntmm audit: paging file %u slot %llu is in use but "
					    "no owner names it (leaked)\n",
					    f,
					    (unsigned long long)(w * 64 +
					                         (unsigned)__builtin_ctzll(leak)));
			}
		}
		for (; k < i; k++)
			bad(arg, k, NTMM__PF_REF_PAST_END);
		pthread_mutex_unlock(&pf->resize_lock);
		if (file_leaks > LEAKS_SHOWN)
			fprintf(stderr, "ntmm audit: paging file %u: %llu leaked slots in all\n", f,
			        (unsigned long long)file_leaks);
		*leaks += file_leaks;
	}
	pthread_mutex_unlock(&io->lock);
	ntmm__assert(i == n); /* sorted by file: every ref was looked at */
}
