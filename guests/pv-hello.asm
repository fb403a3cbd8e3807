; pv-hello — the paravirtualized twin of `hello`: the same message, written with ONE hypercall
; (console_write of the whole buffer) instead of one `out` (one VM exit) per byte, then the
; halt hypercall in place of `hlt`. Two VM exits in all, against 31 for `hello`.
%include "trapscope.inc"
bits 16
org TS_LOAD_DEFAULT

start:
    mov dx, TS_HYPERCALL_PORT
    mov eax, TS_HC_CONSOLE_WRITE
    mov ebx, message                ; real mode, DS = 0: the offset is the guest-physical address
    mov ecx, message_end - message
    in eax, dx                      ; VM exit: IO in, port 0x510 = the hypercall
    test eax, eax
    jnz .failed
    mov eax, TS_HC_HALT
    in eax, dx                      ; the run ends here, as at `hlt`
.failed:
    mov al, 1
    out TS_CONTROL_PORT, al
    hlt

message: db "Hello from a real-mode guest!", 10
message_end:
