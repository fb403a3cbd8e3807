; hc-console — console_write with huge lengths, buffers that wrap 2^64 and 2^32 or end past RAM,
; an unaligned buffer and the last bytes of RAM.
%include "hostile.inc"

start:
    mov rsp, TS_LOAD_DEFAULT
    lea rbx, [rel hello]
    HC TS_HC_CONSOLE_WRITE, rbx, hello_end - hello
    CHECK32 0
    ; lengths over the bound (4096), also 64-bit ones the 32-bit guests cannot pass
    HC TS_HC_CONSOLE_WRITE, SCRATCH, 4097
    CHECK32 E2BIG
    HC TS_HC_CONSOLE_WRITE, SCRATCH, 0x100000004
    CHECK32 E2BIG
    HC TS_HC_CONSOLE_WRITE, SCRATCH, -1
    CHECK32 E2BIG
    HC TS_HC_CONSOLE_WRITE, 0, -1
    CHECK32 E2BIG
    ; buffers that wrap or leave RAM
    HC TS_HC_CONSOLE_WRITE, 0xFFFFFFFFFFFFFFFE, 4
    CHECK32 EFAULT
    HC TS_HC_CONSOLE_WRITE, 0xFFFFFFFFFFFFF000, 4096
    CHECK32 EFAULT
    HC TS_HC_CONSOLE_WRITE, 0xFFFFFFFF, 2
    CHECK32 EFAULT
    HC TS_HC_CONSOLE_WRITE, RAM_END - 2, 4
    CHECK32 EFAULT
    HC TS_HC_CONSOLE_WRITE, RAM_END, 1
    CHECK32 EFAULT
    HC TS_HC_CONSOLE_WRITE, RAM_END - 4095, 4096
    CHECK32 EFAULT
    ; the last 4 bytes of RAM, and an unaligned buffer
    mov rdi, RAM_END - 4
    mov dword [rdi], `end\n`
    HC TS_HC_CONSOLE_WRITE, RAM_END - 4, 4
    CHECK32 0
    lea rbx, [rel hello + 1]
    HC TS_HC_CONSOLE_WRITE, rbx, hello_end - hello - 1
    CHECK32 0
    PASS "hc-console"

    FAIL_EXIT

hello: db "console_write", 10
hello_end:
