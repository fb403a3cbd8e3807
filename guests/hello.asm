; hello — the first guest: a real-mode program that writes a message to the debug console and
; halts. Every `out` is a VM exit (KVM_EXIT_IO); the final `hlt` is another (KVM_EXIT_HLT).
; A seeded lesson may ask for the message more than once (TS_PARAM(0), below).
%include "trapscope.inc"
bits 16
org TS_LOAD_DEFAULT

start:
    mov si, message
    mov dx, TS_DEBUG_PORT
.next:
    lodsb                   ; al = next byte of the message
    test al, al
    jz again
    out dx, al              ; VM exit: IO, port 0xE9, out, 1 byte
    jmp .next
.done:
    hlt                     ; VM exit: HLT — the run ends

message: db "Hello from a real-mode guest!", 10, 0

; Lesson 1's seeded variants (lessons/01-vm-exit.yaml): parameter 0, when a lesson wrote the
; block, is how many times to write the message (default 1). Placed after the message so that
; every address above, the final registers and flags are those of the plain program.
again:
    cmp dword [TS_PARAMS], TS_PARAMS_MAGIC
    jne .last
    inc word [rounds]
    push ax
    mov ax, [rounds]
    cmp ax, [TS_PARAM(0)]
    pop ax
    jb start
.last:
    test al, al                     ; al = 0: the flags the `jz` saw
    jmp start.done
rounds: dw 0
