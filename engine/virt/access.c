/*
 * Access to process memory through the software page tables: translate
 * (the "TLB hit" path: four table loads inside a read-side section, no
 * lock, no shared write once Accessed/Dirty are set), read/write copies
 * across pages, and pins (probe and lock, an MDL) whose frames hold a
 * reference so the trimmer leaves them alone.
 *
 * A host pointer from translate is valid until the caller's
 * ntmm_access_end: a trimmer invalidates the PTE first and hands the frame
 * on only after a grace period, which waits for that access section.
 */
#include "virt/virt.h"
#include "engine.h"
#include "virt/frame.h"
#include "virt/tlb.h"

#include <stdlib.h>
#include <string.h>

__thread ntmm__tlb_t ntmm__tlb __attribute__((tls_model("initial-exec")));

void ntmm__tlb_thread_exit(void)
{
	free(ntmm__tlb.e);
	ntmm__tlb.e = NULL;
}

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
	if (err) {
		ntmm_unpin(pin);
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
	for (size_t i = 0; i < pin->npages; i++)
		ntmm__page_unref(pin->e, pin->pfns[i]);
	free(pin);
}
