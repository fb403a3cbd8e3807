; kernelops — a kernel-heavy 32-bit loop for binary translation (bench/bt_speed): every pass runs
; the sensitive and privileged instructions a kernel uses all the time, with a little
; arithmetic between them. Under `--technique bt` (sim/bt/translator.hpp) each kind shows up:
; cli, sti, pushfd, popfd, smsw, sgdt, mov from DS stay in the translation cache (in-cache
; emulation); mov to/from CR0 and CR3, lgdt, mov to DS and invlpg call out to the VMM. No port
; I/O inside the loop (an `out` is a VM exit on every technique), so the loop measures the
; translator, not exits. Paging is off, so the CR3 writes change nothing but the TLB.
; The VMM enters us in 32-bit protected mode at CPL 0 with its flat GDT at 0x500 (selectors 0x08
; code, 0x10 data); we run ITERATIONS passes, print "kernelops: done" and exit with code 0.
%include "trapscope.inc"
bits 32
org TS_LOAD_DEFAULT

ITERATIONS equ 20000
; Data and stack on other pages than the code: a write to a page that holds translated code
; invalidates its units (as a real kernel, which keeps code and data apart).
TABLE      equ 0x9000            ; 6 bytes: sgdt/lgdt pseudo-descriptor
RESULT     equ 0x9010
STACK_TOP  equ 0xA000

start:
    mov esp, STACK_TOP
    xor ebx, ebx
    mov ecx, ITERATIONS
.loop:
    cli
    pushfd
    sti
    popfd                        ; IF back to 0
    smsw ax
    mov eax, cr0
    mov cr0, eax
    mov eax, cr3
    mov cr3, eax
    sgdt [TABLE]
    lgdt [TABLE]
    mov ax, ds
    mov ds, ax
    invlpg [TABLE]
    add ebx, ecx
    rol ebx, 3
    xor ebx, 0x5BD1E995
    dec ecx
    jnz .loop
    mov [RESULT], ebx
    mov esi, msg_done
    TS_PRINT_SI
    mov al, TS_EXIT_PASS
    out TS_CONTROL_PORT, al
    hlt

msg_done: db "kernelops: done", 10, 0

