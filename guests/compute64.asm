; compute64 — the second workload of the engine benches (bench/engine_ratios.cpp): a boot sector
; that switches to 64-bit long mode with paging on and runs an 8-instruction integer loop whose
; body includes a read-modify-write of memory, `add [base + index*8], reg` (the shape of issue
; 16's held-out guest; compute.asm, real mode without paging, flatters an interpreter).
;
; One flat image for three machines, as compute.asm: a 512-byte boot sector (0x55AA at 510) that
; Bochs and QEMU boot from a floppy and trapscope runs in real mode without a BIOS (`trapscope
; run compute64 --mode real`, at the default load address or `--load 0x7c00`). It finds where it
; was loaded (CS' * 16 + 0x7C00 = its linear address), patches the two linear addresses it needs
; (the GDT base and the far pointer to the 64-bit code), builds page tables at 0x1000-0x3FFF
; (PML4 -> PDPT -> PD, one 2 MiB page identity-mapping 0..2 MiB), sets CR4.PAE, CR3, EFER.LME
; and then CR0.PG|PE in one write, and far-jumps into a 64-bit code segment (SDM Vol. 3A 9.8.5).
;
; The work: a table of 257 qwords at 0x10000 (another page than the code) is cleared, then N
; passes of STEPS steps, each step these 8 instructions (x: a 64-bit generator state):
;     x = x * MULT + ADDEND; r = x >> 33; table[c] += r; mix ^= r; c -= 1 (c = STEPS .. 1)
; Per pass 8 * STEPS + 3 instructions (mov ecx / dec r8d / jnz around the steps). Checksum: s =
; x ^ mix, then s = rol(s, 1) + table[c] for c = STEPS .. 1, folded to 32 bits (low ^ high):
;     compute64: n=XXXXXXXX checksum=XXXXXXXX\n      (to port 0xE9)
; bench/peers.cpp keeps a C++ model of it. N is the dword at offset 504 (after "ITER" at 500).
; Then exit code 0 to port 0xF4 (trapscope's control port; QEMU's isa-debug-exit), then
; "Shutdown" to Bochs's shutdown port 0x8900, then `cli; hlt`.
%include "trapscope.inc"
bits 16
org 0x7C00

PML4          equ 0x1000
PDPT          equ 0x2000
PD            equ 0x3000
TABLE         equ 0x10000        ; 257 qwords: index 1..STEPS used
STACK         equ 0x7000         ; 64-bit stack top (identity-mapped, below any load address used)
STEPS         equ 256
MULT          equ 0x5851F42D     ; < 2^31: imul's imm32 is sign-extended
SEED          equ 0x89ABCDEF     ; zero-extended by mov edx
ADDEND        equ 0x14057B7EF767814F
CODE64_SEL    equ 0x08
DATA_SEL      equ 0x10
SHUTDOWN_PORT equ 0x8900

start:
    cli
    call .here
.here:
    pop bx                       ; runtime IP of .here
    sub bx, .here                ; (runtime IP - assembled offset), a multiple of 16
    sar bx, 4
    mov ax, cs
    add ax, bx                   ; CS' (CS' * 16 + offset = linear address)
    push ax
    push word .flush
    retf
.flush:
    mov ds, ax
    mov ss, ax
    mov sp, start
    movzx ebx, ax
    shl ebx, 4                   ; ebx = linear address of offset 0
    lea eax, [ebx + gdt]
    mov [gdt_desc + 2], eax
    lea eax, [ebx + lm64]
    mov [far_ptr], eax
    lgdt [gdt_desc]

    xor ax, ax                   ; page tables through ES = 0 (linear = offset)
    mov es, ax
    mov di, PML4
    mov cx, 3 * 4096 / 4
    xor eax, eax
    cld
    rep stosd
    mov dword [es:PML4], PDPT | 3        ; P | RW
    mov dword [es:PDPT], PD | 3
    mov dword [es:PD], 0x83              ; 2 MiB page at 0: P | RW | PS

    mov eax, 0x20
    mov cr4, eax                 ; PAE
    mov eax, PML4
    mov cr3, eax
    mov ecx, 0xC0000080          ; EFER
    rdmsr
    or ax, 0x100                 ; LME
    wrmsr
    mov eax, cr0
    or eax, 0x80000001           ; PG | PE: long mode (LMA) with a 16-bit CS until the jump
    mov cr0, eax
    jmp dword far [far_ptr]

bits 64
lm64:
    mov eax, DATA_SEL
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, STACK
    mov ebx, TABLE
    mov rdi, rbx
    mov ecx, STEPS + 1
    xor eax, eax
    rep stosq

    mov r8d, [rel iterations]
    mov edx, SEED
    mov rdi, ADDEND
    xor ebp, ebp
.outer:
    mov ecx, STEPS
.step:                           ; the 8-instruction loop
    imul rdx, rdx, MULT
    add rdx, rdi
    mov rax, rdx
    shr rax, 33
    add [rbx + rcx*8], rax
    xor rbp, rax
    dec ecx
    jnz .step
    dec r8d
    jnz .outer

    mov rax, rdx
    xor rax, rbp
    mov ecx, STEPS
.fold:
    rol rax, 1
    add rax, [rbx + rcx*8]
    dec ecx
    jnz .fold
    mov rdx, rax
    shr rdx, 32
    xor eax, edx
    mov r9d, eax                 ; the checksum

    lea rsi, [rel msg_n]
    call puts
    mov eax, [rel iterations]
    call put_hex32
    lea rsi, [rel msg_sum]
    call puts
    mov eax, r9d
    call put_hex32
    mov al, 10
    out TS_DEBUG_PORT, al
    mov al, TS_EXIT_PASS
    out TS_CONTROL_PORT, al      ; trapscope and QEMU (isa-debug-exit) stop here
    mov dx, SHUTDOWN_PORT        ; Bochs stops here
    lea rsi, [rel msg_shutdown]
.shutdown:
    lodsb
    test al, al
    jz .halt
    out dx, al
    jmp .shutdown
.halt:
    cli
    hlt
    jmp .halt

puts:                            ; rsi = NUL-terminated string
    lodsb
    test al, al
    jz .done
    out TS_DEBUG_PORT, al
    jmp puts
.done:
    ret

put_hex32:                       ; eax as 8 lower-case hex digits (branch-free per digit)
    mov edx, eax
    mov ecx, 8
    lea rsi, [rel hex_digits]
.digit:
    rol edx, 4
    mov eax, edx
    and eax, 0x0F
    mov al, [rsi + rax]
    out TS_DEBUG_PORT, al
    dec ecx
    jnz .digit
    ret

align 8
gdt:
    dq 0
    dq 0x00AF9A000000FFFF        ; 0x08: 64-bit code (L = 1), DPL 0
    dq 0x00CF92000000FFFF        ; 0x10: data, 4 GiB, DPL 0
gdt_desc:
    dw 3 * 8 - 1
    dd 0                         ; linear base: patched
far_ptr:
    dd 0                         ; offset: patched
    dw CODE64_SEL

hex_digits:   db "0123456789abcdef"
msg_n:        db "compute64: n=", 0
msg_sum:      db " checksum=", 0
msg_shutdown: db "Shutdown", 0

    times 500 - ($ - $$) db 0
    db "ITER"                    ; offset 500: magic, so the bench can find the count
iterations:
    dd 1000                      ; offset 504: N (patched by the bench)
    dw 0
    dw 0xAA55                    ; offset 510: boot signature
