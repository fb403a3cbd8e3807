; dirty — a writable working set for live migration (docs/snapshots.md "Live migration"): pass
; after pass, the guest increments one dword in each page of its working set, so every page of
; the set is dirtied again while a pre-copy round sends it (Clark et al., NSDI 2005). The size
; is chosen at run time: EDI = working-set pages (0: 64; at most 3072), ESI = passes (0: 2000)
; (`trapscope run dirty --guest-arg PAGES[,PASSES]`). A '.' on the debug console every 100
; passes; at the end every counter must equal the number of passes: "dirty: ok" and exit code 0,
; else "dirty: FAILED" and exit code 1 (a page lost or sent stale by a migration shows here).
; The VMM enters us in 32-bit protected mode at CPL 0, paging off, flat segments.
%include "trapscope.inc"
bits 32
org TS_LOAD_DEFAULT

WS_BASE   equ 0x100000           ; the working set: pages from 1 MiB up
MAX_PAGES equ 3072               ; 12 MiB: fits a 16 MiB guest

start:
    mov esp, TS_LOAD_DEFAULT
    test edi, edi
    jnz .pages_given
    mov edi, 64
.pages_given:
    cmp edi, MAX_PAGES
    jbe .pages_ok
    mov edi, MAX_PAGES
.pages_ok:
    test esi, esi
    jnz .passes_given
    mov esi, 2000
.passes_given:
    xor ebp, ebp                 ; passes done
.pass:
    mov ecx, edi
    mov ebx, WS_BASE
.page:
    inc dword [ebx]
    add ebx, 4096
    dec ecx
    jnz .page
    inc ebp
    mov eax, ebp
    xor edx, edx
    mov ecx, 100
    div ecx
    test edx, edx
    jnz .no_dot
    mov al, '.'
    out TS_DEBUG_PORT, al
.no_dot:
    cmp ebp, esi
    jb .pass
    ; every counter must be the number of passes
    mov ecx, edi
    mov ebx, WS_BASE
.check:
    cmp [ebx], esi
    jne .fail
    add ebx, 4096
    dec ecx
    jnz .check
    mov esi, msg_ok
    TS_PRINT_SI
    mov al, TS_EXIT_PASS
    out TS_CONTROL_PORT, al
    hlt
.fail:
    mov esi, msg_fail
    TS_PRINT_SI
    mov al, 1
    out TS_CONTROL_PORT, al
    hlt

msg_ok:   db 10, "dirty: ok", 10, 0
msg_fail: db 10, "dirty: FAILED", 10, 0
