; smc — self-modifying code in real mode: a loop patches the immediate of an instruction it is
; about to execute (`add bx, imm16`), so every pass runs a different instruction at the same
; address. On a machine with a decode cache or a binary translator the cached form of that code
; must be dropped at each write (sim/bt/translator.hpp [SECTION] Chaining, coherence,
; adaptation); stale code would add the same immediate every pass. BX = 1 + 2 + … + 100 = 5050
; if every patch took effect: prints "smc: ok" and exits 0, else prints "smc: STALE" and exits 1.
%include "trapscope.inc"
bits 16
org TS_LOAD_DEFAULT

start:
    xor bx, bx
    mov cx, 100
again:
    mov [patch + 2], cx          ; the imm16 of the next instruction (81 C3 iw)
patch:
    add bx, strict word 0
    loop again
    mov si, msg_ok
    xor al, al
    cmp bx, 5050
    je .print
    mov si, msg_stale
    mov al, 1
.print:
    mov ah, al                   ; exit code
    TS_PRINT_SI
    mov al, ah
    out TS_CONTROL_PORT, al      ; ends the run with exit code AL
    hlt

msg_ok:    db "smc: ok", 10, 0
msg_stale: db "smc: STALE", 10, 0
