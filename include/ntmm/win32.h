/*
 * Win32-shaped memory API over ntmm, for code ported from Windows:
 * VirtualAlloc/Free/Protect/Query (and their Ex forms), CreateFileMapping,
 * MapViewOfFile(Ex, 2), UnmapViewOfFile(2), FlushViewOfFile, CloseHandle,
 * GetLastError/SetLastError and GetSystemInfo, with Windows' types,
 * constants, semantics and error codes (the ones RtlNtStatusToDosError
 * gives for the NTSTATUS that Windows' memory manager returns in each
 * case).
 *
 * ADDRESSES ARE ENGINE VIRTUAL ADDRESSES, NOT HOST POINTERS. An LPVOID that
 * these functions return or take is an address in an ntmm process's own
 * user address space (the uint64_t of ntmm.h) carried in a void *. It must
 * never be dereferenced: read and write through ntmm_read, ntmm_write or
 * ntmm_translate (inside an access section), converting with ntmm_win32_va.
 * Pointer arithmetic on it is fine, as on Windows.
 *
 * The process. The Ex forms (and MapViewOfFile2/UnmapViewOfFile2) take the
 * ntmm process to work on where Windows takes a process HANDLE. Every other
 * call works on the calling thread's "current process", set with
 * ntmm_win32_set_process: a thread-local pointer, NULL in every new thread
 * (it is not inherited). A call that needs a process and finds none (NULL)
 * fails with ERROR_INVALID_HANDLE, as Windows does for a NULL process
 * handle. GetCurrentProcess returns the current process.
 *
 * Errors. Each function fails as its Windows counterpart does (NULL or
 * FALSE or 0) and sets the calling thread's last error (GetLastError);
 * success leaves the last error as it was, except CreateFileMapping, which
 * sets ERROR_SUCCESS as Windows does for an unnamed mapping. The native
 * error and its detail stay available through ntmm_error_detail().
 * Things ntmm does not model (EXECUTE and caching protections, MEM_LARGE_PAGES,
 * MEM_PHYSICAL, MEM_WRITE_WATCH, SEC_IMAGE, SEC_NOCACHE, named mappings)
 * fail with ERROR_NOT_SUPPORTED where Windows would succeed.
 *
 * Mapping handles. CreateFileMapping takes a file descriptor (the engine
 * dups it; close yours when you like) or INVALID_HANDLE_VALUE (-1) for a
 * mapping backed by the paging files, and returns a HANDLE from a table
 * kept by this library for the whole host process (as a Windows process's
 * handle table): any thread may use it, with any engine process of the
 * engine the mapping belongs to, until CloseHandle. A closed or made-up
 * handle is ERROR_INVALID_HANDLE (handles carry a generation, so a stale
 * one is caught even when its slot was reused). Views outlive the handle.
 * Close every mapping handle before destroying its engine (the handle
 * holds a reference on a section of that engine).
 *
 * Threads: every function may be called from any thread, beside any other;
 * each takes the locks of the native call it wraps (see ntmm.h), and the
 * handle table has one mutex held only to look a handle up or change it.
 *
 * Names: the functions are exported as ntmm_win32_<WindowsName>; this
 * header #defines the Windows names to them unless NTMM_WIN32_NO_ALIASES
 * is defined before it is included.
 */
#ifndef NTMM_WIN32_H
#define NTMM_WIN32_H

#include <ntmm.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ types */

typedef int BOOL;
typedef uint8_t BYTE;
typedef uint16_t WORD;
typedef uint32_t DWORD; /* 32 bits, as on Windows (not unsigned long) */
typedef uint32_t ULONG;
typedef uint64_t ULONG64;
typedef uint64_t DWORD64;
typedef size_t SIZE_T;
typedef uintptr_t ULONG_PTR;
typedef intptr_t LONG_PTR;
typedef void *PVOID;
typedef void *LPVOID;
typedef const void *LPCVOID;
typedef void *HANDLE;
typedef uintptr_t DWORD_PTR;
typedef DWORD *PDWORD;
typedef SIZE_T *PSIZE_T;
typedef const char *LPCSTR;

typedef struct _SECURITY_ATTRIBUTES { /* accepted and ignored */
	DWORD nLength;
	LPVOID lpSecurityDescriptor;
	BOOL bInheritHandle;
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;

/* The x64 layout (48 bytes). BaseAddress and AllocationBase are engine
   virtual addresses. */
typedef struct _MEMORY_BASIC_INFORMATION {
	PVOID BaseAddress;       /* the page holding the address asked about */
	PVOID AllocationBase;    /* the reservation's or view's base; NULL when free */
	DWORD AllocationProtect; /* protection given at reservation; 0 when free */
	WORD PartitionId;        /* always 0 */
	SIZE_T RegionSize;       /* bytes of the run with one state and protection */
	DWORD State;             /* MEM_COMMIT, MEM_RESERVE or MEM_FREE */
	DWORD Protect;           /* committed: now; reserved: 0; free: PAGE_NOACCESS */
	DWORD Type;              /* MEM_PRIVATE or MEM_MAPPED; 0 when free */
} MEMORY_BASIC_INFORMATION, *PMEMORY_BASIC_INFORMATION;

/* GetSystemInfo's answer. */
typedef struct _SYSTEM_INFO {
	union {
		DWORD dwOemId;
		struct {
			WORD wProcessorArchitecture;
			WORD wReserved;
		};
	};
	DWORD dwPageSize;
	LPVOID lpMinimumApplicationAddress; /* engine virtual addresses */
	LPVOID lpMaximumApplicationAddress;
	DWORD_PTR dwActiveProcessorMask;
	DWORD dwNumberOfProcessors;
	DWORD dwProcessorType;
	DWORD dwAllocationGranularity;
	WORD wProcessorLevel;
	WORD wProcessorRevision;
} SYSTEM_INFO, *LPSYSTEM_INFO;

#define PROCESSOR_ARCHITECTURE_AMD64 9
#define PROCESSOR_ARCHITECTURE_ARM64 12
#define PROCESSOR_AMD_X8664          8664

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#ifndef WINAPI
#define WINAPI
#endif

/* CreateFileMapping's file argument for a mapping backed by the paging
   files (a descriptor here, so an int). */
#define INVALID_HANDLE_VALUE (-1)

/* ------------------------------------------------------------- constants */

#define MEM_COMMIT      0x00001000u
#define MEM_RESERVE     0x00002000u
#define MEM_DECOMMIT    0x00004000u
#define MEM_RELEASE     0x00008000u
#define MEM_FREE        0x00010000u
#define MEM_PRIVATE     0x00020000u
#define MEM_MAPPED      0x00040000u
#define MEM_RESET       0x00080000u
#define MEM_TOP_DOWN    0x00100000u
#define MEM_WRITE_WATCH 0x00200000u
#define MEM_PHYSICAL    0x00400000u
#define MEM_RESET_UNDO  0x01000000u
#define MEM_LARGE_PAGES 0x20000000u

#define PAGE_NOACCESS          0x001u
#define PAGE_READONLY          0x002u
#define PAGE_READWRITE         0x004u
#define PAGE_WRITECOPY         0x008u
#define PAGE_EXECUTE           0x010u
#define PAGE_EXECUTE_READ      0x020u
#define PAGE_EXECUTE_READWRITE 0x040u
#define PAGE_EXECUTE_WRITECOPY 0x080u
#define PAGE_GUARD             0x100u
#define PAGE_NOCACHE           0x200u
#define PAGE_WRITECOMBINE      0x400u

#define SEC_FILE         0x00800000u
#define SEC_IMAGE        0x01000000u
#define SEC_RESERVE      0x04000000u
#define SEC_COMMIT       0x08000000u
#define SEC_NOCACHE      0x10000000u
#define SEC_WRITECOMBINE 0x40000000u
#define SEC_LARGE_PAGES  0x80000000u

#define FILE_MAP_COPY        0x00000001u
#define FILE_MAP_WRITE       0x00000002u
#define FILE_MAP_READ        0x00000004u
#define FILE_MAP_ALL_ACCESS  0x000f001fu
#define FILE_MAP_EXECUTE     0x00000020u
#define FILE_MAP_LARGE_PAGES 0x20000000u
#define FILE_MAP_RESERVE     0x80000000u

/* Windows' error codes (winerror.h values) that these functions set. */
#define ERROR_SUCCESS           0u
#define ERROR_ACCESS_DENIED     5u
#define ERROR_INVALID_HANDLE    6u
#define ERROR_NOT_ENOUGH_MEMORY 8u
#define ERROR_BAD_LENGTH        24u
#define ERROR_NOT_SUPPORTED     50u
#define ERROR_INVALID_PARAMETER 87u
#define ERROR_BUSY              170u
#define ERROR_INVALID_ADDRESS   487u
#define ERROR_NOACCESS          998u
#define ERROR_SWAPERROR         999u
#define ERROR_FILE_INVALID      1006u
#define ERROR_IO_DEVICE         1117u
#define ERROR_MAPPED_ALIGNMENT  1132u
#define ERROR_COMMITMENT_LIMIT  1455u
/* What RtlNtStatusToDosError leaves of a guard-page violation (the status
   itself); no function here sets it. */
#define STATUS_GUARD_PAGE_VIOLATION 0x80000001u

/* ------------------------------------------------- process, last error */

/* Makes p the calling thread's current process (NULL: none) and returns
   the previous one. p is not checked here: the calls that use it refuse a
   NULL or not-live process with ERROR_INVALID_HANDLE (best effort, as
   ntmm's own handle check). Costs one thread-local store. The process must
   stay live while calls use it; destroying it does not clear the pointer. */
NTMM_API ntmm_process_t *ntmm_win32_set_process(ntmm_process_t *p);
/* The calling thread's current process, or NULL. */
NTMM_API ntmm_process_t *ntmm_win32_GetCurrentProcess(void);

/* The calling thread's last error (thread-local, 0 in a new thread). */
NTMM_API DWORD ntmm_win32_GetLastError(void);
NTMM_API void ntmm_win32_SetLastError(DWORD err);

/* The Windows error code that stands for a native ntmm error in general
   (0 → ERROR_SUCCESS, NTMM_EINVAL → ERROR_INVALID_PARAMETER, NTMM_ECONFLICT
   → ERROR_INVALID_ADDRESS, NTMM_ENOMEM → ERROR_NOT_ENOUGH_MEMORY,
   NTMM_ECOMMIT → ERROR_COMMITMENT_LIMIT, NTMM_EACCESS → ERROR_NOACCESS,
   NTMM_EGUARD → STATUS_GUARD_PAGE_VIOLATION, NTMM_EIO → ERROR_SWAPERROR,
   NTMM_EBUSY → ERROR_BUSY, NTMM_ENOTSUP →
   ERROR_NOT_SUPPORTED). Individual functions refine it where Windows does
   (each function's comment says how). */
NTMM_API DWORD ntmm_win32_error_from_ntmm(int err);

/* An LPVOID of this API as the engine virtual address it carries, and back. */
static inline uint64_t ntmm_win32_va(LPCVOID addr)
{
	return (uint64_t)(uintptr_t)addr;
}
static inline LPVOID ntmm_win32_ptr(uint64_t va)
{
	return (LPVOID)(uintptr_t)va;
}

/* ------------------------------------------------------- virtual memory */

/* VirtualAlloc: ntmm_allocate with Windows' errors. type: MEM_RESERVE,
   MEM_COMMIT or both (| MEM_TOP_DOWN), rounded as ntmm_allocate rounds
   (a reservation's base down to 64 KiB; the pages holding a byte of the
   range), or MEM_RESET / MEM_RESET_UNDO alone on a range inside one
   allocation (accepted and the contents kept: ntmm never discards them, which
   either flag allows). Returns the (rounded) base, or NULL with:
   ERROR_INVALID_PARAMETER (size 0; unknown type bits or a bad combination;
   a protection Windows refuses, WRITECOPY on private memory included; an
   address past the user address space), ERROR_NOT_SUPPORTED (EXECUTE,
   NOCACHE or WRITECOMBINE protections; MEM_LARGE_PAGES, MEM_PHYSICAL,
   MEM_WRITE_WATCH), ERROR_INVALID_ADDRESS (a reservation overlapping
   another; a commit or reset not inside one allocation),
   ERROR_COMMITMENT_LIMIT (the commit charge would pass the limit),
   ERROR_NOT_ENOUGH_MEMORY (no free range that large; host memory),
   ERROR_BUSY (recommitting with another protection inside an access
   section), ERROR_INVALID_HANDLE (no process, or not a live one). */
NTMM_API LPVOID ntmm_win32_VirtualAlloc(LPVOID addr, SIZE_T size, DWORD type, DWORD prot);
NTMM_API LPVOID ntmm_win32_VirtualAllocEx(ntmm_process_t *process, LPVOID addr, SIZE_T size,
                                          DWORD type, DWORD prot);

/* VirtualFree: ntmm_free. type exactly MEM_DECOMMIT (size 0: the whole
   allocation named by its base; else the pages holding a byte of the range)
   or MEM_RELEASE (size must be 0, addr the allocation base). FALSE with:
   ERROR_INVALID_PARAMETER (another type; MEM_RELEASE with size != 0; a view
   of a mapping, which only UnmapViewOfFile removes; an address past the user
   address space), ERROR_INVALID_ADDRESS (addr not the base for size 0;
   a range not inside one allocation; free memory), ERROR_NOT_ENOUGH_MEMORY,
   ERROR_BUSY (inside an access section), ERROR_INVALID_HANDLE. */
NTMM_API BOOL ntmm_win32_VirtualFree(LPVOID addr, SIZE_T size, DWORD type);
NTMM_API BOOL ntmm_win32_VirtualFreeEx(ntmm_process_t *process, LPVOID addr, SIZE_T size,
                                       DWORD type);

/* VirtualProtect: ntmm_protect; *old_prot gets the first page's protection.
   FALSE with: ERROR_NOACCESS (old_prot NULL, as Windows' probe of it
   faults), ERROR_INVALID_PARAMETER (size 0; a protection Windows refuses;
   in a view, one the mapping does not allow), ERROR_NOT_SUPPORTED (EXECUTE
   or caching protections), ERROR_INVALID_ADDRESS (a page not committed,
   or the range not inside one allocation), ERROR_NOT_ENOUGH_MEMORY,
   ERROR_BUSY, ERROR_INVALID_HANDLE. */
NTMM_API BOOL ntmm_win32_VirtualProtect(LPVOID addr, SIZE_T size, DWORD prot, PDWORD old_prot);
NTMM_API BOOL ntmm_win32_VirtualProtectEx(ntmm_process_t *process, LPVOID addr, SIZE_T size,
                                          DWORD prot, PDWORD old_prot);

/* VirtualQuery: ntmm_query into *info. Returns the bytes written
   (sizeof(MEMORY_BASIC_INFORMATION)), or 0 with: ERROR_BAD_LENGTH (len
   smaller than the structure), ERROR_NOACCESS (info NULL),
   ERROR_INVALID_PARAMETER (addr at or past the end of the user address
   space), ERROR_INVALID_HANDLE. Free memory below 64 KiB and between
   allocations is reported as one MEM_FREE region, as on Windows. */
NTMM_API SIZE_T ntmm_win32_VirtualQuery(LPCVOID addr, PMEMORY_BASIC_INFORMATION info, SIZE_T len);
NTMM_API SIZE_T ntmm_win32_VirtualQueryEx(ntmm_process_t *process, LPCVOID addr,
                                          PMEMORY_BASIC_INFORMATION info, SIZE_T len);

/* ------------------------------------------------------ file mappings */

/* CreateFileMapping over ntmm_section_create, on the engine of the calling
   thread's current process (the mapping may then be mapped into any process
   of that engine). fd: an open file descriptor
   (read access needed; write access too for PAGE_READWRITE), or
   INVALID_HANDLE_VALUE for a mapping backed by the paging files. prot:
   PAGE_READONLY, PAGE_READWRITE or PAGE_WRITECOPY (the most any view may
   get; every one of them allows FILE_MAP_COPY views, as on Windows),
   optionally | SEC_COMMIT (default: the whole size charged now) or
   SEC_RESERVE (pages committed later with VirtualAlloc(MEM_COMMIT) inside
   a view); for a file both are accepted and mean nothing. size_high:size_low:
   the mapping's size; 0 = the file's size (then the file may not be empty);
   past the file's end the file is grown, which only PAGE_READWRITE allows.
   security is ignored. name must be NULL.
   Returns a handle (and sets ERROR_SUCCESS), or NULL with:
   ERROR_INVALID_HANDLE (fd neither a descriptor nor INVALID_HANDLE_VALUE;
   no current process),
   ERROR_ACCESS_DENIED (the descriptor lacks the access prot needs; a
   directory), ERROR_INVALID_PARAMETER (any other protection; SEC_COMMIT
   with SEC_RESERVE, SEC_LARGE_PAGES, SEC_FILE, SEC_NOCACHE or
   SEC_WRITECOMBINE alone, unknown bits; size 0 for the paging files),
   ERROR_FILE_INVALID (size 0 and an empty file), ERROR_NOT_ENOUGH_MEMORY
   (a size past the end of a file prot may not grow; host memory),
   ERROR_COMMITMENT_LIMIT (SEC_COMMIT past the limit), ERROR_IO_DEVICE (the
   file could not be read, grown or dup'ed), ERROR_NOT_SUPPORTED (EXECUTE
   protections, SEC_IMAGE, SEC_NOCACHE/SEC_WRITECOMBINE with COMMIT or
   RESERVE, a name; or the section layer is absent). */
NTMM_API HANDLE ntmm_win32_CreateFileMapping(int fd, LPSECURITY_ATTRIBUTES security, DWORD prot,
                                             DWORD size_high, DWORD size_low, LPCSTR name);

/* MapViewOfFileEx over ntmm_map_view, in the current process. access:
   FILE_MAP_READ (a read-only view), FILE_MAP_WRITE or FILE_MAP_ALL_ACCESS
   (read-write), exactly FILE_MAP_COPY (copy-on-write: a write makes a
   private page; the mapping's file never sees it), or 0 (a view with no
   access; shown as its pages being PAGE_NOACCESS). offset_high:offset_low:
   a multiple of 64 KiB. count: bytes (0 = to the mapping's end). base: NULL
   (the engine chooses) or the 64 KiB aligned address wanted. Returns the
   view's base, or NULL with: ERROR_INVALID_HANDLE (not a mapping handle
   of this table; no current process), ERROR_ACCESS_DENIED (FILE_MAP_WRITE
   on a mapping that is not PAGE_READWRITE; offset or offset + count past the
   mapping's end), ERROR_MAPPED_ALIGNMENT (offset or base not a multiple of
   64 KiB), ERROR_INVALID_ADDRESS (base given and the range not free),
   ERROR_COMMITMENT_LIMIT (a FILE_MAP_COPY view is charged in full at map
   time), ERROR_NOT_ENOUGH_MEMORY (no free range; host memory),
   ERROR_NOT_SUPPORTED (FILE_MAP_EXECUTE, FILE_MAP_LARGE_PAGES,
   FILE_MAP_RESERVE; the section layer absent), ERROR_INVALID_PARAMETER. */
NTMM_API LPVOID ntmm_win32_MapViewOfFileEx(HANDLE mapping, DWORD access, DWORD offset_high,
                                           DWORD offset_low, SIZE_T count, LPVOID base);
NTMM_API LPVOID ntmm_win32_MapViewOfFile(HANDLE mapping, DWORD access, DWORD offset_high,
                                         DWORD offset_low, SIZE_T count);
/* MapViewOfFile2: into a given process, with a page protection (PAGE_NOACCESS,
   PAGE_READONLY, PAGE_READWRITE, PAGE_WRITECOPY) instead of FILE_MAP_ bits,
   and a 64-bit offset. alloc_type must be 0 (anything else:
   ERROR_NOT_SUPPORTED). Errors as MapViewOfFileEx;
   a protection outside those four is ERROR_INVALID_PARAMETER (EXECUTE ones
   ERROR_NOT_SUPPORTED), process NULL ERROR_INVALID_HANDLE. */
NTMM_API LPVOID ntmm_win32_MapViewOfFile2(HANDLE mapping, ntmm_process_t *process, ULONG64 offset,
                                          LPVOID base, SIZE_T count, ULONG alloc_type, ULONG prot);

/* UnmapViewOfFile over ntmm_unmap_view: addr may be any address inside the
   view (as on Windows). Dirty pages of a file are kept for the mapped page
   writer: nothing is lost. FALSE with: ERROR_INVALID_ADDRESS (addr not in
   a view: private memory, free memory, past user space), ERROR_BUSY (inside
   an access section), ERROR_INVALID_HANDLE (no current process). */
NTMM_API BOOL ntmm_win32_UnmapViewOfFile(LPCVOID addr);
/* UnmapViewOfFile2 in a given process; flags must be 0 (else
   ERROR_NOT_SUPPORTED). */
NTMM_API BOOL ntmm_win32_UnmapViewOfFile2(ntmm_process_t *process, LPCVOID addr, ULONG flags);

/* FlushViewOfFile over ntmm_flush_view: writes the dirty pages of
   [addr, addr + size) of one view (size 0: to the view's end) to the file
   and returns once they are durable (written and fdatasync'ed). A view of
   the paging files, or private memory, has nothing to flush: TRUE (as
   Windows' FlushViewOfFile treats STATUS_NOT_MAPPED_DATA). FALSE with:
   ERROR_INVALID_ADDRESS (free memory; a range leaving the view),
   ERROR_INVALID_PARAMETER (addr past the user address space),
   ERROR_IO_DEVICE (a write or the sync failed; the pages stay dirty),
   ERROR_INVALID_HANDLE (no current process). */
NTMM_API BOOL ntmm_win32_FlushViewOfFile(LPCVOID addr, SIZE_T size);

/* CloseHandle for a mapping handle: the handle becomes invalid; the
   mapping lives while a view maps it. FALSE with ERROR_INVALID_HANDLE
   (not a live mapping handle: NULL, closed already, made up). */
NTMM_API BOOL ntmm_win32_CloseHandle(HANDLE h);

/* GetSystemInfo: the engine's page size (4 KiB) and allocation granularity
   (64 KiB), its user address space ([0x10000, 0x7FFF'FFFE'FFFF], the same
   as x64 Windows'), and this machine's online CPUs. NULL is ignored. */
NTMM_API void ntmm_win32_GetSystemInfo(LPSYSTEM_INFO si);

#ifndef NTMM_WIN32_NO_ALIASES
#define GetCurrentProcess  ntmm_win32_GetCurrentProcess
#define GetSystemInfo      ntmm_win32_GetSystemInfo
#define GetLastError       ntmm_win32_GetLastError
#define SetLastError       ntmm_win32_SetLastError
#define VirtualAlloc       ntmm_win32_VirtualAlloc
#define VirtualAllocEx     ntmm_win32_VirtualAllocEx
#define VirtualFree        ntmm_win32_VirtualFree
#define VirtualFreeEx      ntmm_win32_VirtualFreeEx
#define VirtualProtect     ntmm_win32_VirtualProtect
#define VirtualProtectEx   ntmm_win32_VirtualProtectEx
#define VirtualQuery       ntmm_win32_VirtualQuery
#define VirtualQueryEx     ntmm_win32_VirtualQueryEx
#define CreateFileMapping  ntmm_win32_CreateFileMapping
#define CreateFileMappingA ntmm_win32_CreateFileMapping
#define MapViewOfFile      ntmm_win32_MapViewOfFile
#define MapViewOfFileEx    ntmm_win32_MapViewOfFileEx
#define MapViewOfFile2     ntmm_win32_MapViewOfFile2
#define UnmapViewOfFile    ntmm_win32_UnmapViewOfFile
#define UnmapViewOfFile2   ntmm_win32_UnmapViewOfFile2
#define FlushViewOfFile    ntmm_win32_FlushViewOfFile
#define CloseHandle        ntmm_win32_CloseHandle
#endif

#ifdef __cplusplus
}
#endif
#endif /* NTMM_WIN32_H */
