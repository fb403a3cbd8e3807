; hc-mmu-toctou — time of check against time of use in mmu_update. The pair
; list lies in guest memory and pair 0's PTE is pair 1's own PTE-address (or value) field: a
; VMM that validates the list and then reads it again while applying it writes pair 1 to an
; address it never checked. The VMM must copy the list once and apply the copy: pair 1 then
; lands where it was validated, and pair 0's store into the list is just a store to RAM.
%include "hostile.inc"

%define PAIRS   SCRATCH             ; (PTE GPA, value) pairs
%define TARGET  (SCRATCH + 0x1000)  ; the PTE pair 1 was validated for

start:
    mov rsp, TS_LOAD_DEFAULT
    ; 1. Pair 0 rewrites pair 1's PTE address to the first byte past RAM.
    mov qword [TARGET], 0
    mov qword [PAIRS], PAIRS + 16
    mov qword [PAIRS + 8], RAM_END          ; not present: no frame check
    mov qword [PAIRS + 16], TARGET
    mov rax, 0x4141414141414140             ; not present
    mov [PAIRS + 24], rax
    HC TS_HC_MMU_UPDATE, PAIRS, 2
    CHECK32 0
    CHECK64 TARGET, 0x4141414141414140      ; pair 1 went where it was validated
    CHECK64 PAIRS + 16, RAM_END             ; pair 0's store into the list

    ; 2. The same with an address that wraps 2^64 (RAM base − 8 on the host).
    mov qword [TARGET], 0
    mov rax, 0xFFFFFFFFFFFFFFF8
    mov [PAIRS + 8], rax
    mov qword [PAIRS + 16], TARGET
    HC TS_HC_MMU_UPDATE, PAIRS, 2
    CHECK32 0
    CHECK64 TARGET, 0x4141414141414140
    CHECK64 PAIRS + 16, 0xFFFFFFFFFFFFFFF8

    ; 3. Pair 0 rewrites pair 1's VALUE (into a not-present entry that passes every check):
    ;    pair 1 must still write the value it was validated with.
    mov qword [TARGET], 0
    mov qword [PAIRS], PAIRS + 24
    mov qword [PAIRS + 8], RAM_END
    mov qword [PAIRS + 16], TARGET
    mov qword [PAIRS + 24], 0x2000 | 1      ; a present PTE for frame 0x2000: valid
    HC TS_HC_MMU_UPDATE, PAIRS, 2
    CHECK32 0
    CHECK64 TARGET, 0x2001                  ; the validated value, not RAM_END
    CHECK64 PAIRS + 24, RAM_END

    ; 4. Three pairs, each rewriting the next one's PTE address (a chain).
    mov qword [TARGET], 0
    mov qword [TARGET + 8], 0
    mov qword [PAIRS], PAIRS + 16
    mov qword [PAIRS + 8], RAM_END + 8
    mov qword [PAIRS + 16], PAIRS + 32
    mov qword [PAIRS + 24], RAM_END + 16
    mov qword [PAIRS + 32], TARGET + 8
    mov qword [PAIRS + 40], 0x42
    HC TS_HC_MMU_UPDATE, PAIRS, 3
    CHECK32 0
    CHECK64 TARGET + 8, 0x42
    CHECK64 PAIRS + 32, RAM_END + 16
    PASS "hc-mmu-toctou"

    FAIL_EXIT
