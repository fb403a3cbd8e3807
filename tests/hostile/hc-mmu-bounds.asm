; hc-mmu-bounds — mmu_update with huge counts, pair lists and PTEs that wrap 2^64 and 2^32 or
; lie just past RAM, unaligned and overlapping lists: each refused with its documented error
; (platform/hypercall.hpp) and nothing written, or applied exactly where asked.
%include "hostile.inc"

%define PAIRS   SCRATCH
%define TARGET  (SCRATCH + 0x1000)

start:
    mov rsp, TS_LOAD_DEFAULT
    mov qword [PAIRS], TARGET
    mov qword [PAIRS + 8], 0x10
    ; counts over the bound, also those whose count * 16 wraps
    HC TS_HC_MMU_UPDATE, PAIRS, 2049
    CHECK32 E2BIG
    HC TS_HC_MMU_UPDATE, PAIRS, 0x100000001
    CHECK32 E2BIG
    HC TS_HC_MMU_UPDATE, PAIRS, 0x1000000000000001
    CHECK32 E2BIG
    HC TS_HC_MMU_UPDATE, PAIRS, -1
    CHECK32 E2BIG
    ; pair lists that wrap or leave RAM
    HC TS_HC_MMU_UPDATE, 0xFFFFFFFFFFFFFFF0, 1
    CHECK32 EFAULT
    HC TS_HC_MMU_UPDATE, 0xFFFFFFFFFFFFFFF0, 2048
    CHECK32 EFAULT
    HC TS_HC_MMU_UPDATE, 0xFFFFFFF0, 2
    CHECK32 EFAULT
    HC TS_HC_MMU_UPDATE, RAM_END - 16, 2
    CHECK32 EFAULT
    HC TS_HC_MMU_UPDATE, RAM_END, 1
    CHECK32 EFAULT
    CHECK64 TARGET, 0

    ; PTEs that wrap or lie past RAM, unaligned PTEs, frames past RAM
%macro BADPTE 3  ; pte, value, error
    mov rax, %1
    mov [PAIRS], rax
    mov rax, %2
    mov [PAIRS + 8], rax
    HC TS_HC_MMU_UPDATE, PAIRS, 1
    CHECK32 %3
%endmacro
    BADPTE RAM_END, 0x10, EFAULT
    BADPTE RAM_END - 4, 0x10, EINVAL
    BADPTE 0xFFFFFFFFFFFFFFF8, 0x10, EFAULT
    BADPTE 0xFFFFFFF8, 0x10, EFAULT
    BADPTE TARGET, RAM_END | 1, EFAULT
    BADPTE TARGET, 0x000FFFFFFFFFF001, EFAULT
    CHECK64 TARGET, 0

    ; all or nothing: a valid pair, then a bad one
    mov qword [PAIRS], TARGET
    mov qword [PAIRS + 8], 0x77
    mov qword [PAIRS + 16], RAM_END
    mov qword [PAIRS + 24], 0x77
    HC TS_HC_MMU_UPDATE, PAIRS, 2
    CHECK32 EFAULT
    CHECK64 TARGET, 0

    ; the last qword of RAM, from a list in the last 16 bytes of RAM
    mov rdi, RAM_END - 16
    mov qword [rdi], RAM_END - 8
    mov qword [rdi + 8], 0x1234
    HC TS_HC_MMU_UPDATE, RAM_END - 16, 1
    CHECK32 0
    CHECK64 RAM_END - 8, 0x1234

    ; an unaligned list (no alignment is required of it)
    mov rdi, PAIRS + 3
    mov qword [rdi], TARGET
    mov qword [rdi + 8], 0x55
    mov qword [rdi + 16], TARGET + 8
    mov qword [rdi + 24], 0x66
    HC TS_HC_MMU_UPDATE, PAIRS + 3, 2
    CHECK32 0
    CHECK64 TARGET, 0x55
    CHECK64 TARGET + 8, 0x66

    ; overlapping: two pairs for one PTE (the last wins), a pair that writes itself
    mov qword [PAIRS], TARGET
    mov qword [PAIRS + 8], 0x11
    mov qword [PAIRS + 16], TARGET
    mov qword [PAIRS + 24], 0x22
    mov qword [PAIRS + 32], PAIRS + 32
    mov qword [PAIRS + 40], 0x99
    HC TS_HC_MMU_UPDATE, PAIRS, 3
    CHECK32 0
    CHECK64 TARGET, 0x22
    CHECK64 PAIRS + 32, 0x99
    PASS "hc-mmu-bounds"

    FAIL_EXIT
