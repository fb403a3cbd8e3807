; popek — a tiny 32-bit kernel that looks at itself with the instructions that make classic x86
; fail Popek & Goldberg's Theorem 1 (sensitive but not privileged; Robin & Irvine 2000), and
; prints what it sees on the debug console. Run it natively (`trapscope run popek`), under
; trap-and-emulate (`--backend sim --technique trap-emulate`) and under the VT-x model
; (`--technique vt`), or all three at once: `trapscope demo popek`.
;
; The VMM enters us in 32-bit protected mode at CPL 0 (its flat GDT at 0x500, no IDT,
; interrupts off). As a kernel does at boot we install our own GDT (with a TSS) and IDT, then:
;   1. `cli`, then `pushfd` shows IF        — natively IF=0; a deprivileged kernel sees the
;                                              REAL IF, which the VMM keeps at 1;
;   2. `popfd` restores a saved IF=1 and IOPL=3, then `pushfd` again — popf at CPL > 0 silently
;      ignores IF and IOPL, so a VMM never learns that the kernel re-enabled interrupts;
;   3. `push cs` / `mov ax, ss`            — the RPL is the real CPL (0 natively, 1 or 3 when
;                                              the kernel is deprivileged);
;   4. `sgdt`, `sidt`, `str`, `smsw`        — the system registers: ours natively, the VMM's
;                                              when deprivileged (location-sensitive);
; then `hlt`. Every console byte is an `out` (a VM exit); none of steps 1–4 traps at CPL > 0,
; so under trap-and-emulate the VMM never sees them and the output differs. Under VT-x the
; kernel keeps CPL 0 in non-root operation and the output is the native one.
;
; Host note: on this project's kvm_pvm hosts CPL 0 code runs in KVM's instruction emulator, which
; emulates all of these instructions (pushf/popf, push cs, mov from Sreg, sgdt/sidt/str/smsw,
; lgdt/lidt/ltr) as the SDM says; `trapscope cosim popek` checks KVM against the simulator.
%include "trapscope.inc"
bits 32
org TS_LOAD_DEFAULT

%define KERNEL_CS 0x08
%define KERNEL_DS 0x10
%define TSS_SEL   0x18

start:
    lgdt [gdt_ptr]
    jmp KERNEL_CS:.reload           ; far jump: CS from our GDT
.reload:
    mov ax, KERNEL_DS
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, stack_top
    lidt [idt_ptr]
    mov ax, TSS_SEL
    ltr ax

    mov esi, msg_hello
    call puts

    ; 1. interrupts off, then look at IF
    pushfd                          ; save the flags (IF=0: the VMM entered us with it off)
    pop dword [saved_flags]
    or dword [saved_flags], 0x3200  ; the state to restore later: IF=1, IOPL=3
    cli
    mov esi, msg_cli
    call puts
    call print_flags

    ; 2. restore "IF=1, IOPL=3" with popf, then look again
    push dword [saved_flags]
    popfd
    mov esi, msg_popf
    call puts
    call print_flags

    ; 3. what CPL am I at?
    mov esi, msg_cs
    call puts
    push cs
    pop eax
    call print_rpl
    mov esi, msg_ss
    call puts
    mov ax, ss
    call print_rpl

    ; 4. where are my tables?
    sgdt [table]
    mov esi, msg_sgdt
    call puts
    call print_table
    sidt [table]
    mov esi, msg_sidt
    call puts
    call print_table
    mov esi, msg_str
    call puts
    xor eax, eax
    str ax
    call print_hex16
    call newline
    mov esi, msg_smsw
    call puts
    xor eax, eax
    smsw ax
    call print_hex16
    call newline

    mov esi, msg_done
    call puts
    cli
    hlt

; --- printing (every byte is an `out` to the debug console: a VM exit) -----------------------

; esi = NUL-terminated string
puts:
    push eax
    push edx
    TS_PRINT_SI
    pop edx
    pop eax
    ret

putc:                               ; al
    push edx
    mov dx, TS_DEBUG_PORT
    out dx, al
    pop edx
    ret

newline:
    push eax
    mov al, 10
    call putc
    pop eax
    ret

; eax = value; prints 'nibbles' hex digits of it (ecx = count, from the top of the low 4*ecx bits)
print_hex:
    push eax
    push ebx
    push ecx
    mov ebx, eax
.digit:
    mov eax, ebx
    lea edx, [ecx * 4 - 4]
    push ecx
    mov ecx, edx
    shr eax, cl
    pop ecx
    and eax, 0xF
    mov al, [hex_digits + eax]
    call putc
    loop .digit
    pop ecx
    pop ebx
    pop eax
    ret

print_hex16:
    push ecx
    mov ecx, 4
    call print_hex
    pop ecx
    ret

print_hex32:
    push ecx
    mov ecx, 8
    call print_hex
    pop ecx
    ret

; " IF=<0|1> IOPL=<n>\n" from pushfd
print_flags:
    pushfd
    pop ebx
    mov esi, msg_if
    call puts
    mov eax, ebx
    shr eax, 9
    and eax, 1
    add al, '0'
    call putc
    mov esi, msg_iopl
    call puts
    mov eax, ebx
    shr eax, 12
    and eax, 3
    add al, '0'
    call putc
    call newline
    ret

; ax = a selector: "<selector> (RPL <n>)\n"
print_rpl:
    and eax, 0xFFFF
    call print_hex16
    mov esi, msg_rpl
    call puts
    and al, 3
    add al, '0'
    call putc
    mov al, ')'
    call putc
    call newline
    ret

; [table] = limit (2 bytes), base (4): "base=<hex> limit=<hex>\n"
print_table:
    mov esi, msg_base
    call puts
    mov eax, [table + 2]
    call print_hex32
    mov esi, msg_limit
    call puts
    movzx eax, word [table]
    call print_hex16
    call newline
    ret

; --- data --------------------------------------------------------------------------------------

hex_digits: db "0123456789abcdef"
msg_hello:  db "popek: a kernel looks at itself", 10, 0
msg_cli:    db "after cli:        ", 0
msg_popf:   db "after popf(IF=1): ", 0
msg_if:     db "IF=", 0
msg_iopl:   db " IOPL=", 0
msg_cs:     db "push cs:   ", 0
msg_ss:     db "mov ax,ss: ", 0
msg_rpl:    db " (CPL ", 0
msg_sgdt:   db "sgdt: ", 0
msg_sidt:   db "sidt: ", 0
msg_base:   db "base=", 0
msg_limit:  db " limit=", 0
msg_str:    db "str:  ", 0
msg_smsw:   db "smsw: ", 0
msg_done:   db "popek: done", 10, 0

align 4
saved_flags: dd 0
table:       times 6 db 0

align 8
gdt:
    dq 0                             ; null
    dq 0x00CF9B000000FFFF            ; 0x08 code: base 0, 4 GiB, 32-bit, DPL 0, readable
    dq 0x00CF93000000FFFF            ; 0x10 data: base 0, 4 GiB, writable, DPL 0 (accessed bits
                                     ;      pre-set: kvm_pvm does not set them, see rings.asm)
tss_desc:                            ; 0x18: 32-bit available TSS at `tss`, limit 0x67
    dw 0x67
    dw tss
    db 0
    db 0x89
    db 0
    db 0
gdt_end:
gdt_ptr:
    dw gdt_end - gdt - 1
    dd gdt

align 8
idt:
    times 32 dq 0                    ; no gates: popek takes no exceptions
idt_ptr:
    dw 32 * 8 - 1
    dd idt

align 4
tss:
    times 0x68 db 0

align 16
    times 256 db 0
stack_top:
