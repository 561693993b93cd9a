/*
 * The Win32-shaped API of <ntmm/win32.h>: a thin adapter over the public
 * native calls (ntmm_allocate, ntmm_free, ntmm_protect, ntmm_query and the
 * section calls). It keeps Windows' conventions (NULL/FALSE/0 results, a
 * thread-local last error, HANDLEs) inside this one file, as the jemalloc
 * extent hooks keep theirs: nothing below it knows about them.
 *
 * Each wrapper first checks what Windows checks before the native layer
 * would (a NULL out-pointer, a length, FILE_MAP_ bits, offsets, view sizes
 * against the mapping) so that it can answer with the code Windows gives
 * for that case; the rest comes from the native code, translated by
 * win32_error with the function's own refinements.
 *
 * State: the calling thread's current process and last error (thread
 * locals), and the table of mapping handles, which is process-wide like a
 * Windows process's handle table (a HANDLE may be used from any thread).
 */
#include "engine.h"

#include <ntmm/win32.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(void *) == 8, "engine virtual addresses are carried in pointers");
_Static_assert(sizeof(MEMORY_BASIC_INFORMATION) == 48, "the x64 MEMORY_BASIC_INFORMATION");

#define W32_GRANULE   ((uint64_t)NTMM_ALLOCATION_GRANULARITY)
#define W32_PAGE_SIZE ((uint64_t)NTMM_PAGE_SIZE)
#define W32_USER_END  0x7fffffff0000ull /* end of the user address space (ntmm.h) */

static _Thread_local ntmm_process_t *tl_process;
static _Thread_local DWORD tl_last_error;

/* Records err as the last error and a detail for ntmm_error_detail. */
#define W32_FAIL(err, ...) (ntmm__error(NTMM_EINVAL, __VA_ARGS__), tl_last_error = (err))

/* ------------------------------------------------- process, last error */

ntmm_process_t *ntmm_win32_set_process(ntmm_process_t *p)
{
	ntmm_process_t *old = tl_process;
	tl_process = p;
	return old;
}

ntmm_process_t *ntmm_win32_GetCurrentProcess(void)
{
	return tl_process;
}

DWORD ntmm_win32_GetLastError(void)
{
	return tl_last_error;
}

void ntmm_win32_SetLastError(DWORD err)
{
	tl_last_error = err;
}

DWORD ntmm_win32_error_from_ntmm(int err)
{
	switch (err) {
	case 0:
		return ERROR_SUCCESS;
	case NTMM_EINVAL:
		return ERROR_INVALID_PARAMETER;
	case NTMM_ENOMEM:
		return ERROR_NOT_ENOUGH_MEMORY;
	case NTMM_ECOMMIT:
		return ERROR_COMMITMENT_LIMIT;
	case NTMM_EACCESS:
		return ERROR_NOACCESS;
	case NTMM_ECONFLICT:
		return ERROR_INVALID_ADDRESS;
	case NTMM_EGUARD:
		return STATUS_GUARD_PAGE_VIOLATION;
	case NTMM_EIO:
		return ERROR_SWAPERROR;
	case NTMM_EBUSY:
		return ERROR_BUSY;
	case NTMM_ENOTSUP:
		return ERROR_NOT_SUPPORTED;
	default:
		return ERROR_INVALID_PARAMETER;
	}
}

/* Sets the last error for a native failure; `access` and `inval` replace
   the general codes for NTMM_EACCESS and NTMM_EINVAL (0: keep them), `io`
   for NTMM_EIO. Returns 0 so wrappers can `return native_fail(...)`. */
static int native_fail(int err, DWORD access, DWORD inval, DWORD io)
{
	DWORD w = ntmm_win32_error_from_ntmm(err);
	if (err == NTMM_EACCESS && access)
		w = access;
	else if (err == NTMM_EINVAL && inval)
		w = inval;
	else if (err == NTMM_EIO && io)
		w = io;
	tl_last_error = w;
	return 0;
}

/* A live process, or 0 with ERROR_INVALID_HANDLE set. */
static int process_ok(ntmm_process_t *p, const char *fn)
{
	if (!p) {
		W32_FAIL(ERROR_INVALID_HANDLE,
		         "%s: no process (ntmm_win32_set_process not called?)", fn);
		return 0;
	}
	if (ntmm__process_check(p)) {
		W32_FAIL(ERROR_INVALID_HANDLE, "%s: not a live process", fn);
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------- virtual memory */

/* MEM_RESET / MEM_RESET_UNDO: ntmm never discards contents, so both only
   check that every page of the range lies in one allocation. */
static LPVOID reset_range(ntmm_process_t *p, LPVOID addr, SIZE_T size)
{
	uint64_t va = ntmm_win32_va(addr);
	if (!va || !size || va + size < va) {
		W32_FAIL(ERROR_INVALID_PARAMETER, "VirtualAlloc(MEM_RESET): null address or size");
		return NULL;
	}
	uint64_t start = va & ~(W32_PAGE_SIZE - 1), end = va + size;
	ntmm_region_info_t ri;
	uint64_t alloc = 0;
	for (uint64_t cur = start; cur < end; cur = ri.base + ri.size) {
		int err = ntmm_query(p, cur, &ri);
		if (err)
			return native_fail(err, 0, 0, 0), NULL;
		if (ri.state == NTMM_MEM_FREE || (cur != start && ri.allocation_base != alloc)) {
			W32_FAIL(ERROR_INVALID_ADDRESS,
			         "VirtualAlloc(MEM_RESET): range not inside one allocation");
			return NULL;
		}
		alloc = ri.allocation_base;
	}
	return ntmm_win32_ptr(start);
}

LPVOID ntmm_win32_VirtualAllocEx(ntmm_process_t *process, LPVOID addr, SIZE_T size, DWORD type,
                                 DWORD prot)
{
	if (!process_ok(process, "VirtualAlloc"))
		return NULL;
	if (type & (MEM_LARGE_PAGES | MEM_PHYSICAL | MEM_WRITE_WATCH)) {
		W32_FAIL(
		    ERROR_NOT_SUPPORTED,
		    "VirtualAlloc: MEM_LARGE_PAGES, MEM_PHYSICAL, MEM_WRITE_WATCH not modelled");
		return NULL;
	}
	if (type & (MEM_RESET | MEM_RESET_UNDO)) {
		if (type != MEM_RESET && type != MEM_RESET_UNDO) {
			W32_FAIL(ERROR_INVALID_PARAMETER,
			         "VirtualAlloc: MEM_RESET and MEM_RESET_UNDO go alone");
			return NULL;
		}
		return reset_range(process, addr, size);
	}
	if (type & ~(MEM_COMMIT | MEM_RESERVE | MEM_TOP_DOWN)) {
		W32_FAIL(ERROR_INVALID_PARAMETER, "VirtualAlloc: unknown type bits 0x%x", type);
		return NULL;
	}
	uint64_t base = ntmm_win32_va(addr);
	int err = ntmm_allocate(process, &base, size, type, prot);
	if (err)
		return native_fail(err, 0, 0, 0), NULL;
	return ntmm_win32_ptr(base);
}

LPVOID ntmm_win32_VirtualAlloc(LPVOID addr, SIZE_T size, DWORD type, DWORD prot)
{
	return ntmm_win32_VirtualAllocEx(tl_process, addr, size, type, prot);
}

BOOL ntmm_win32_VirtualFreeEx(ntmm_process_t *process, LPVOID addr, SIZE_T size, DWORD type)
{
	if (!process_ok(process, "VirtualFree"))
		return FALSE;
	int err = ntmm_free(process, ntmm_win32_va(addr), size, type);
	if (err)
		return native_fail(err, 0, 0, 0);
	return TRUE;
}

BOOL ntmm_win32_VirtualFree(LPVOID addr, SIZE_T size, DWORD type)
{
	return ntmm_win32_VirtualFreeEx(tl_process, addr, size, type);
}

BOOL ntmm_win32_VirtualProtectEx(ntmm_process_t *process, LPVOID addr, SIZE_T size, DWORD prot,
                                 PDWORD old_prot)
{
	if (!process_ok(process, "VirtualProtect"))
		return FALSE;
	if (!old_prot) {
		W32_FAIL(ERROR_NOACCESS, "VirtualProtect: old_prot is NULL");
		return FALSE;
	}
	unsigned old = 0;
	int err = ntmm_protect(process, ntmm_win32_va(addr), size, prot, &old);
	if (err) /* NTMM_EACCESS: more than the view's section allows */
		return native_fail(err, ERROR_INVALID_PARAMETER, 0, 0);
	*old_prot = old;
	return TRUE;
}

BOOL ntmm_win32_VirtualProtect(LPVOID addr, SIZE_T size, DWORD prot, PDWORD old_prot)
{
	return ntmm_win32_VirtualProtectEx(tl_process, addr, size, prot, old_prot);
}

SIZE_T ntmm_win32_VirtualQueryEx(ntmm_process_t *process, LPCVOID addr,
                                 PMEMORY_BASIC_INFORMATION info, SIZE_T len)
{
	if (!process_ok(process, "VirtualQuery"))
		return 0;
	if (len < sizeof(*info)) {
		W32_FAIL(ERROR_BAD_LENGTH, "VirtualQuery: length %zu below %zu", len,
		         sizeof(*info));
		return 0;
	}
	if (!info) {
		W32_FAIL(ERROR_NOACCESS, "VirtualQuery: info is NULL");
		return 0;
	}
	ntmm_region_info_t ri;
	int err = ntmm_query(process, ntmm_win32_va(addr), &ri);
	if (err)
		return native_fail(err, 0, 0, 0);
	info->BaseAddress = ntmm_win32_ptr(ri.base);
	info->AllocationBase = ntmm_win32_ptr(ri.allocation_base);
	info->AllocationProtect = ri.allocation_prot;
	info->PartitionId = 0;
	info->RegionSize = ri.size;
	info->State = ri.state;
	info->Protect = ri.prot;
	info->Type = ri.type;
	return sizeof(*info);
}

SIZE_T ntmm_win32_VirtualQuery(LPCVOID addr, PMEMORY_BASIC_INFORMATION info, SIZE_T len)
{
	return ntmm_win32_VirtualQueryEx(tl_process, addr, info, len);
}

/* --------------------------------------------------- the handle table */

/*
 * A mapping object. Invariant: refs == (1 while its handle is open) + the
 * calls using it now; the section is closed and the object freed when refs
 * reaches 0. All fields but refs are fixed at create.
 */
typedef struct w32_mapping {
	ntmm_engine_t *e;  /* engine of the section */
	ntmm_section_t *s; /* the native section (its own reference) */
	uint64_t size;     /* bytes (the file's size when created with size 0) */
	DWORD prot;        /* PAGE_READONLY, _READWRITE or _WRITECOPY, as asked */
	int reserve;       /* paging-file SEC_RESERVE: pages committed in views */
	unsigned refs;     /* guarded by handles.lock */
} w32_mapping_t;

/*
 * Handles: slot index i and generation g as ((g << 32) | (i + 1) << 2), so
 * a handle is never NULL, never -1 and, like Windows', a multiple of 4. A
 * slot's generation grows at every close: a stale handle does not match.
 * Free slots form a list through next_free (UINT32_MAX ends it).
 */
typedef struct w32_slot {
	w32_mapping_t *m;   /* NULL when free */
	uint32_t gen;       /* generation of the handle that names it now */
	uint32_t next_free; /* next free slot while free */
} w32_slot_t;

static struct {
	pthread_mutex_t lock; /* guards everything below and every refs */
	w32_slot_t *slots;
	uint32_t cap;
	uint32_t free_head;
} handles = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, UINT32_MAX};

#define W32_MAX_HANDLES (1u << 28)

static HANDLE handle_insert(w32_mapping_t *m)
{
	HANDLE h = NULL;
	pthread_mutex_lock(&handles.lock);
	if (handles.free_head == UINT32_MAX && handles.cap < W32_MAX_HANDLES) {
		uint32_t ncap = handles.cap ? handles.cap * 2 : 64;
		w32_slot_t *n = realloc(handles.slots, ncap * sizeof(*n));
		if (n) {
			for (uint32_t i = ncap; i-- > handles.cap;) {
				n[i].m = NULL;
				n[i].gen = 1;
				n[i].next_free = handles.free_head;
				handles.free_head = i;
			}
			handles.slots = n;
			handles.cap = ncap;
		}
	}
	if (handles.free_head != UINT32_MAX) {
		uint32_t i = handles.free_head;
		w32_slot_t *sl = &handles.slots[i];
		handles.free_head = sl->next_free;
		sl->m = m;
		h = (HANDLE)(uintptr_t)(((uint64_t)sl->gen << 32) | ((uint64_t)(i + 1) << 2));
	}
	pthread_mutex_unlock(&handles.lock);
	return h;
}

/* The slot h names, or NULL. Call with handles.lock held. */
static w32_slot_t *handle_slot(HANDLE h)
{
	uint64_t v = (uint64_t)(uintptr_t)h;
	uint64_t low = v & 0xffffffffu;
	if (!v || (v & 3) || !low)
		return NULL;
	uint64_t i = (low >> 2) - 1;
	if (i >= handles.cap)
		return NULL;
	w32_slot_t *sl = &handles.slots[i];
	if (!sl->m || sl->gen != (uint32_t)(v >> 32))
		return NULL;
	return sl;
}

/* The mapping h names with a reference taken, or NULL. */
static w32_mapping_t *mapping_get(HANDLE h)
{
	pthread_mutex_lock(&handles.lock);
	w32_slot_t *sl = handle_slot(h);
	w32_mapping_t *m = sl ? sl->m : NULL;
	if (m)
		m->refs++;
	pthread_mutex_unlock(&handles.lock);
	return m;
}

static void mapping_put(w32_mapping_t *m)
{
	pthread_mutex_lock(&handles.lock);
	unsigned left = --m->refs;
	pthread_mutex_unlock(&handles.lock);
	if (left == 0) {
		ntmm_section_close(m->s);
		free(m);
	}
}

BOOL ntmm_win32_CloseHandle(HANDLE h)
{
	pthread_mutex_lock(&handles.lock);
	w32_slot_t *sl = handle_slot(h);
	w32_mapping_t *m = NULL;
	if (sl) {
		m = sl->m;
		sl->m = NULL;
		sl->gen++;
		sl->next_free = handles.free_head;
		handles.free_head = (uint32_t)(sl - handles.slots);
	}
	pthread_mutex_unlock(&handles.lock);
	if (!m) {
		W32_FAIL(ERROR_INVALID_HANDLE, "CloseHandle: %p is not an open mapping handle", h);
		return FALSE;
	}
	mapping_put(m); /* the handle's reference */
	return TRUE;
}

/* ------------------------------------------------------ file mappings */

#define W32_PAGE_BITS 0x7ffu /* PAGE_* kinds and modifiers */

/* Checks the SEC_ part of CreateFileMapping's protection as Windows does. */
static int sec_flags_ok(DWORD sec)
{
	const DWORD known = SEC_FILE | SEC_IMAGE | SEC_RESERVE | SEC_COMMIT | SEC_NOCACHE |
	                    SEC_WRITECOMBINE | SEC_LARGE_PAGES;
	DWORD kind = sec & (SEC_COMMIT | SEC_RESERVE);
	if ((sec & ~known) || (sec & (SEC_FILE | SEC_LARGE_PAGES)) ||
	    kind == (SEC_COMMIT | SEC_RESERVE)) {
		W32_FAIL(ERROR_INVALID_PARAMETER, "CreateFileMapping: bad SEC_ flags 0x%x", sec);
		return 0;
	}
	if (sec & SEC_IMAGE) {
		if (kind)
			W32_FAIL(ERROR_INVALID_PARAMETER,
			         "CreateFileMapping: SEC_IMAGE with SEC_COMMIT/SEC_RESERVE");
		else
			W32_FAIL(ERROR_NOT_SUPPORTED, "CreateFileMapping: SEC_IMAGE not modelled");
		return 0;
	}
	if (sec & (SEC_NOCACHE | SEC_WRITECOMBINE)) {
		if (!kind)
			W32_FAIL(ERROR_INVALID_PARAMETER,
			         "CreateFileMapping: SEC_NOCACHE/SEC_WRITECOMBINE alone");
		else
			W32_FAIL(ERROR_NOT_SUPPORTED,
			         "CreateFileMapping: SEC_NOCACHE/SEC_WRITECOMBINE not modelled");
		return 0;
	}
	return 1;
}

/* Checks that fd is a descriptor with the access page needs and fills in
   its size. */
static int file_ok(int fd, DWORD page, uint64_t *fsize)
{
	int fl = fd < 0 ? -1 : fcntl(fd, F_GETFL);
	if (fl < 0) {
		W32_FAIL(ERROR_INVALID_HANDLE, "CreateFileMapping: %d is not an open descriptor",
		         fd);
		return 0;
	}
	int acc = fl & O_ACCMODE;
	if ((fl & O_PATH) || acc == O_WRONLY || (page == PAGE_READWRITE && acc != O_RDWR)) {
		W32_FAIL(ERROR_ACCESS_DENIED,
		         "CreateFileMapping: descriptor %d lacks the access the protection needs",
		         fd);
		return 0;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		W32_FAIL(ERROR_INVALID_HANDLE, "CreateFileMapping: fstat(%d) failed", fd);
		return 0;
	}
	if (S_ISDIR(st.st_mode)) {
		W32_FAIL(ERROR_ACCESS_DENIED, "CreateFileMapping: descriptor %d is a directory",
		         fd);
		return 0;
	}
	*fsize = (uint64_t)st.st_size;
	return 1;
}

HANDLE ntmm_win32_CreateFileMapping(int fd, LPSECURITY_ATTRIBUTES security, DWORD prot,
                                    DWORD size_high, DWORD size_low, LPCSTR name)
{
	(void)security;
	ntmm_process_t *p = tl_process;
	if (!process_ok(p, "CreateFileMapping"))
		return NULL;
	if (name) {
		W32_FAIL(ERROR_NOT_SUPPORTED, "CreateFileMapping: named mappings not supported");
		return NULL;
	}
	DWORD page = prot & W32_PAGE_BITS, sec = prot & ~W32_PAGE_BITS;
	if (!sec_flags_ok(sec))
		return NULL;
	switch (page) {
	case PAGE_READONLY:
	case PAGE_READWRITE:
	case PAGE_WRITECOPY:
		break;
	case PAGE_EXECUTE_READ:
	case PAGE_EXECUTE_READWRITE:
	case PAGE_EXECUTE_WRITECOPY:
		W32_FAIL(ERROR_NOT_SUPPORTED,
		         "CreateFileMapping: EXECUTE protections not modelled");
		return NULL;
	default:
		W32_FAIL(ERROR_INVALID_PARAMETER, "CreateFileMapping: protection 0x%x", page);
		return NULL;
	}
	uint64_t size = ((uint64_t)size_high << 32) | size_low;
	/* A READONLY mapping still allows FILE_MAP_COPY views (as on Windows),
	   so its section is WRITECOPY: that gives READONLY and WRITECOPY views
	   and refuses READWRITE ones (to MapViewOfFile and to VirtualProtect
	   inside a view alike), which is what Windows allows a READONLY
	   section; and a WRITECOPY section never writes to its file. */
	unsigned nprot = page == PAGE_READONLY ? NTMM_PAGE_WRITECOPY : page;
	unsigned flags = 0;
	int native_fd = -1;
	if (fd == INVALID_HANDLE_VALUE) {
		if (!size) {
			W32_FAIL(ERROR_INVALID_PARAMETER,
			         "CreateFileMapping: a paging-file mapping needs a size");
			return NULL;
		}
		flags = (sec & SEC_RESERVE) ? NTMM_SEC_RESERVE : NTMM_SEC_COMMIT;
	} else {
		uint64_t fsize = 0;
		if (!file_ok(fd, page, &fsize))
			return NULL;
		if (!size) {
			if (!fsize) {
				W32_FAIL(ERROR_FILE_INVALID,
				         "CreateFileMapping: size 0 and the file is empty");
				return NULL;
			}
			size = fsize;
		} else if (size > fsize && page != PAGE_READWRITE) {
			W32_FAIL(ERROR_NOT_ENOUGH_MEMORY,
			         "CreateFileMapping: size past the end of a file it may not grow");
			return NULL;
		}
		native_fd = fd;
	}
	w32_mapping_t *m = calloc(1, sizeof(*m));
	if (!m) {
		W32_FAIL(ERROR_NOT_ENOUGH_MEMORY, "CreateFileMapping: host memory");
		return NULL;
	}
	int err = ntmm_section_create(p->e, native_fd, size, nprot, flags, &m->s);
	if (err) {
		free(m);
		native_fail(err, 0, 0, ERROR_IO_DEVICE);
		return NULL;
	}
	m->e = p->e;
	m->size = size;
	m->prot = page;
	m->reserve = flags == NTMM_SEC_RESERVE;
	m->refs = 1;
	HANDLE h = handle_insert(m);
	if (!h) {
		ntmm_section_close(m->s);
		free(m);
		W32_FAIL(ERROR_NOT_ENOUGH_MEMORY, "CreateFileMapping: no room for a handle");
		return NULL;
	}
	tl_last_error = ERROR_SUCCESS;
	return h;
}

#define W32_PROT_UNSUPPORTED 0xffffffffu

/* Maps a view of h into p with page protection page (PAGE_NOACCESS,
   _READONLY, _READWRITE, _WRITECOPY, or W32_PROT_UNSUPPORTED). */
static LPVOID map_view(const char *fn, HANDLE h, ntmm_process_t *p, uint64_t offset, LPVOID base,
                       SIZE_T count, DWORD page)
{
	w32_mapping_t *m = mapping_get(h);
	if (!m) {
		W32_FAIL(ERROR_INVALID_HANDLE, "%s: %p is not an open mapping handle", fn, h);
		return NULL;
	}
	LPVOID ret = NULL;
	uint64_t va = ntmm_win32_va(base);
	if (!process_ok(p, fn))
		goto out;
	if (p->e != m->e) {
		W32_FAIL(ERROR_INVALID_HANDLE, "%s: the mapping belongs to another engine", fn);
		goto out;
	}
	if (page == W32_PROT_UNSUPPORTED) {
		W32_FAIL(ERROR_NOT_SUPPORTED, "%s: EXECUTE, LARGE_PAGES or RESERVE access", fn);
		goto out;
	}
	if (page == PAGE_READWRITE && m->prot != PAGE_READWRITE) {
		W32_FAIL(ERROR_ACCESS_DENIED, "%s: a writable view of a mapping that is not", fn);
		goto out;
	}
	if (offset % W32_GRANULE || va % W32_GRANULE) {
		W32_FAIL(ERROR_MAPPED_ALIGNMENT, "%s: offset or base not a multiple of 64 KiB", fn);
		goto out;
	}
	if (offset >= m->size || count > m->size - offset) {
		W32_FAIL(ERROR_ACCESS_DENIED, "%s: the view passes the mapping's end", fn);
		goto out;
	}
	unsigned nprot = page == PAGE_NOACCESS ? NTMM_PAGE_READONLY : page;
	int err = ntmm_map_view(m->s, p, &va, offset, count, nprot);
	if (err) {
		native_fail(err, ERROR_ACCESS_DENIED, 0, 0);
		goto out;
	}
	if (page == PAGE_NOACCESS && !m->reserve) {
		unsigned old;
		err =
		    ntmm_protect(p, va, count ? count : m->size - offset, NTMM_PAGE_NOACCESS, &old);
		if (err) {
			ntmm_unmap_view(p, va);
			native_fail(err, 0, 0, 0);
			goto out;
		}
	}
	ret = ntmm_win32_ptr(va);
out:
	mapping_put(m);
	return ret;
}

LPVOID ntmm_win32_MapViewOfFileEx(HANDLE mapping, DWORD access, DWORD offset_high, DWORD offset_low,
                                  SIZE_T count, LPVOID base)
{
	DWORD page;
	if (access & (FILE_MAP_EXECUTE | FILE_MAP_LARGE_PAGES | FILE_MAP_RESERVE))
		page = W32_PROT_UNSUPPORTED;
	else if (access == FILE_MAP_COPY)
		page = PAGE_WRITECOPY;
	else if (access & FILE_MAP_WRITE)
		page = PAGE_READWRITE;
	else if (access & FILE_MAP_READ)
		page = PAGE_READONLY;
	else
		page = PAGE_NOACCESS;
	uint64_t offset = ((uint64_t)offset_high << 32) | offset_low;
	return map_view("MapViewOfFile", mapping, tl_process, offset, base, count, page);
}

LPVOID ntmm_win32_MapViewOfFile(HANDLE mapping, DWORD access, DWORD offset_high, DWORD offset_low,
                                SIZE_T count)
{
	return ntmm_win32_MapViewOfFileEx(mapping, access, offset_high, offset_low, count, NULL);
}

LPVOID ntmm_win32_MapViewOfFile2(HANDLE mapping, ntmm_process_t *process, ULONG64 offset,
                                 LPVOID base, SIZE_T count, ULONG alloc_type, ULONG prot)
{
	DWORD page;
	switch (prot) {
	case PAGE_NOACCESS:
	case PAGE_READONLY:
	case PAGE_READWRITE:
	case PAGE_WRITECOPY:
		page = prot;
		break;
	case PAGE_EXECUTE:
	case PAGE_EXECUTE_READ:
	case PAGE_EXECUTE_READWRITE:
	case PAGE_EXECUTE_WRITECOPY:
		page = W32_PROT_UNSUPPORTED;
		break;
	default:
		W32_FAIL(ERROR_INVALID_PARAMETER, "MapViewOfFile2: protection 0x%x", prot);
		return NULL;
	}
	if (alloc_type) {
		W32_FAIL(ERROR_NOT_SUPPORTED, "MapViewOfFile2: allocation type 0x%x", alloc_type);
		return NULL;
	}
	return map_view("MapViewOfFile2", mapping, process, offset, base, count, page);
}

BOOL ntmm_win32_UnmapViewOfFile2(ntmm_process_t *process, LPCVOID addr, ULONG flags)
{
	if (!process_ok(process, "UnmapViewOfFile"))
		return FALSE;
	if (flags) {
		W32_FAIL(ERROR_NOT_SUPPORTED, "UnmapViewOfFile2: flags 0x%x", flags);
		return FALSE;
	}
	ntmm_region_info_t ri;
	if (ntmm_query(process, ntmm_win32_va(addr), &ri) || ri.type != NTMM_MEM_MAPPED) {
		W32_FAIL(ERROR_INVALID_ADDRESS, "UnmapViewOfFile: %p is not in a view", addr);
		return FALSE;
	}
	int err = ntmm_unmap_view(process, ri.allocation_base);
	if (err)
		return native_fail(err, 0, ERROR_INVALID_ADDRESS, 0);
	return TRUE;
}

BOOL ntmm_win32_UnmapViewOfFile(LPCVOID addr)
{
	return ntmm_win32_UnmapViewOfFile2(tl_process, addr, 0);
}

BOOL ntmm_win32_FlushViewOfFile(LPCVOID addr, SIZE_T size)
{
	ntmm_process_t *p = tl_process;
	if (!process_ok(p, "FlushViewOfFile"))
		return FALSE;
	uint64_t va = ntmm_win32_va(addr);
	ntmm_region_info_t ri;
	int err = ntmm_query(p, va, &ri);
	if (err)
		return native_fail(err, 0, 0, 0);
	if (ri.state == NTMM_MEM_FREE) {
		W32_FAIL(ERROR_INVALID_ADDRESS, "FlushViewOfFile: %p is free memory", addr);
		return FALSE;
	}
	if (ri.type != NTMM_MEM_MAPPED)
		return TRUE; /* private memory: no file behind it */
	err = ntmm_flush_view(p, va, size);
	if (err)
		return native_fail(err, 0, ERROR_INVALID_ADDRESS, ERROR_IO_DEVICE);
	return TRUE;
}

/* ------------------------------------------------------------ system */

void ntmm_win32_GetSystemInfo(LPSYSTEM_INFO si)
{
	if (!si)
		return;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	si->dwOemId = 0;
#if defined(__aarch64__)
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_ARM64;
	si->dwProcessorType = 0;
#else
	si->wProcessorArchitecture = PROCESSOR_ARCHITECTURE_AMD64;
	si->dwProcessorType = PROCESSOR_AMD_X8664;
#endif
	si->wReserved = 0;
	si->dwPageSize = NTMM_PAGE_SIZE;
	si->lpMinimumApplicationAddress = ntmm_win32_ptr(W32_GRANULE);
	si->lpMaximumApplicationAddress = ntmm_win32_ptr(W32_USER_END - 1);
	si->dwNumberOfProcessors = (DWORD)n;
	si->dwActiveProcessorMask = n >= 64 ? ~(DWORD_PTR)0 : ((DWORD_PTR)1 << n) - 1;
	si->dwAllocationGranularity = NTMM_ALLOCATION_GRANULARITY;
	si->wProcessorLevel = 0;
	si->wProcessorRevision = 0;
}
