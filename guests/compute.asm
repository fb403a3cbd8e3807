; compute — the interpreter speed benchmark's guest (bench/interp_mips.cpp): a compute-heavy loop
; of ordinary integer instructions, then a checksum on the debug console and an exit code on the
; control port.
;
; One flat image for three machines: it is a boot sector (512 bytes, signature 0x55AA at 510) that
; Bochs and QEMU boot from a floppy image, and trapscope runs it in real mode without a BIOS
; (`trapscope run compute --mode real`, at the default load address or at `--load 0x7c00`). It
; depends on no BIOS state: it finds out where it was loaded, sets CS = DS = ES = SS so that
; offsets match `org 0x7C00` (so it works at any 16-byte aligned load address, and whether a BIOS
; jumps to 0000:7C00 or 07C0:0000), puts the stack just below itself and keeps interrupts off.
;
; The work: 16-bit real-mode code with 32-bit operands (operand-size prefixes). A table of 256
; dwords (at offset 0x9000, a page away from the code) is filled from a linear congruential
; generator, then ITERATIONS passes go over it, each step a load, add, rol, xor, three-operand
; imul, store, shr, add, sub, cmp, a data-dependent jcc (both paths execute the same number of
; instructions, so the instruction count is a + b*ITERATIONS whatever the data), add and loop.
; The bench patches ITERATIONS (dword at offset 504, after the magic "ITER" at 500) and keeps a
; C++ model of this computation to check the checksum every machine prints:
;     compute: n=XXXXXXXX checksum=XXXXXXXX\n        (to port 0xE9)
; Then exit code 0 to port 0xF4: trapscope's control port ends the run; QEMU's isa-debug-exit
; device (iobase 0xf4) exits with status (0 << 1) | 1 = 1. Bochs has neither, so the guest goes
; on to write "Shutdown" to Bochs's shutdown port 0x8900 (iodev/unmapped.cc), which ends Bochs;
; then `cli; hlt`.
%include "trapscope.inc"
bits 16
org 0x7C00

TABLE        equ 0x9000          ; 256 dwords (DS-relative), on another page than the code: a
                                 ; store to a code page would make QEMU and Bochs drop translations
STEPS        equ 256             ; inner loop: one pass over the table
SHUTDOWN_PORT equ 0x8900         ; Bochs: writing "Shutdown" here ends the simulation

start:
    cli
    ; Where are we? linear(.here) = CS*16 + IP. Choose CS' with CS'*16 + .here = that.
    call .here
.here:
    pop bx                       ; bx = runtime IP of .here
    sub bx, .here                ; (runtime IP − assembled offset), a multiple of 16
    sar bx, 4
    mov ax, cs
    add ax, bx                   ; CS'
    push ax
    push word .flush
    retf                         ; CS:IP = CS':.flush
.flush:
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, start                ; the stack grows down below the image

    ; Fill the table: x = x * 1103515245 + 12345 (mod 2^32).
    mov edx, 0x12345678
    xor di, di
    mov cx, STEPS
.fill:
    imul edx, edx, 1103515245
    add edx, 12345
    mov [di + TABLE], edx
    add di, 4
    loop .fill

    ; The benchmark loop: 15 instructions per step, STEPS steps per iteration.
    mov ebp, [iterations]
    mov ebx, 0x9E3779B9
    mov esi, 0x7F4A7C15
.outer:
    xor di, di
    mov cx, STEPS
.step:
    mov eax, [di + TABLE]
    add eax, ebx
    rol eax, 5
    xor eax, esi
    imul edx, eax, 0x2C1B3C6D
    mov [di + TABLE], edx
    shr edx, 11
    add ebx, edx
    sub esi, eax
    cmp eax, ebx
    jb .below
    xor ebx, 0x5BD1E995
    jmp .next
.below:
    ror esi, 3
    inc ebx
.next:
    add di, 4
    loop .step
    dec ebp
    jnz .outer

    ; checksum = fold of the table (rol 1, add) starting from ebx ^ esi.
    mov eax, ebx
    xor eax, esi
    xor di, di
    mov cx, STEPS
.fold:
    rol eax, 1
    add eax, [di + TABLE]
    add di, 4
    loop .fold
    mov [checksum], eax

    mov si, msg_n
    call puts
    mov eax, [iterations]
    call put_hex32
    mov si, msg_sum
    call puts
    mov eax, [checksum]
    call put_hex32
    mov al, 10
    out TS_DEBUG_PORT, al

    mov al, TS_EXIT_PASS
    out TS_CONTROL_PORT, al      ; trapscope and QEMU (isa-debug-exit) stop here

    mov dx, SHUTDOWN_PORT        ; Bochs stops here
    mov si, msg_shutdown
.shutdown:
    lodsb
    test al, al
    jz .halt
    out dx, al
    jmp .shutdown
.halt:
    cli
    hlt
    jmp .halt

; puts: writes the NUL-terminated string at ds:si to the debug console.
puts:
    lodsb
    test al, al
    jz .done
    out TS_DEBUG_PORT, al
    jmp puts
.done:
    ret

; put_hex32: writes eax as 8 lower-case hex digits to the debug console. Branch-free (a table
; look-up), so that the guest's instruction count does not depend on the digits.
put_hex32:
    mov edx, eax
    mov cx, 8
.digit:
    rol edx, 4
    mov bx, dx
    and bx, 0x0F
    mov al, [bx + hex_digits]
    out TS_DEBUG_PORT, al
    loop .digit
    ret

hex_digits:   db "0123456789abcdef"
msg_n:        db "compute: n=", 0
msg_sum:      db " checksum=", 0
msg_shutdown: db "Shutdown", 0
checksum:     dd 0

    times 500 - ($ - $$) db 0
    db "ITER"                    ; offset 500: magic, so the bench can find the count
iterations:
    dd 1000                      ; offset 504: ITERATIONS (patched by the bench)
    dw 0
    dw 0xAA55                    ; offset 510: boot signature
