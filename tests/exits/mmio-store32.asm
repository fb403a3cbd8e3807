; mmio-store32.asm — stores to unbacked guest-physical memory (MMIO) from 32-bit protected mode,
; each followed by other instructions: the VM-exit event of each store must carry the store's
; own RIP on both engines (KVM completes an MMIO write before it exits, so its RIP is already
; past the store; tests/test_exit_sites.cpp). Entered with --mode protected, paging off.
%include "trapscope.inc"
bits 32
org TS_LOAD_DEFAULT

%define MMIO 0xF0000000         ; far past any RAM a test gives the guest
    mov eax, 0x11223344
    mov [MMIO], eax             ; moffs form
    nop
    mov ebx, MMIO
    mov dword [ebx + 0x10], 0x55667788   ; base + disp8, immediate
    nop
    nop
    mov byte [ebx + ecx*4 + 0x20], 0x5a  ; SIB form (ecx = 0)
    inc eax
    mov [ebx + 0x30], ax        ; operand-size prefix
    mov al, TS_EXIT_PASS
    out TS_CONTROL_PORT, al
    hlt
