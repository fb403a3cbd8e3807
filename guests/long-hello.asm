; long-hello — a guest that starts in 64-bit long mode. The VMM did the bootloader's work
; before the first instruction (GDT at 0x500, identity-mapped page tables at 0x1000, CR0.PG,
; CR4.PAE, EFER.LME|LMA, a 64-bit code segment), so this code is plain 64-bit from line one.
; It writes its message to the COM1 16550 UART the way a real driver does: before each byte
; it reads the Line Status Register and waits until bit 5 (transmit holding register empty)
; is set, then writes the byte to the transmit holding register. On KVM every `in` and every
; `out` is a VM exit to the VMM, which emulates the UART: two exits per character here.
%include "trapscope.inc"
bits 64
org TS_LOAD_DEFAULT

%define LSR_THR_EMPTY 0x20          ; LSR bit 5: the UART can take another byte

start:
    lea rsi, [rel message]
.next:
    mov bl, [rsi]                   ; bl = next byte of the message
    test bl, bl
    jz .done
    mov dx, TS_COM1_LSR
.wait:
    in al, dx                       ; VM exit: IO, port 0x3FD, in, 1 byte (the VMM answers 0x60)
    test al, LSR_THR_EMPTY
    jz .wait                        ; transmitter busy: poll again
    mov al, bl
    mov dx, TS_COM1_THR
    out dx, al                      ; VM exit: IO, port 0x3F8, out, 1 byte — the UART "sends" it
    inc rsi
    jmp .next
.done:
    hlt                             ; VM exit: HLT — the run ends

message: db "Hello from 64-bit long mode via the COM1 UART!", 10, 0
