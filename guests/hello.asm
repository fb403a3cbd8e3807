; hello — the first guest: a real-mode program that writes a message to the debug console and
; halts. Every `out` is a VM exit (KVM_EXIT_IO); the final `hlt` is another (KVM_EXIT_HLT).
%include "trapscope.inc"
bits 16
org TS_LOAD_DEFAULT

start:
    mov si, message
    mov dx, TS_DEBUG_PORT
.next:
    lodsb                   ; al = next byte of the message
    test al, al
    jz .done
    out dx, al              ; VM exit: IO, port 0xE9, out, 1 byte
    jmp .next
.done:
    hlt                     ; VM exit: HLT — the run ends

message: db "Hello from a real-mode guest!", 10, 0
