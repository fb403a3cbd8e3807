; passthrough — drives the passthrough device (docs/passthrough.md, TS_PT_* in trapscope.inc) the
; same way whether the VMM maps it (`--passthrough mapped`: no VM exits) or emulates it
; (`--passthrough emulated`: an MMIO exit per register access). The guest cannot tell which.
;
; The work, each step checked (on failure: exit code = the step number):
;   1  ID and CAPACITY registers (no device: a message saying how to attach it, exit code 1)
;   2  READ 64 sectors by DMA into RAM at 1 MiB; every byte checked against the built-in disk's
;      pattern (byte i of sector s = (s * 31 + i) & 0xFF) and summed (the checksum printed)
;   3  WRITE 16 sectors (8 KiB, a pattern of its own) by DMA at sector 128, READ them back into
;      other RAM, compare
;   4  READ_BUF sector 5 into the device's buffer, copy it out with dword loads, check it
;   5  WRITE_BUF: fill the buffer, write it to sector 200, READ it back by DMA, compare
;   6  FLUSH
;   7  hostile requests are refused with the right ERROR and the device goes on: DMA outside the
;      VM's memory (TS_PT_ERR_DMA), a length that is not whole sectors (TS_PT_ERR_LENGTH), a
;      sector range past the disk (TS_PT_ERR_RANGE), an unknown command (TS_PT_ERR_COMMAND)
;   8  DONE counts every command (11)
; Then prints "passthrough: checksum=XXXXXXXX" to the debug console and exits with code 0.
%include "trapscope.inc"
bits 32
org TS_LOAD_DEFAULT

PT          equ TS_PT_BASE
READ_RAM    equ 0x100000          ; step 2: 64 sectors
WRITE_RAM   equ 0x110000          ; step 3: the data written
BACK_RAM    equ 0x120000          ; step 3/5: read back
BUF_RAM     equ 0x130000          ; step 4/5: buffer copies
N_READ      equ 64
N_WRITE     equ 16
WRITE_LBA   equ 128
BUF_LBA     equ 200

start:
    ; 1. identify
    cmp dword [PT + TS_PT_ID], TS_PT_MAGIC
    jne no_device
    mov al, 1
    cmp dword [PT + TS_PT_CAPACITY], BUF_LBA + 1
    jb fail

    ; 2. read and check 64 sectors
    mov eax, TS_PT_CMD_READ
    xor ebx, ebx
    mov ecx, N_READ * 512
    mov edx, READ_RAM
    call pt_command
    mov al, 2
    jne fail
    mov esi, READ_RAM
    xor ebx, ebx
    mov ecx, N_READ
    call check_pattern
    mov al, 2
    jne fail
    mov [checksum], ebp

    ; 3. write 16 sectors, read them back
    mov edi, WRITE_RAM
    xor ecx, ecx
.fill:
    lea eax, [ecx * 8 + ecx]      ; byte k = (9k + 0x5A) & 0xFF
    add eax, 0x5A
    mov [edi + ecx], al
    inc ecx
    cmp ecx, N_WRITE * 512
    jb .fill
    mov eax, TS_PT_CMD_WRITE
    mov ebx, WRITE_LBA
    mov ecx, N_WRITE * 512
    mov edx, WRITE_RAM
    call pt_command
    mov al, 3
    jne fail
    mov eax, TS_PT_CMD_READ
    mov ebx, WRITE_LBA
    mov ecx, N_WRITE * 512
    mov edx, BACK_RAM
    call pt_command
    mov al, 3
    jne fail
    mov esi, WRITE_RAM
    mov edi, BACK_RAM
    mov ecx, N_WRITE * 512
    cld
    repe cmpsb
    mov al, 3
    jne fail

    ; 4. sector 5 through the device's buffer
    mov eax, TS_PT_CMD_READ_BUF
    mov ebx, 5
    mov ecx, 512
    xor edx, edx
    call pt_command
    mov al, 4
    jne fail
    xor ecx, ecx
.copy_out:
    mov eax, [PT + TS_PT_BUFFER + ecx * 4]
    mov [BUF_RAM + ecx * 4], eax
    inc ecx
    cmp ecx, 128
    jb .copy_out
    mov esi, BUF_RAM
    mov ebx, 5
    mov ecx, 1
    call check_pattern
    mov al, 4
    jne fail

    ; 5. the buffer to sector 200: dword k = k * 0x01010101 ^ 0xC3C3C3C3
    xor ecx, ecx
.copy_in:
    imul eax, ecx, 0x01010101
    xor eax, 0xC3C3C3C3
    mov [PT + TS_PT_BUFFER + ecx * 4], eax
    mov [BUF_RAM + ecx * 4], eax
    inc ecx
    cmp ecx, 128
    jb .copy_in
    mov eax, TS_PT_CMD_WRITE_BUF
    mov ebx, BUF_LBA
    mov ecx, 512
    xor edx, edx
    call pt_command
    mov al, 5
    jne fail
    mov eax, TS_PT_CMD_READ
    mov ebx, BUF_LBA
    mov ecx, 512
    mov edx, BACK_RAM
    call pt_command
    mov al, 5
    jne fail
    mov esi, BUF_RAM
    mov edi, BACK_RAM
    mov ecx, 512
    repe cmpsb
    mov al, 5
    jne fail

    ; 6. flush
    mov eax, TS_PT_CMD_FLUSH
    xor ebx, ebx
    xor ecx, ecx
    xor edx, edx
    call pt_command
    mov al, 6
    jne fail

    ; 7. hostile requests: each refused with its error, and the device keeps working
    mov eax, TS_PT_CMD_READ
    xor ebx, ebx
    mov ecx, 512
    mov edx, 0xF0000000           ; not the VM's memory
    call pt_command
    mov al, 7
    cmp edi, TS_PT_ERR_DMA
    jne fail
    mov eax, TS_PT_CMD_READ
    xor ebx, ebx
    mov ecx, 3                    ; not whole sectors
    mov edx, READ_RAM
    call pt_command
    mov al, 7
    cmp edi, TS_PT_ERR_LENGTH
    jne fail
    mov eax, TS_PT_CMD_READ
    mov ebx, 0xFFFFFFFF           ; past the disk
    mov ecx, 512
    mov edx, READ_RAM
    call pt_command
    mov al, 7
    cmp edi, TS_PT_ERR_RANGE
    jne fail
    mov eax, 0x99                 ; no such command
    call pt_command
    mov al, 7
    cmp edi, TS_PT_ERR_COMMAND
    jne fail

    ; 8. every command counted
    mov al, 8
    cmp dword [PT + TS_PT_DONE], 11
    jne fail

    mov esi, msg_done
    TS_PRINT_SI
    mov eax, [checksum]
    call print_hex
    mov al, 10
    out dx, al
    xor eax, eax
    out TS_CONTROL_PORT, eax
    hlt

; No device answers at the window (run without --passthrough): say so, exit code 1.
no_device:
    mov esi, msg_no_device
    TS_PRINT_SI
    mov al, 1
    ; fall through

; al = step number: the exit code.
fail:
    movzx eax, al
    out TS_CONTROL_PORT, eax
    hlt

; Runs one command: eax = COMMAND, ebx = SECTOR, ecx = LENGTH, edx = DMA_ADDR. Rings the
; doorbell with the next number and waits (bounded) until COMPLETED shows it. Returns
; edi = ERROR (-1 if the device never answered) and ZF set if it is 0. Clobbers eax.
pt_command:
    mov [PT + TS_PT_COMMAND], eax
    mov [PT + TS_PT_LENGTH], ecx
    mov [PT + TS_PT_SECTOR], ebx
    mov dword [PT + TS_PT_SECTOR + 4], 0
    mov [PT + TS_PT_DMA_ADDR], edx
    mov dword [PT + TS_PT_DMA_ADDR + 4], 0
    mov eax, [doorbell]
    inc eax
    mov [doorbell], eax
    mov [PT + TS_PT_DOORBELL], eax   ; the device acts on this store
    mov edi, 50000000
.wait:
    cmp [PT + TS_PT_COMPLETED], eax
    je .done
    dec edi
    jnz .wait
    mov edi, -1
    test edi, edi
    ret
.done:
    mov edi, [PT + TS_PT_ERROR]
    test edi, edi
    ret

; Checks ecx sectors at esi against the built-in disk's pattern from sector ebx. Returns ZF set
; if all match; ebp = the sum of their bytes. Clobbers eax, ebx, ecx, edx, esi.
check_pattern:
    xor ebp, ebp
.sector:
    imul edx, ebx, 31             ; dl = expected byte 0 of sector ebx
    push ecx
    mov ecx, 512
.byte:
    movzx eax, byte [esi]
    cmp al, dl
    jne .bad
    add ebp, eax
    inc esi
    inc dl
    dec ecx
    jnz .byte
    pop ecx
    inc ebx
    dec ecx
    jnz .sector
    xor eax, eax                  ; ZF = 1
    ret
.bad:
    pop ecx
    or eax, 1                     ; ZF = 0 (eax holds a byte + 1 > 0)
    ret

; Prints eax as 8 hex digits on the debug console. Clobbers eax, ecx, edx, ebx.
print_hex:
    mov ebx, eax
    mov ecx, 8
    mov dx, TS_DEBUG_PORT
.digit:
    rol ebx, 4
    mov al, bl
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 'a' - '0' - 10
.out:
    out dx, al
    dec ecx
    jnz .digit
    ret

msg_done: db "passthrough: checksum=", 0
msg_no_device: db "passthrough: no device at 0xE8000000 (run with --passthrough mapped or emulated)", 10, 0
align 4
doorbell: dd 0
checksum: dd 0
