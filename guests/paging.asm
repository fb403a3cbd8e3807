; paging — a kernel managing its own virtual memory: it builds two address spaces, maps and
; unmaps pages, changes page-table entries, switches CR3 between the address spaces, and takes
; page faults (#PF, vector 14) that its handler resolves (demand paging, a write to a read-only
; page). It reports pass/fail through the control port (0 = every check passed).
;
; The VMM enters us in 64-bit long mode at CPL 0 (its GDT at 0x500, 2 MiB identity pages at
; 0x1000). Everything runs at CPL 0: the faults are the kernel's own.
;
; Address space A (CR3 = PML4_A) and B (CR3 = PML4_B), 4-level paging, 4 KiB pages:
;   0x000000..0x1FFFFF  identity map in both (PT_LOW, shared): code, stack, tables, IDT
;   0x200000..          the "heap" (PD[1]): in A demand-paged by the #PF handler,
;                       heap page i -> physical 0x100000 + i * 4 KiB;
;                       in B one page: 0x200000 -> physical 0x1C0000
; Every entry we write has its accessed bit (and the leaves their dirty bit) already set, so
; that no walk needs to write them: the SDM (Vol. 3A 4.8) leaves A-bit updates on walks that
; fault implementation-specific, and this project's kvm_pvm hosts do differ there from the
; simulator, which would make guest memory differ in co-simulation.
;
; Steps (each prints a line; `check` compares and fails with the step's number):
;   1 write to an unmapped heap page: #PF (error 0x2: write, not present); the handler maps it
;   2 read three more heap pages: three #PF (error 0x0), each mapped by the handler
;   3 change a PTE to point to another frame (then invlpg): the same GVA reads other data
;   4 make a page read-only (CR0.WP = 1): a write faults (error 0x3: write, present); the
;     handler makes it writable again and the write completes
;   5 unmap a page (PTE = 0, invlpg): the next read faults again and is re-mapped
;   6 switch CR3 to B: the same GVA shows B's frame; switch back to A: A's frame again
;   7 the number of page faults is 7
%include "trapscope.inc"
bits 64
org TS_LOAD_DEFAULT

%define PML4_A      0x20000
%define PDPT_A      0x21000
%define PD_A        0x22000
%define PT_LOW      0x23000     ; 0..2 MiB identity, shared by A and B
%define PT_HEAP_A   0x24000     ; A's heap (0x200000..), filled by the #PF handler
%define PML4_B      0x25000
%define PDPT_B      0x26000
%define PD_B        0x27000
%define PT_HEAP_B   0x28000
%define IDT         0x29000     ; 256 gates * 16 bytes

%define HEAP        0x200000    ; GVA of heap page 0
%define HEAP_FRAMES 0x100000    ; GPA of heap page 0's frame in A
%define OTHER_FRAME 0x180000    ; step 3 re-points heap page 0 here
%define B_FRAME     0x1C0000    ; B's heap page 0

%define TABLE       0x23        ; P | RW | A           (upper levels)
%define LEAF        0x63        ; P | RW | A | D       (4 KiB pages)
%define LEAF_RO     0x61        ; P | A | D            (read-only)
%define GATE_INTR   0x8E        ; present, DPL 0, 64-bit interrupt gate
%define KERNEL_CS   0x08        ; the VMM's GDT: 64-bit code

%define EXIT_UNEXPECTED 100     ; an exception other than #PF, or a #PF outside the heap

; CHECK step, actual (register), expected (immediate/register): fail with exit code `step`.
%macro CHECK 3
    cmp %2, %3
    je %%ok
    mov al, %1
    out TS_CONTROL_PORT, al
    hlt
%%ok:
%endmacro

start:
    PUTS {"paging: building two address spaces", 10}
    ; --- IDT: every vector -> unexpected, vector 14 -> page_fault.
    mov edi, IDT
    mov ecx, 256
    lea rax, [rel unexpected]
.gate:
    call set_gate
    add edi, 16
    dec ecx
    jnz .gate
    mov edi, IDT + 14 * 16
    lea rax, [rel page_fault]
    call set_gate
    lidt [rel idt_desc]

    ; --- Clear every table page (0x20000..0x28FFF), then fill.
    mov edi, PML4_A
    mov ecx, 9 * 4096 / 8
    xor eax, eax
    rep stosq
    mov qword [PML4_A], PDPT_A | TABLE
    mov qword [PDPT_A], PD_A | TABLE
    mov qword [PD_A], PT_LOW | TABLE
    mov qword [PD_A + 8], PT_HEAP_A | TABLE
    mov qword [PML4_B], PDPT_B | TABLE
    mov qword [PDPT_B], PD_B | TABLE
    mov qword [PD_B], PT_LOW | TABLE
    mov qword [PD_B + 8], PT_HEAP_B | TABLE
    mov qword [PT_HEAP_B], B_FRAME | LEAF
    mov edi, PT_LOW                 ; identity map 0..2 MiB
    mov eax, LEAF
    mov ecx, 512
.ident:
    mov [rdi], rax
    add rax, 0x1000
    add edi, 8
    dec ecx
    jnz .ident

    ; Markers in frames the heap will map (written through the identity map).
    mov dword [HEAP_FRAMES + 0x1000], 0xF1F1F1F1
    mov dword [OTHER_FRAME], 0x22222222
    mov dword [B_FRAME], 0x33333333

    mov rax, cr0
    or rax, 1 << 16                 ; CR0.WP: read-only pages are read-only at CPL 0 too
    mov cr0, rax
    mov eax, PML4_A
    mov cr3, rax
    PUTS {"paging: CR3 = address space A", 10}

    ; 1: demand paging on a write.
    mov dword [HEAP], 0x11111111    ; #PF, mapped, retried
    mov eax, [HEAP_FRAMES]          ; the frame behind it, through the identity map
    CHECK 1, eax, 0x11111111
    mov eax, [last_error]
    CHECK 1, eax, 2
    PUTS {"1 write to an unmapped page: #PF handled, page mapped", 10}

    ; 2: three reads of unmapped pages.
    mov eax, [HEAP + 0x1000]
    CHECK 2, eax, 0xF1F1F1F1
    mov eax, [HEAP + 0x2000]
    mov eax, [HEAP + 0x3000]
    mov eax, [last_error]
    CHECK 2, eax, 0
    mov eax, [faults]
    CHECK 2, eax, 4
    PUTS {"2 three reads: three #PF, three pages mapped", 10}

    ; 3: re-point heap page 0 to another frame.
    mov qword [PT_HEAP_A], OTHER_FRAME | LEAF
    invlpg [HEAP]
    mov eax, [HEAP]
    CHECK 3, eax, 0x22222222
    PUTS {"3 PTE changed: the same address reads another frame", 10}

    ; 4: read-only page, then a write.
    mov qword [PT_HEAP_A], OTHER_FRAME | LEAF_RO
    invlpg [HEAP]
    mov eax, [HEAP]                 ; reading is fine
    mov dword [HEAP], 0x44444444    ; #PF (protection), made writable, retried
    mov eax, [OTHER_FRAME]
    CHECK 4, eax, 0x44444444
    mov eax, [last_error]
    CHECK 4, eax, 3
    PUTS {"4 write to a read-only page: #PF handled, page made writable", 10}

    ; 5: unmap heap page 1, touch it again.
    mov qword [PT_HEAP_A + 8], 0
    invlpg [HEAP + 0x1000]
    mov eax, [HEAP + 0x1000]        ; #PF, re-mapped
    CHECK 5, eax, 0xF1F1F1F1
    mov eax, [faults]
    CHECK 5, eax, 6
    PUTS {"5 page unmapped: the next read faults and re-maps it", 10}

    ; 6: the other address space.
    mov eax, PML4_B
    mov cr3, rax
    mov eax, [HEAP]
    CHECK 6, eax, 0x33333333
    mov eax, PML4_A
    mov cr3, rax
    mov eax, [HEAP]
    CHECK 6, eax, 0x44444444
    PUTS {"6 CR3 switched to B and back: each space sees its own frame", 10}

    ; 7: one more demand fault at the top of the heap's first 2 MiB, then the count.
    mov byte [HEAP + 0x1FF000], 7
    mov eax, [faults]
    CHECK 7, eax, 7
    PUTS {"7 seven page faults, all handled: passed", 10}
    mov al, TS_EXIT_PASS
    out TS_CONTROL_PORT, al
    hlt

; #PF handler (the CPU pushed the error code). Not present in the heap: map heap page i to
; frame HEAP_FRAMES + i * 4 KiB. Present (a write to a read-only page): make it writable.
page_fault:
    push rax
    push rbx
    mov rax, cr2
    mov rbx, rax
    sub rbx, HEAP
    cmp rbx, 0x200000
    jae .bad
    shr rbx, 12                     ; heap page index
    inc dword [faults]
    mov eax, [rsp + 16]             ; error code
    mov [last_error], eax
    test eax, 1
    jnz .protection
    mov rax, rbx
    shl rax, 12
    add rax, HEAP_FRAMES | LEAF
    mov [PT_HEAP_A + rbx * 8], rax  ; not-present entries are never cached: no invlpg needed
    jmp .done
.protection:
    or qword [PT_HEAP_A + rbx * 8], 2
    mov rax, cr2
    invlpg [rax]
.done:
    pop rbx
    pop rax
    add rsp, 8                      ; the error code
    iretq
.bad:
    mov al, EXIT_UNEXPECTED + 14
    out TS_CONTROL_PORT, al
    hlt

unexpected:
    mov al, EXIT_UNEXPECTED
    out TS_CONTROL_PORT, al
    hlt

set_gate:                           ; rdi = gate, rax = handler; clobbers rdx
    mov rdx, rax
    mov [rdi], dx
    mov word [rdi + 2], KERNEL_CS
    mov byte [rdi + 4], 0
    mov byte [rdi + 5], GATE_INTR
    shr rdx, 16
    mov [rdi + 6], dx
    shr rdx, 16
    mov [rdi + 8], edx
    mov dword [rdi + 12], 0
    ret

print_str:                          ; rsi = NUL-terminated string; clobbers rax, rsi
    mov al, [rsi]
    test al, al
    jz .done
    out TS_DEBUG_PORT, al
    inc rsi
    jmp print_str
.done:
    ret

align 8
faults:     dd 0
last_error: dd 0xFFFFFFFF
idt_desc:   dw 256 * 16 - 1
            dq IDT
