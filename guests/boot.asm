; boot — what a bootloader does between power-on and a 64-bit kernel, in one page of code.
; The VMM starts it in 16-bit real mode (CS=DS=ES=SS=0, IP=0x8000, no GDT, no page tables)
; and it climbs the three modes of x86 itself:
;   1. real mode:            lgdt (a GDT of our own), set CR0.PE, far jump into a 32-bit segment;
;   2. 32-bit protected mode: load the data segments, build identity-mapping page tables,
;                             set CR4.PAE, CR3, EFER.LME (wrmsr), then CR0.PG — the CPU is now in
;                             long mode's 32-bit "compatibility" sub-mode — and far jump into a
;                             64-bit code segment (L=1);
;   3. 64-bit long mode:      say so, and halt.
; Each stage writes one line to the debug console (port 0xE9); each byte is an `out`, i.e. a VM
; exit, so the exits show the guest's progress. On this project's kvm_pvm host all of this
; (CPL 0 and real-mode code) runs in KVM's instruction emulator; on VT-x/AMD-V it runs natively.
%include "trapscope.inc"
org TS_LOAD_DEFAULT

; Selectors into the GDT below (index * 8; table indicator 0, RPL 0).
%define CODE32_SEL  0x08
%define DATA_SEL    0x10
%define CODE64_SEL  0x18

; Page tables, built at run time in free low memory (the VMM sets up none in real mode).
%define PML4        0x20000         ; level 4: one entry used, -> PDPT
%define PDPT        0x21000         ; level 3: one entry used (0..1 GiB), -> PD
%define PD          0x22000         ; level 2: 512 entries, each a 2 MiB page: identity map 0..1 GiB
%define PTE_P       0x01            ; present
%define PTE_RW      0x02            ; writable
%define PTE_PS      0x80            ; in a PD entry: this is a 2 MiB page, not a pointer to a PT

%define CR0_PE      0x00000001      ; protection enable
%define CR0_PG      0x80000000      ; paging
%define CR4_PAE     0x00000020      ; physical address extension (64-bit page table entries)
%define MSR_EFER    0xC0000080
%define EFER_LME    0x00000100      ; long mode enable (LMA is set by the CPU when PG turns on)

; ---------------------------------------------------------------------------- 16-bit real mode
bits 16
start:
    cli                             ; interrupts are already off; a bootloader says so anyway
    mov si, msg_real
    call print16

    lgdt [gdt_desc]                 ; GDTR = our table (no exit: the CPU reads guest memory)
    mov eax, cr0
    or eax, CR0_PE
    mov cr0, eax                    ; protected mode is on, but CS still holds a real-mode segment
    jmp dword CODE32_SEL:pm32       ; far jump: load CS from GDT entry 0x08 (32-bit code)

print16:                            ; si = NUL-terminated string
    mov dx, TS_DEBUG_PORT
.next:
    mov al, [si]
    test al, al
    jz .done
    out dx, al                      ; VM exit: IO, port 0xE9, out, 1 byte
    inc si
    jmp .next
.done:
    ret

; ------------------------------------------------------------------- 32-bit protected mode
bits 32
pm32:
    mov ax, DATA_SEL                ; flat 4 GiB data segment for DS, ES, SS, FS, GS
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, TS_LOAD_DEFAULT        ; same stack as before, now through the flat segment
    mov esi, msg_prot
    call print32

    ; Clear the three page-table pages (3 * 4096 bytes = 3072 dwords).
    mov edi, PML4
    mov ecx, 3 * 4096 / 4
    xor eax, eax
.clear:
    mov [edi], eax
    add edi, 4
    dec ecx
    jnz .clear

    mov dword [PML4], PDPT | PTE_P | PTE_RW     ; PML4[0] -> PDPT  (covers 0..512 GiB)
    mov dword [PDPT], PD | PTE_P | PTE_RW       ; PDPT[0] -> PD    (covers 0..1 GiB)
    ; PD[i] = i * 2 MiB | P | RW | PS: virtual address == physical address for the first GiB.
    mov edi, PD
    mov eax, PTE_P | PTE_RW | PTE_PS
    mov ecx, 512
.map:
    mov [edi], eax                  ; low half of the entry (physical address bits 31..21 + flags)
    mov dword [edi + 4], 0          ; high half: physical address bits 63..32 = 0
    add eax, 0x200000
    add edi, 8
    dec ecx
    jnz .map

    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax                    ; long mode requires PAE-format page tables
    mov eax, PML4
    mov cr3, eax                    ; where the MMU will start its walk
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_LME
    wrmsr                           ; ask for long mode; it activates with paging
    mov eax, cr0
    or eax, CR0_PG
    mov cr0, eax                    ; paging on => EFER.LMA=1: long mode, 32-bit compatibility sub-mode
    jmp CODE64_SEL:lm64             ; far jump: load CS from GDT entry 0x18 (L=1: 64-bit code)

print32:                            ; esi = NUL-terminated string
    mov dx, TS_DEBUG_PORT
.next:
    mov al, [esi]
    test al, al
    jz .done
    out dx, al                      ; VM exit: IO, port 0xE9, out, 1 byte
    inc esi
    jmp .next
.done:
    ret

; ------------------------------------------------------------------------ 64-bit long mode
bits 64
lm64:
    mov ax, DATA_SEL                ; in 64-bit mode DS/ES/SS bases and limits are ignored,
    mov ds, ax                      ; but they must hold valid selectors (or null)
    mov es, ax
    mov ss, ax
    mov rsp, TS_LOAD_DEFAULT
    lea rsi, [rel msg_long]
    call print64
    hlt                             ; VM exit: HLT — the run ends

print64:                            ; rsi = NUL-terminated string
    mov dx, TS_DEBUG_PORT
.next:
    mov al, [rsi]
    test al, al
    jz .done
    out dx, al                      ; VM exit: IO, port 0xE9, out, 1 byte
    inc rsi
    jmp .next
.done:
    ret

; ------------------------------------------------------------------------------------ data
align 8
gdt:
    dq 0                            ; 0x00: the null descriptor (required, never used)
    dq 0x00CF9A000000FFFF           ; 0x08: code, base 0, limit 4 GiB (G=1), D=1 (32-bit), DPL 0, exec/read
    dq 0x00CF92000000FFFF           ; 0x10: data, base 0, limit 4 GiB (G=1), DPL 0, read/write
    dq 0x00AF9A000000FFFF           ; 0x18: code, L=1 (64-bit), D=0, DPL 0, exec/read
gdt_end:

gdt_desc:
    dw gdt_end - gdt - 1            ; limit = size - 1
    dd gdt                          ; linear base address (segment 0, so it is the offset)

msg_real: db "boot: real mode", 10, 0
msg_prot: db "boot: 32-bit protected mode", 10, 0
msg_long: db "boot: 64-bit long mode", 10, 0
