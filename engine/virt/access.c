/*
 * Access to process memory through the software page tables: translate
 * (the "TLB hit" path: four table loads inside a read-side section, no
 * lock, no shared write once Accessed/Dirty are set), read/write copies
 * across pages, and pins (probe and lock, an MDL) whose frames hold a
 * reference so the trimmer leaves them alone.
 *
 * A host pointer from translate is valid until the caller's
 * ntmm_access_end: a trimmer invalidates the PTE first and hands the frame
 * on only after a grace period, which waits for that access section. That
 * holds only for a thread liburcu knows, so every entry point that takes a
 * read-side lock first makes the caller a reader (tlb.h: the thread
 * lifecycle), and the thread-exit destructor here ends what a thread left
 * open. Debug builds also keep a record of live pins to catch an unpin
 * that is a second one or comes after the engine's destroy.
 */
#include "virt/virt.h"
#include "engine.h"
#include "virt/frame.h"
#include "virt/tlb.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

__thread ntmm__tlb_t ntmm__tlb __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------ thread lifecycle */

/* One key for the process (liburcu's registry is process-wide too); its
   value is only a "destructor armed" mark, never dereferenced. */
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;
static bool thread_key_ok;          /* written once, inside pthread_once */
static __thread bool thread_hooked; /* this thread's key value is set */

static void thread_exit(void *unused)
{
	(void)unused;
	thread_hooked = false;
	ntmm__tlb_t *t = &ntmm__tlb;
	/* a dangling section ends here: nothing filled in it is used again,
	   even by a later destructor that calls the access API */
	t->depth = 0;
	t->gen++;
	free(t->e);
	t->e = NULL;
	ntmm__rcu_thread_exit();
}

static void thread_key_create(void)
{
	thread_key_ok = pthread_key_create(&thread_key, thread_exit) == 0;
}

int ntmm__access_thread_hook(void)
{
	if (ntmm__likely(thread_hooked))
		return 0;
	pthread_once(&thread_key_once, thread_key_create);
	if (!thread_key_ok || pthread_setspecific(thread_key, &thread_key) != 0)
		return ntmm__error(NTMM_ENOMEM, "no thread-specific-data key for the exit hook");
	thread_hooked = true;
	return 0;
}

void ntmm__access_thread_adopt(void)
{
	/* without the hook the thread is still protected while it lives; only
	   an exit without ntmm_thread_unregister is then unsafe */
	(void)ntmm__access_thread_hook();
	ntmm__rcu_thread_adopt();
}

void ntmm__tlb_thread_release(void)
{
	if (ntmm__rcu_thread_is_reader() || ntmm__tlb.depth)
		return;
	free(ntmm__tlb.e);
	ntmm__tlb.e = NULL;
}

/* ------------------------------------------------------------- translate */

static inline void tlb_fill(ntmm_process_t *p, uint64_t va, uint64_t pte)
{
	ntmm__tlb_t *t = &ntmm__tlb;
	if (!t->depth)
		return; /* not inside ntmm_access_begin: nothing to scope it to */
	if (ntmm__unlikely(!t->e) && !(t->e = calloc(NTMM__TLB_ENTRIES, sizeof(*t->e))))
		return;
	ntmm__tlb_entry_t *en = &t->e[(va >> NTMM__PAGE_SHIFT) % NTMM__TLB_ENTRIES];
	uint64_t wd = NTMM__PTE_WRITE | NTMM__PTE_DIRTY;
	en->page = va & ~(uint64_t)(NTMM_PAGE_SIZE - 1);
	en->p = p;
	en->host = (uintptr_t)ntmm__vframe(p->e, ntmm__pte_pfn(pte)) | ((pte & wd) == wd);
	en->gen = t->gen;
}

/* The fast path: true and *host set if va's PTE is valid with the access
   bits needed (Accessed, and Dirty on a write, are set by CAS if missing). */
static inline bool translate_fast(ntmm_process_t *p, uint64_t va, bool write, void **host)
{
	_Atomic uint64_t *pte = ntmm__pt_lookup(p, va);
	if (ntmm__unlikely(!pte))
		return false;
	uint64_t need = NTMM__PTE_VALID | NTMM__PTE_READ | (write ? NTMM__PTE_WRITE : 0);
	uint64_t flags = NTMM__PTE_ACCESSED | (write ? NTMM__PTE_DIRTY : 0);
	/* acquire: pairs with the fault's release CAS (frame contents and PFN) */
	uint64_t old = atomic_load_explicit(pte, memory_order_acquire);
	for (;;) {
		if ((old & need) != need)
			return false;
		if ((old & flags) == flags)
			break;
		/* acquire both ways: on failure `old` may name a frame published
		   since (the fault's release CAS) */
		if (atomic_compare_exchange_weak_explicit(
		        pte, &old, old | flags, memory_order_acquire, memory_order_acquire))
			break;
	}
	*host = (char *)ntmm__vframe(p->e, ntmm__pte_pfn(old)) + (va & (NTMM_PAGE_SIZE - 1));
	tlb_fill(p, va, old | flags);
	return true;
}

static int check_va(uint64_t va)
{
	if (va < NTMM__VA_START || va >= NTMM__VA_END)
		return ntmm__error(NTMM_EACCESS, "address %#llx is outside the user address space",
		                   (unsigned long long)va);
	return 0;
}

int ntmm_translate(ntmm_process_t *p, uint64_t va, unsigned access, void **host)
{
	ntmm__fault_kind = NTMM_FAULT_NONE; /* the fault handler sets another kind */
	bool write = access == NTMM_ACCESS_WRITE;
	ntmm__tlb_t *t = &ntmm__tlb;
	if (t->depth && t->e && host) {
		/* TLB hit (tlb.h): an entry naming p was filled in this section,
		   after p and va were checked, so they need no check again */
		const ntmm__tlb_entry_t *en = &t->e[(va >> NTMM__PAGE_SHIFT) % NTMM__TLB_ENTRIES];
		if (en->page == (va & ~(uint64_t)(NTMM_PAGE_SIZE - 1)) && en->p == p &&
		    en->gen == t->gen && access <= NTMM_ACCESS_WRITE &&
		    (!write || (en->host & 1))) {
			*host = (char *)(en->host & ~(uintptr_t)1) + (va & (NTMM_PAGE_SIZE - 1));
			t->held = t->gen;
			return 0;
		}
	}
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (!host || access > NTMM_ACCESS_WRITE)
		return ntmm__error(NTMM_EINVAL, "translate: host NULL or access %u unknown",
		                   access);
	if ((err = check_va(va)))
		return err;
	ntmm__access_thread_ensure();
	ntmm__rcu_read_lock(); /* nests inside the caller's access section */
	while (!translate_fast(p, va, write, host)) {
		if ((err = ntmm__fault(p, va, access)))
			break;
	}
	ntmm__rcu_read_unlock();
	if (!err)
		t->held = t->gen; /* the section now holds a pointer (tlb.h) */
	return err;
}

static int copy(ntmm_process_t *p, uint64_t va, void *buf, const void *src, size_t len)
{
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (len > NTMM__VA_END || va + len > NTMM__VA_END)
		return ntmm__error(NTMM_EACCESS, "range runs past the user address space");
	bool write = src != NULL;
	size_t done = 0;
	ntmm__access_thread_ensure();
	while (done < len) {
		uint64_t a = va + done;
		size_t n = NTMM_PAGE_SIZE - (a & (NTMM_PAGE_SIZE - 1));
		if (n > len - done)
			n = len - done;
		void *h;
		ntmm__rcu_read_lock();
		err = check_va(a);
		while (!err && !translate_fast(p, a, write, &h))
			err = ntmm__fault(p, a, write ? NTMM_ACCESS_WRITE : NTMM_ACCESS_READ);
		if (!err) {
			if (write)
				memcpy(h, (const char *)src + done, n);
			else
				memcpy((char *)buf + done, h, n);
		}
		ntmm__rcu_read_unlock();
		if (err)
			return err;
		done += n;
	}
	return 0;
}

int ntmm_read(ntmm_process_t *p, uint64_t va, void *buf, size_t len)
{
	ntmm__fault_kind = NTMM_FAULT_NONE;
	if (!buf)
		return ntmm__error(NTMM_EINVAL, "buffer is NULL");
	return copy(p, va, buf, NULL, len);
}

int ntmm_write(ntmm_process_t *p, uint64_t va, const void *buf, size_t len)
{
	ntmm__fault_kind = NTMM_FAULT_NONE;
	if (!buf)
		return ntmm__error(NTMM_EINVAL, "buffer is NULL");
	return copy(p, va, NULL, buf, len);
}

/* ------------------------------------------------------------------ pins */

/* Drops the pin's frame references and frees it. */
static void pin_release(ntmm_pin_t *pin)
{
	for (size_t i = 0; i < pin->npages; i++)
		ntmm__page_unref(pin->e, pin->pfns[i]);
	free(pin);
}

#if NTMM_DEBUG >= 1
/*
 * Debug builds check ntmm_unpin's contract (ntmm.h: a second unpin, or an
 * unpin after the pin's engine was destroyed, is undefined). Every pin
 * ntmm_pin returns is recorded until its unpin; the last PIN_QUARANTINE
 * unpinned pins are kept (not freed), so a second unpin finds its record
 * instead of a reused address. Process-wide rather than per engine: the
 * pin pointer is all ntmm_unpin gets, and its engine may be gone.
 *   lock guards everything below; a record's state goes LIVE → UNPINNED
 *   (ntmm_unpin) or LIVE → ORPHAN (ntmm_engine_destroy), and the record
 *   leaves the table when its pin leaves the quarantine (or when a pin
 *   that outlived its engine is reported).
 */
enum { PIN_LIVE, PIN_UNPINNED, PIN_ORPHAN };
typedef struct pin_rec {
	const ntmm_pin_t *pin;
	const ntmm_engine_t *e;
	int state;
	struct pin_rec *next; /* bucket chain */
} pin_rec_t;
#define PIN_BUCKETS    256u
#define PIN_QUARANTINE 64u
static struct {
	pthread_mutex_t lock;
	pin_rec_t *bucket[PIN_BUCKETS];
	ntmm_pin_t *quarantine[PIN_QUARANTINE]; /* unpinned, not yet freed: a ring */
	unsigned qnext;
} pin_reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pin_rec_t **pin_slot(const ntmm_pin_t *pin)
{
	pin_rec_t **r = &pin_reg.bucket[((uintptr_t)pin >> 4) % PIN_BUCKETS];
	/* the first match: lookups stop at it */
	while (*r && (*r)->pin != pin)
		r = &(*r)->next;
	return r;
}

static int pin_track(const ntmm_pin_t *pin)
{
	pin_rec_t *rec = malloc(sizeof(*rec));
	if (!rec)
		return ntmm__error(NTMM_ENOMEM, "host memory for a pin record");
	rec->pin = pin;
	rec->e = pin->e;
	rec->state = PIN_LIVE;
	pthread_mutex_lock(&pin_reg.lock);
	/* a recorded pin is never freed memory: the address is new */
	ntmm__assert(!*pin_slot(pin));
	pin_rec_t **head = &pin_reg.bucket[((uintptr_t)pin >> 4) % PIN_BUCKETS];
	rec->next = *head;
	*head = rec;
	pthread_mutex_unlock(&pin_reg.lock);
	return 0;
}

/* Marks pin unpinned; aborts, naming the misuse, unless it is live. */
static void pin_untrack(const ntmm_pin_t *pin)
{
	pthread_mutex_lock(&pin_reg.lock);
	pin_rec_t *rec = *pin_slot(pin);
	if (!rec)
		NTMM__MISUSE("ntmm_unpin(%p): not a live pin (unpinned twice, or never "
		             "returned by ntmm_pin)",
		             (const void *)pin);
	if (rec->state == PIN_UNPINNED)
		NTMM__MISUSE("ntmm_unpin(%p): the pin was already unpinned (unpinned twice)",
		             (const void *)pin);
	if (rec->state == PIN_ORPHAN)
		NTMM__MISUSE("ntmm_unpin(%p): unpin after ntmm_engine_destroy of the pin's "
		             "engine %p",
		             (const void *)pin, (const void *)rec->e);
	rec->state = PIN_UNPINNED;
	pthread_mutex_unlock(&pin_reg.lock);
}

/* Parks an unpinned pin in the quarantine and frees the one it evicts. */
static void pin_quarantine(ntmm_pin_t *pin)
{
	pthread_mutex_lock(&pin_reg.lock);
	ntmm_pin_t *old = pin_reg.quarantine[pin_reg.qnext];
	pin_reg.quarantine[pin_reg.qnext] = pin;
	pin_reg.qnext = (pin_reg.qnext + 1) % PIN_QUARANTINE;
	if (old) {
		pin_rec_t **slot = pin_slot(old);
		pin_rec_t *rec = *slot;
		*slot = rec->next;
		free(rec);
	}
	pthread_mutex_unlock(&pin_reg.lock);
	free(old);
}

void ntmm__pins_engine_gone(const ntmm_engine_t *e)
{
	pthread_mutex_lock(&pin_reg.lock);
	for (unsigned b = 0; b < PIN_BUCKETS; b++)
		for (pin_rec_t *r = pin_reg.bucket[b]; r; r = r->next)
			if (r->e == e && r->state == PIN_LIVE)
				r->state = PIN_ORPHAN;
	pthread_mutex_unlock(&pin_reg.lock);
}
#else
static int pin_track(const ntmm_pin_t *pin)
{
	(void)pin;
	return 0;
}

void ntmm__pins_engine_gone(const ntmm_engine_t *e)
{
	(void)e;
}
#endif

int ntmm_pin(ntmm_process_t *p, uint64_t va, size_t len, unsigned access, ntmm_pin_t **out)
{
	ntmm__fault_kind = NTMM_FAULT_NONE;
	int err = ntmm__process_check(p);
	if (err)
		return err;
	if (!out || len == 0 || access > NTMM_ACCESS_WRITE)
		return ntmm__error(NTMM_EINVAL, "pin: out NULL, length 0 or access unknown");
	*out = NULL;
	if (len > NTMM__VA_END || va + len > NTMM__VA_END || va < NTMM__VA_START)
		return ntmm__error(NTMM_EACCESS, "pin range outside the user address space");
	uint64_t first = va & ~(uint64_t)(NTMM_PAGE_SIZE - 1);
	size_t npages = (size_t)((va + len - first + NTMM_PAGE_SIZE - 1) >> NTMM__PAGE_SHIFT);
	ntmm_pin_t *pin = malloc(sizeof(*pin) + npages * sizeof(pin->pfns[0]));
	if (!pin)
		return ntmm__error(NTMM_ENOMEM, "host memory for a pin of %zu pages", npages);
	pin->e = p->e;
	pin->npages = 0;
	bool write = access == NTMM_ACCESS_WRITE;
	uint64_t need = NTMM__PTE_VALID | NTMM__PTE_READ | (write ? NTMM__PTE_WRITE : 0);
	uint64_t flags = NTMM__PTE_ACCESSED | (write ? NTMM__PTE_DIRTY : 0);

	ntmm__access_thread_ensure();
	ntmm__rcu_read_lock();
	for (size_t i = 0; i < npages && !err; i++) {
		uint64_t a = first + i * NTMM_PAGE_SIZE;
		for (;;) {
			/* shared ws_lock: no trim can invalidate the PTE between our
			   check and the reference */
			unsigned ws = ntmm__ws_lock_shared(p);
			_Atomic uint64_t *pte = ntmm__pt_lookup(p, a);
			uint64_t old = pte ? atomic_load_explicit(pte, memory_order_acquire) : 0;
			bool ok = false;
			while ((old & need) == need) {
				if (atomic_compare_exchange_weak_explicit(pte, &old, old | flags,
				                                          memory_order_acquire,
				                                          memory_order_acquire)) {
					ok = true;
					break;
				}
			}
			if (ok) {
				ntmm__pfn_t pfn = ntmm__pte_pfn(old);
				ntmm__page_ref(p->e, pfn);
				pin->pfns[pin->npages++] = pfn;
			}
			ntmm__ws_unlock_shared(p, ws);
			if (ok)
				break;
			if ((err = ntmm__fault(p, a, access)))
				break;
		}
	}
	ntmm__rcu_read_unlock();
	if (err || (err = pin_track(pin))) {
		pin_release(pin);
		return err;
	}
	*out = pin;
	return 0;
}

void *ntmm_pin_page(const ntmm_pin_t *pin, size_t index)
{
	if (!pin || index >= pin->npages)
		return NULL;
	return ntmm__vframe(pin->e, pin->pfns[index]);
}

void ntmm_unpin(ntmm_pin_t *pin)
{
	if (!pin)
		return;
#if NTMM_DEBUG >= 1
	pin_untrack(pin);
	for (size_t i = 0; i < pin->npages; i++)
		ntmm__page_unref(pin->e, pin->pfns[i]);
	pin_quarantine(pin);
#else
	pin_release(pin);
#endif
}
