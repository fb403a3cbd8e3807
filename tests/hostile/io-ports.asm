; io-ports — reads and writes of unclaimed ports (all ones, writes ignored), 4-byte accesses at
; port 0xFFFF (the range wraps 2^16), string I/O from unclaimed ports, the doorbell read with
; 1 byte and written, then the exit code written with 2 bytes.
%include "hostile.inc"

start:
    mov rsp, TS_LOAD_DEFAULT
    in al, 0x80
    CHECK32 0xFF
    mov dx, 0xFFFF
    in ax, dx
    CHECK32 0xFFFF
    xor eax, eax
    in eax, dx                  ; ports 0xFFFF, 0x0000, 0x0001, 0x0002
    CHECK32 0xFFFFFFFF
    mov dx, 0x1234
    in eax, dx
    CHECK32 0xFFFFFFFF
    xor eax, eax
    in al, TS_DEBUG_PORT
    CHECK32 0xE9
    mov eax, 0x12345678
    in eax, TS_CONTROL_PORT
    CHECK32 0
    mov dx, TS_COM1_LSR
    xor eax, eax
    in al, dx
    CHECK32 0x60
    ; writes to unclaimed ports and to the doorbell are ignored
    mov eax, 0xDEADBEEF
    out 0x80, al
    mov dx, 0xFFFF
    out dx, eax
    mov dx, TS_HYPERCALL_PORT
    out dx, eax
    ; string input from an unclaimed port: all ones, and not one element more
    mov qword [SCRATCH + 64], 0
    mov rdi, SCRATCH
    mov ecx, 16
    mov dx, 0x1234
    cld
    rep insd
    CHECK64 SCRATCH, -1
    CHECK64 SCRATCH + 56, -1
    CHECK64 SCRATCH + 64, 0
    ; string output to an unclaimed port
    mov rsi, SCRATCH
    mov ecx, 64
    mov dx, 0x80
    rep outsb
    ; the doorbell read with 1 byte: yield, al = 0
    mov eax, TS_HC_YIELD
    mov dx, TS_HYPERCALL_PORT
    in al, dx
    and eax, 0xFF
    CHECK32 0
    lea rsi, [rel done]
    TS_PRINT_SI
    xor eax, eax
    out TS_CONTROL_PORT, ax     ; exit code 0, written with 2 bytes
    hlt

    FAIL_EXIT

done: db "io-ports: ok", 10, 0
