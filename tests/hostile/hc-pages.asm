; hc-pages — set_cr3 and set_shared_info outside memory, wrapping and unaligned; unknown call
; numbers; yield; then the halt hypercall ends the run.
%include "hostile.inc"

start:
    mov rsp, TS_LOAD_DEFAULT
    HC TS_HC_SET_CR3, RAM_END, 0
    CHECK32 EFAULT
    HC TS_HC_SET_CR3, 0xFFFFFFFFFFFFF000, 0
    CHECK32 EFAULT
    HC TS_HC_SET_CR3, 0x100000000, 0
    CHECK32 EFAULT
    HC TS_HC_SET_CR3, RAM_END - 0x1000 + 8, 0
    CHECK32 EINVAL
    HC TS_HC_SET_CR3, TS_PML4, 0            ; the VMM's own tables: valid
    CHECK32 0
    HC TS_HC_SET_SHARED_INFO, RAM_END, 0
    CHECK32 EFAULT
    HC TS_HC_SET_SHARED_INFO, 0xFFFFFFFFFFFFF000, 0
    CHECK32 EFAULT
    HC TS_HC_SET_SHARED_INFO, RAM_END + 0x1000, 0
    CHECK32 EFAULT
    HC TS_HC_SET_SHARED_INFO, RAM_END - 0x800, 0
    CHECK32 EINVAL
    HC TS_HC_SET_SHARED_INFO, RAM_END - 0x1000, 0  ; the last page of RAM: valid
    CHECK32 0
    mov rdi, RAM_END - 0x1000
    mov byte [rdi], 1                        ; events masked
    HC 0, 0, 0
    CHECK32 ENOSYS
    HC 7, 0, 0
    CHECK32 ENOSYS
    HC 0xFFFFFFFF, 0, 0
    CHECK32 ENOSYS
    HC TS_HC_YIELD, 0, 0
    CHECK32 0
    lea rsi, [rel done]
    TS_PRINT_SI
    HC TS_HC_HALT, 0, 0
    mov eax, 100                             ; halt returned: a failure
    jmp fail

    FAIL_EXIT

done: db "hc-pages: ok", 10, 0
