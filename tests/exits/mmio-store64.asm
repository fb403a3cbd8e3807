; mmio-store64.asm — the same in 64-bit mode (identity map of 0..4 GiB; 0xF0000000 is mapped
; but unbacked): a REX.W store, a store with a 32-bit address and a store through RDI.
%include "trapscope.inc"
bits 64
org TS_LOAD_DEFAULT

%define MMIO 0xF0000000
    mov rax, 0x1122334455667788
    mov rbx, MMIO
    mov [rbx], rax              ; REX.W
    nop
    mov dword [ebx + 0x40], 7    ; address-size prefix (67)
    xor ecx, ecx
    lea rdi, [rbx + 0x80]
    mov [rdi + rcx*8], ecx
    pause
    mov al, TS_EXIT_PASS
    out TS_CONTROL_PORT, al
    hlt
