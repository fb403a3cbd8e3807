; mem-past-ram — loads and stores just past the end of RAM (MMIO: reads all ones, writes
; recorded and dropped), string stores across the end of RAM, then a load whose 8 bytes wrap
; 2^64, which is not mapped: #PF with no IDT, so the run ends in a triple fault.
%include "hostile.inc"

start:
    mov rsp, TS_LOAD_DEFAULT
    mov rdi, RAM_END
    mov rax, [rdi]
    CHECK32 0xFFFFFFFF
    mov rbx, 0x1122334455667788
    mov rdi, RAM_END
    mov [rdi], rbx              ; dropped
    mov rax, [rdi]
    CHECK32 0xFFFFFFFF
    mov rdi, 0xFFFFF000         ; just below 4 GiB
    mov eax, [rdi]
    CHECK32 0xFFFFFFFF
    mov dword [rdi], 0
    ; a string store of 4 qwords from 2 qwords below the end of RAM
    mov rdi, RAM_END - 16
    mov rax, 0x5A5A5A5A5A5A5A5A
    mov ecx, 4
    cld
    rep stosq
    CHECK64 RAM_END - 16, 0x5A5A5A5A5A5A5A5A
    CHECK64 RAM_END - 8, 0x5A5A5A5A5A5A5A5A
    mov rdi, RAM_END + 8
    mov rax, [rdi]
    CHECK32 0xFFFFFFFF
    lea rsi, [rel done]
    TS_PRINT_SI
    mov rdi, 0xFFFFFFFFFFFFFFFC
    mov rax, [rdi]              ; wraps 2^64; not mapped: #PF → #DF → triple fault
    mov eax, 100
    jmp fail

    FAIL_EXIT

done: db "mem-past-ram: ok", 10, 0
