; rings — privilege rings and traps: a tiny kernel at CPL 0 runs a tiny program at CPL 3, and
; everything the program is not allowed to do traps back to the kernel.
;
; The VMM enters us in 64-bit long mode at CPL 0 (its GDT at 0x500, its page tables at 0x1000,
; no IDT). As a kernel does at boot, we then install our own:
;   GDT   kernel code/data (DPL 0), user data/code (DPL 3), and a TSS descriptor;
;   TSS   whose RSP0 is the stack the CPU switches to when a trap takes it from CPL 3 to CPL 0
;         (loaded with `ltr`); its I/O-permission-bitmap offset points past its end, so with
;         IOPL=0 every `in`/`out` at CPL 3 is refused;
;   IDT   256 interrupt gates (`lidt`), each to a small stub that records the vector number;
;   paging our own 4-level tables with 4 KiB pages for 0..8 MiB: everything supervisor-only
;         (U/S=0) except one user code page and one user stack page (U/S=1), and the page at
;         0x400000 not present at all.
; Then `iretq` "returns" to CPL 3 (a CS whose selector has RPL 3), and the user code tries, one
; after the other: cli, hlt, mov cr3, in, out (each #GP(0): privileged or I/O instruction at
; CPL 3), a read of 0x400000 (#PF, error code 0x4 = user-mode read of a not-present page,
; CR2 = the address), and ud2 (#UD). Before each one it puts the address of the next
; instruction in r15; the handler prints a line about the trap and `iretq`s to r15. The #UD
; handler ends the run: it checks that exactly the expected traps happened and writes the result
; to the control port (0 = passed).
;
; Which VM exits to expect: every byte of console output is an `out` at CPL 0, i.e. a VM exit
; (KVM_EXIT_IO, port 0xE9); the final `out` to port 0xF4 ends the run. The traps themselves are
; NOT VM exits: the CPU (or, on this project's kvm_pvm host, the kernel's KVM) delivers them to
; the guest's own IDT without asking the VMM — the guest kernel handles its own user program.
;
; Host note (kvm_pvm, a KVM without hardware nesting): the CPL 3 code runs natively, the CPL 0
; code runs in KVM's instruction emulator; `int n` and `syscall`/`sysret` do not work there, which
; is why the user code enters the kernel only through exceptions. On VT-x/AMD-V everything runs
; natively and the output is identical.
%include "trapscope.inc"
bits 64
org TS_LOAD_DEFAULT

; Linear address of a label as a plain number (nasm only shifts/masks plain numbers).
%define ABS(label) ((label) - $$ + TS_LOAD_DEFAULT)

; --- Selectors into our GDT: index * 8 | RPL.
%define KERNEL_CS       0x08
%define KERNEL_DS       0x10
%define USER_DS         (0x18 | 3)
%define USER_CS         (0x20 | 3)
%define TSS_SEL         0x28

; --- Memory map (guest-physical == linear: everything is identity-mapped).
;   0x00500            the VMM's GDT           (unused once we lgdt ours)
;   0x01000..0x06FFF   the VMM's page tables   (unused once we load CR3)
;   below 0x08000      the boot stack the VMM gave us (RSP=0x8000)
;   0x08000..          this image: kernel code and data, then the page-aligned user code page
%define PML4            0x20000     ; level 4 (one entry used)
%define PDPT            0x21000     ; level 3 (one entry used)
%define PD              0x22000     ; level 2 (four entries used, one per page table)
%define PT              0x23000     ; level 1: four tables, 0x23000..0x26FFF, 2048 entries;
%define MAPPED_PAGES    2048        ;   the entry for address A is at PT + (A >> 12) * 8
%define IDT             0x27000     ; 256 gates * 16 bytes = one page
%define TRAP_STACK_TOP  0x29000     ; kernel trap stack 0x28000..0x28FFF, = TSS.RSP0
%define USER_STACK      0x30000     ; user stack page (U/S=1)
%define USER_STACK_TOP  0x31000
%define UNMAPPED        0x400000    ; the page the user program reads: not present

%define PTE_P           0x1         ; present
%define PTE_RW          0x2         ; writable
%define PTE_US          0x4         ; user-accessible (CPL 3 may touch it)

%define GATE_INTR       0x8E        ; IDT gate: present, DPL 0, type 0xE = 64-bit interrupt gate

; Vectors for which the CPU pushes an error code (all others: the stub pushes a 0 instead).
%assign ERRCODE_MASK (1<<8)|(1<<10)|(1<<11)|(1<<12)|(1<<13)|(1<<14)|(1<<17)|(1<<21)|(1<<29)|(1<<30)

; Exit codes written to the control port.
%define EXIT_WRONG_COUNT   1        ; the #UD came, but after the wrong number of traps
%define EXIT_KERNEL_TRAP   2        ; a trap from CPL 0: a bug in this kernel
%define EXIT_UNEXPECTED    3        ; a trap at an unexpected rip, or with the wrong vector/error/cr2
%define EXIT_WRONG_STACK   4        ; the handler is not running on the TSS.RSP0 stack

; =================================================================================== kernel
start:
    PUTS {"rings: kernel at CPL 0 sets up its GDT, TSS, IDT and page tables", 10}

    ; --- GDT. Our kernel code/data selectors are the VMM's (0x08, 0x10), but reload them anyway
    ; so the CPU's hidden segment caches come from our table: CS via a far return, the rest by mov.
    lgdt [rel gdt_desc]
    push qword KERNEL_CS
    lea rax, [rel .new_cs]
    push rax
    retfq                           ; pops RIP, then CS
.new_cs:
    mov ax, KERNEL_DS
    mov ds, ax
    mov es, ax
    mov ss, ax

    ; --- TSS: ltr loads the task register from GDT entry 0x28 (and marks that descriptor busy).
    mov ax, TSS_SEL
    ltr ax

    ; --- IDT: gate[v] -> isr<v>, kernel code segment, interrupt gate (IF cleared on entry).
    lea rsi, [rel isr_table]
    mov edi, IDT
    mov ecx, 256
.gate:
    mov rax, [rsi]                  ; rax = address of the stub for this vector
    mov [rdi], ax                   ; offset 15..0
    mov word [rdi + 2], KERNEL_CS   ; code segment selector
    mov byte [rdi + 4], 0           ; IST = 0: use RSP0 from the TSS when coming from CPL 3
    mov byte [rdi + 5], GATE_INTR
    shr rax, 16
    mov [rdi + 6], ax               ; offset 31..16
    shr rax, 16
    mov [rdi + 8], eax              ; offset 63..32
    mov dword [rdi + 12], 0         ; reserved
    add rsi, 8
    add rdi, 16
    dec ecx
    jnz .gate
    lidt [rel idt_desc]

    ; --- Page tables. The upper levels allow everything (U/S=1, RW=1); the last level decides.
    mov edi, PML4                   ; clear PML4, PDPT, PD
    mov ecx, 3 * 4096 / 8
    xor eax, eax
.clear:
    mov [rdi], rax
    add rdi, 8
    dec ecx
    jnz .clear
    mov qword [PML4], PDPT | PTE_P | PTE_RW | PTE_US    ; PML4[0] -> PDPT (0..512 GiB)
    mov qword [PDPT], PD | PTE_P | PTE_RW | PTE_US      ; PDPT[0] -> PD   (0..1 GiB)
    mov edi, PD                     ; PD[0..3] -> the four page tables (0..8 MiB)
    mov eax, PT | PTE_P | PTE_RW | PTE_US
    mov ecx, 4
.pd:
    mov [rdi], rax
    add eax, 4096
    add rdi, 8
    dec ecx
    jnz .pd
    mov edi, PT                     ; PT[i] = i * 4 KiB | P | RW: identity, supervisor-only
    mov eax, PTE_P | PTE_RW
    mov ecx, MAPPED_PAGES
.pt:
    mov [rdi], rax
    add rax, 4096
    add rdi, 8
    dec ecx
    jnz .pt
    lea rax, [rel user_page]        ; the three exceptions to the rule:
    shr rax, 12
    or qword [PT + rax * 8], PTE_US                     ;   user code page: U/S=1 (read-only
    and qword [PT + rax * 8], ~PTE_RW                   ;   for CPL 3, as code should be)
    or qword [PT + (USER_STACK >> 12) * 8], PTE_US      ;   user stack page: U/S=1
    mov qword [PT + (UNMAPPED >> 12) * 8], 0            ;   0x400000: not present
    mov eax, PML4
    mov cr3, rax                    ; switch to our tables (also flushes the TLB)

    PUTS "rings: TSS.RSP0="
    mov eax, TRAP_STACK_TOP
    call print_hex
    PUTS ", IDT at "
    mov eax, IDT
    call print_hex
    PUTS ", CR3="
    mov rax, cr3
    call print_hex
    PUTS {10, "rings: user pages (U/S=1): code "}
    lea rax, [rel user_page]
    call print_hex
    PUTS ", stack "
    mov eax, USER_STACK
    call print_hex
    PUTS "; not present: "
    mov eax, UNMAPPED
    call print_hex
    PUTS {10, "rings: iretq to CPL 3", 10}

    ; --- Drop to CPL 3: build the frame an interrupt from CPL 3 would have left, and "return".
    push qword USER_DS              ; SS
    push qword USER_STACK_TOP       ; RSP
    push qword 0x2                  ; RFLAGS: IF=0, IOPL=0 (so cli/in/out are privileged)
    push qword USER_CS              ; CS: RPL 3 => the CPU continues at CPL 3
    lea rax, [rel user_entry]
    push rax                        ; RIP
    iretq

; ------------------------------------------------------------------------------ trap entry
; One stub per vector: make every frame look the same (push a 0 where the CPU pushes no error
; code), push the vector number, and go to the common handler.
isr_stubs:
%assign vec 0
%rep 256
isr%[vec]:
  %if vec < 32 && ((ERRCODE_MASK >> vec) & 1)
                                    ; (the CPU pushed an error code)
  %else
    push qword 0                    ; no error code: push a dummy one
  %endif
    push qword vec
    jmp trap_common
  %assign vec vec+1
%endrep

; The trap stack (TSS.RSP0) when trap_common has saved registers and set rbp = rsp:
%define F_VECTOR  (7 * 8)           ; pushed by the stub
%define F_ERROR   (8 * 8)           ; pushed by the CPU (or the stub's dummy 0)
%define F_RIP     (9 * 8)           ; pushed by the CPU: in 64-bit mode always all five
%define F_CS      (10 * 8)          ;   (RIP, CS, RFLAGS, RSP, SS), whatever the CPL,
%define F_RFLAGS  (11 * 8)          ;   and `iretq` pops them back
%define F_RSP     (12 * 8)
%define F_SS      (13 * 8)

trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    mov rbp, rsp
    ; Use the kernel's own data segments. `iretq` to CPL 3 nulls DS/ES/FS/GS when their DPL is
    ; below the new CPL (SDM Vol. 2, IRET: return to outer privilege level); a kernel must not
    ; depend on what they hold when it is entered from user mode. (This project's kvm_pvm hosts
    ; keep 0x10 there; the SDM and the simulator null them: reloading makes both agree.)
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    inc qword [rel trap_count]

    ; trap: vector=13 (#GP) error=0x0 from CPL 3 rip=0x... [cr2=0x...] [instruction]
    PUTS "trap: vector="
    mov rax, [rbp + F_VECTOR]
    call print_dec
    PUTS " ("
    mov rax, [rbp + F_VECTOR]
    call vector_name
    call print_str
    PUTS ") error="
    mov rcx, [rbp + F_VECTOR]
    cmp ecx, 32
    jae .no_error_code
    mov rax, ERRCODE_MASK
    shr rax, cl
    test al, 1
    jz .no_error_code
    mov rax, [rbp + F_ERROR]
    call print_hex
    jmp .cpl
.no_error_code:
    PUTS "none"
.cpl:
    PUTS " from CPL "
    mov rax, [rbp + F_CS]
    and eax, 3                      ; the CPL the trap came from = RPL of the saved CS
    call print_dec
    PUTS " rip="
    mov rax, [rbp + F_RIP]
    call print_hex
    cmp qword [rbp + F_VECTOR], 14
    jne .lookup
    PUTS " cr2="
    mov rax, cr2                    ; #PF: CR2 holds the linear address that faulted
    call print_hex
.lookup:
    call find_expected              ; rbx = entry for the saved rip, or 0
    test rbx, rbx
    jz .newline
    PUTS " ["
    mov rsi, [rbx + EXP_NAME]
    call print_str
    PUTS "]"
.newline:
    PUTS {10}

    ; --- Is this a trap we expected?
    lea rsi, [rel s_kernel_trap]
    mov bl, EXIT_KERNEL_TRAP
    test qword [rbp + F_CS], 3      ; from CPL 0 (no stack switch then): our own bug
    jz fail
    lea rsi, [rel s_wrong_stack]
    mov bl, EXIT_WRONG_STACK
    cmp rbp, TRAP_STACK_TOP - 4096  ; from CPL 3 the CPU must have switched to TSS.RSP0
    jb fail
    cmp rbp, TRAP_STACK_TOP
    jae fail
    call find_expected
    lea rsi, [rel s_unexpected]
    test rbx, rbx
    jz .unexpected
    mov rax, [rbp + F_VECTOR]
    cmp rax, [rbx + EXP_VECTOR]
    jne .unexpected
    mov rax, [rbp + F_ERROR]
    cmp rax, [rbx + EXP_ERROR]
    jne .unexpected
    cmp qword [rbp + F_VECTOR], 14
    jne .expected
    mov rax, cr2
    cmp rax, UNMAPPED
    je .expected
.unexpected:
    mov bl, EXIT_UNEXPECTED
    jmp fail
.expected:
    cmp qword [rbp + F_VECTOR], 6   ; #UD: the user program's last instruction
    je finish

    ; --- Resume the user program where it asked (r15), skipping the instruction that trapped.
    mov [rbp + F_RIP], r15
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16                     ; drop vector and error code
    iretq                           ; back to CPL 3

finish:
    lea rsi, [rel s_wrong_count]
    mov bl, EXIT_WRONG_COUNT
    cmp qword [rel trap_count], EXPECTED_TRAPS
    jne fail
    PUTS "rings: "
    mov rax, [rel trap_count]
    call print_dec
    PUTS " traps from CPL 3, all handled at CPL "
    mov ax, cs
    and eax, 3                      ; our own CPL = RPL of CS
    call print_dec
    PUTS {10}
    mov al, TS_EXIT_PASS
    mov dx, TS_CONTROL_PORT
    out dx, al                      ; VM exit: IO, port 0xF4 — the run ends, exit code 0
    hlt

fail:                               ; rsi = message, bl = exit code
    call print_str
    mov al, bl
    mov dx, TS_CONTROL_PORT
    out dx, al                      ; VM exit: IO, port 0xF4 — the run ends, exit code != 0
    hlt

; find_expected: rbx = the expected_traps entry whose rip is the saved rip, or 0.
find_expected:
    mov rax, [rbp + F_RIP]
    lea rbx, [rel expected_traps]
    mov ecx, EXPECTED_TRAPS
.next:
    cmp rax, [rbx + EXP_RIP]
    je .found
    add rbx, EXP_SIZE
    dec ecx
    jnz .next
    xor ebx, ebx
.found:
    ret

; --------------------------------------------------------------------------- print helpers
; All print on the debug console; each byte is one `out`, i.e. one VM exit.

putc:                               ; al = byte
    push rdx
    mov dx, TS_DEBUG_PORT
    out dx, al                      ; VM exit: IO, port 0xE9, out, 1 byte
    pop rdx
    ret

print_str:                          ; rsi = NUL-terminated string; clobbers rax, rsi
    mov al, [rsi]
    test al, al
    jz .done
    call putc
    inc rsi
    jmp print_str
.done:
    ret

print_hex:                          ; rax = value, printed as 0x... without leading zeros
    push rbx
    push rcx
    push rdx
    mov rbx, rax
    mov al, '0'
    call putc
    mov al, 'x'
    call putc
    mov ecx, 60                     ; shift that brings the top nibble down
    xor edx, edx                    ; edx = 1 once a digit has been printed
.digit:
    mov rax, rbx
    shr rax, cl
    and eax, 0xF
    jnz .print
    test edx, edx
    jnz .print
    test ecx, ecx                   ; a zero with nothing printed yet: skip it, unless last
    jnz .skip
.print:
    mov edx, 1
    add al, '0'
    cmp al, '9'
    jbe .emit
    add al, 'a' - '0' - 10
.emit:
    call putc
.skip:
    sub ecx, 4
    jns .digit
    pop rdx
    pop rcx
    pop rbx
    ret

print_dec:                          ; rax = value, printed in decimal
    push rbx
    push rcx
    push rdx
    mov ebx, 10
    xor ecx, ecx                    ; number of digits pushed
.divide:
    xor edx, edx
    div rbx                         ; rax = rax / 10, rdx = last digit
    push rdx
    inc ecx
    test rax, rax
    jnz .divide
.emit:
    pop rax
    add al, '0'
    call putc
    dec ecx
    jnz .emit
    pop rdx
    pop rcx
    pop rbx
    ret

vector_name:                        ; rax = vector -> rsi = its short name
    lea rsi, [rel s_interrupt]
    cmp rax, 32
    jae .done
    lea rsi, [rel vector_names]
    lea rsi, [rsi + rax * 4]
.done:
    ret

; ------------------------------------------------------------------------------ kernel data
align 8
; The code and data descriptors have their accessed bit (type bit 0) already set: the CPU sets it
; on the first load (SDM Vol. 3A 3.4.5.1) and a kernel that sets it up front keeps its GDT from
; being written to. (This project's kvm_pvm hosts do not set it on the `iretq` to CPL 3; the
; SDM and the simulator do.)
gdt:
    dq 0                            ; 0x00: null
    dq 0x00AF9B000000FFFF           ; 0x08: kernel code: L=1 (64-bit), DPL 0
    dq 0x00CF93000000FFFF           ; 0x10: kernel data: DPL 0, writable
    dq 0x00CFF3000000FFFF           ; 0x18: user data:   DPL 3, writable
    dq 0x00AFFB000000FFFF           ; 0x20: user code:   L=1 (64-bit), DPL 3
    ; 0x28: TSS descriptor — 16 bytes in long mode (a 64-bit base does not fit in 8)
    dw tss_end - tss - 1            ; limit 15..0
    dw ABS(tss) & 0xFFFF            ; base 15..0
    db (ABS(tss) >> 16) & 0xFF      ; base 23..16
    db 0x89                         ; present, DPL 0, type 9 = available 64-bit TSS
    db 0                            ; flags, limit 19..16
    db (ABS(tss) >> 24) & 0xFF      ; base 31..24
    dd 0                            ; base 63..32
    dd 0                            ; reserved
gdt_end:

gdt_desc:
    dw gdt_end - gdt - 1
    dq gdt

idt_desc:
    dw 256 * 16 - 1
    dq IDT

align 16
tss:                                ; the 64-bit TSS: no task switching, just stack pointers
    dd 0                            ; reserved
    dq TRAP_STACK_TOP               ; RSP0: the stack for traps from CPL 3 to CPL 0
    dq 0                            ; RSP1
    dq 0                            ; RSP2
    dq 0                            ; reserved
    times 7 dq 0                    ; IST1..IST7 (unused: every gate has IST=0)
    dq 0                            ; reserved
    dw 0                            ; reserved
    dw tss_end - tss                ; I/O map base beyond the limit: no I/O permission bitmap
tss_end:

isr_table:                          ; address of each vector's stub, read when building the IDT
%assign vec 0
%rep 256
    dq isr%[vec]
  %assign vec vec+1
%endrep

; The traps the user program must cause, in order: where, which vector, which error code.
EXP_RIP    equ 0
EXP_VECTOR equ 8
EXP_ERROR  equ 16
EXP_NAME   equ 24
EXP_SIZE   equ 32
expected_traps:
    dq u_cli,  13, 0, s_cli
    dq u_hlt,  13, 0, s_hlt
    dq u_cr3,  13, 0, s_cr3
    dq u_in,   13, 0, s_in
    dq u_out,  13, 0, s_out
    dq u_read, 14, 4, s_read        ; error 0x4: U/S=1 (from CPL 3), W/R=0 (read), P=0 (not present)
    dq u_ud2,  6,  0, s_ud2         ; #UD pushes no error code (the stub's 0)
expected_traps_end:
EXPECTED_TRAPS equ (expected_traps_end - expected_traps) / EXP_SIZE

trap_count: dq 0

vector_names:                       ; 4 bytes each: 3 characters and a NUL
    db "#DE", 0, "#DB", 0, "NMI", 0, "#BP", 0, "#OF", 0, "#BR", 0, "#UD", 0, "#NM", 0
    db "#DF", 0, "CSO", 0, "#TS", 0, "#NP", 0, "#SS", 0, "#GP", 0, "#PF", 0, "---", 0
    db "#MF", 0, "#AC", 0, "#MC", 0, "#XM", 0, "#VE", 0, "#CP", 0, "---", 0, "---", 0
    db "---", 0, "---", 0, "---", 0, "---", 0, "#HV", 0, "#VC", 0, "#SX", 0, "---", 0
s_interrupt:   db "interrupt", 0

s_cli:  db "cli", 0
s_hlt:  db "hlt", 0
s_cr3:  db "mov cr3, rax", 0
s_in:   db "in al, dx", 0
s_out:  db "out dx, al", 0
s_read: db "mov rax, [rbx] with rbx=0x400000", 0
s_ud2:  db "ud2", 0

s_wrong_stack: db "rings: FAILED: the handler is not on the TSS.RSP0 stack", 10, 0
s_kernel_trap: db "rings: FAILED: trap from CPL 0 (a kernel bug)", 10, 0
s_unexpected:  db "rings: FAILED: not the trap the user program was expected to cause", 10, 0
s_wrong_count: db "rings: FAILED: wrong number of traps", 10, 0

; ================================================================================ user code
; Its own page, the only code page with U/S=1: CPL 3 cannot even read the kernel above.
; Nothing may follow it in the image. Before each instruction that traps, r15 = where to resume.
align 4096
user_page:
user_entry:
    lea r15, [rel u_cli_done]
u_cli:
    cli                             ; #GP(0): CPL 3 > IOPL 0
u_cli_done:
    lea r15, [rel u_hlt_done]
u_hlt:
    hlt                             ; #GP(0): privileged (CPL 0 only)
u_hlt_done:
    lea r15, [rel u_cr3_done]
u_cr3:
    mov cr3, rax                    ; #GP(0): privileged
u_cr3_done:
    mov dx, TS_DEBUG_PORT
    lea r15, [rel u_in_done]
u_in:
    in al, dx                       ; #GP(0): CPL 3 > IOPL 0 and the TSS has no I/O bitmap
u_in_done:
    lea r15, [rel u_out_done]
u_out:
    out dx, al                      ; #GP(0): same (had it worked, a stray byte would appear)
u_out_done:
    mov rbx, UNMAPPED
    lea r15, [rel u_read_done]
u_read:
    mov rax, [rbx]                  ; #PF: page not present; CR2 = 0x400000
u_read_done:
u_ud2:
    ud2                             ; #UD: the kernel's handler ends the run from here
