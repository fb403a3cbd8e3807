; disk-ata — a real-mode ATA PIO driver, written from the register interface of ATA/ATAPI-6 and
; the commands of ATA8-ACS (platform/ata.hpp, docs/disks.md): IDENTIFY DEVICE, READ SECTORS of
; 64 sectors (checked against the pattern the test put in the image, and checksummed), WRITE
; SECTORS of 16 sectors at LBA 100, FLUSH CACHE, and a read back of those 16. Data moves one word
; at a time (`in ax, dx`), as doublewords (`in eax, dx`) and as `rep insw`/`rep outsw`; every
; register access is a VM exit. Status is polled (no interrupts; nIEN is set).
;
; The image (drive 0, at least 128 sectors): byte k of sector s (s < 64) holds
; ((k + 13 s) mod 256) xor (k >> 8). The guest writes ((k xor 0xA5) + 29 t) mod 256 xor (k >> 8)
; to byte k of sector 100 + t (t < 16).
; Exit code 0: every value as expected; else the step that failed: 1 no controller (status
; 0xFF), 2 IDENTIFY failed, 3 IDENTIFY data wrong, 4 READ failed, 5 read data wrong, 6 WRITE
; failed, 7 WRITE aborted (ABRT: a read-only disk), 8 FLUSH failed, 9 read-back data wrong.
%include "trapscope.inc"
bits 16
org TS_LOAD_DEFAULT

%define ATA_DATA     0x1F0
%define ATA_ERROR    0x1F1
%define ATA_COUNT    0x1F2
%define ATA_LBA_LOW  0x1F3
%define ATA_LBA_MID  0x1F4
%define ATA_LBA_HIGH 0x1F5
%define ATA_DEVICE   0x1F6
%define ATA_STATUS   0x1F7          ; read: Status; write: Command
%define ATA_CONTROL  0x3F6          ; read: Alternate Status; write: Device Control
%define ST_BSY  0x80
%define ST_DRQ  0x08
%define ST_ERR  0x01
%define ERR_ABRT 0x04
%define IDENTIFY_BUF 0x2000         ; 512 bytes
%define READ_SEG     0x1000         ; 64 sectors read at 0x10000
%define WRITE_SEG    0x2000         ; 16 sectors to write at 0x20000
%define BACK_SEG     0x3000         ; 16 sectors read back at 0x30000

start:
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, TS_LOAD_DEFAULT
    cld
    mov dx, ATA_CONTROL
    mov al, 0x02                    ; nIEN: no interrupts, this driver polls
    out dx, al
    mov dx, ATA_DEVICE
    mov al, 0xE0                    ; LBA, device 0
    out dx, al
    mov dx, ATA_STATUS
    in al, dx
    mov bl, 1
    cmp al, 0xFF                    ; a floating bus: no controller
    je fail

; [SECTION] IDENTIFY DEVICE
    mov al, 0xEC
    out dx, al
    call wait_drq
    mov bl, 2
    jc fail
    mov di, IDENTIFY_BUF
    mov cx, 256
    mov dx, ATA_DATA
    rep insw
    mov bl, 3
    test word [IDENTIFY_BUF], 0x8000          ; word 0 bit 15: 0 = ATA device
    jnz fail
    test word [IDENTIFY_BUF + 49*2], 0x0200   ; word 49 bit 9: LBA supported
    jz fail
    cmp word [IDENTIFY_BUF + 61*2], 0         ; words 60-61: user sectors (LBA28) >= 128
    jne .size_ok
    cmp word [IDENTIFY_BUF + 60*2], 128
    jb fail
.size_ok:
    cmp word [IDENTIFY_BUF + 27*2], 'rt'      ; model "trapscope...": an ATA string's word holds
                                              ; its first character in the high byte
    jne fail
    mov si, msg_identify
    call print
    mov eax, [IDENTIFY_BUF + 60*2]
    call print_hex
    mov si, msg_newline
    call print

; [SECTION] READ SECTORS: 64 sectors from LBA 0, DRQ per sector
    mov eax, 0
    mov cl, 64
    mov al, 0x20
    call issue                      ; LBA 0 (eax high bits 0 after mov al)
    xor bp, bp                      ; bp = sector
.read_next:
    call wait_drq
    mov bl, 4
    jc fail
    mov ax, bp
    shl ax, 5                       ; segment for sector bp: READ_SEG + bp * 32
    add ax, READ_SEG
    mov es, ax
    xor di, di
    mov dx, ATA_DATA
    cmp bp, 0
    je .words
    cmp bp, 1
    je .dwords
    mov cx, 256
    rep insw
    jmp .read_done
.words:                             ; sector 0: one `in ax, dx` (one VM exit) per word
    mov cx, 256
.w: in ax, dx
    stosw
    loop .w
    jmp .read_done
.dwords:                            ; sector 1: `in eax, dx`, two words per access
    mov cx, 128
.d: in eax, dx
    stosd
    loop .d
.read_done:
    inc bp
    cmp bp, 64
    jb .read_next
    call wait_idle
    mov bl, 4
    test al, ST_ERR
    jnz fail

    ; check the pattern and sum the bytes
    xor bp, bp
    xor esi, esi                    ; esi = checksum
.check_sector:
    mov ax, bp
    shl ax, 5
    add ax, READ_SEG
    mov es, ax
    mov ax, bp
    mov ah, 13
    mul ah                          ; ax = 13 s
    mov dh, al                      ; dh = 13 s mod 256
    xor bx, bx                      ; bx = k
.check_byte:
    mov al, bl
    add al, dh
    xor al, bh
    cmp al, [es:bx]
    jne .bad_read
    movzx ecx, al
    add esi, ecx
    inc bx
    cmp bx, 512
    jb .check_byte
    inc bp
    cmp bp, 64
    jb .check_sector
    mov eax, esi
    push eax
    mov si, msg_checksum
    call print
    pop eax
    call print_hex
    mov si, msg_newline
    call print
    jmp write_part
.bad_read:
    mov bl, 5
    jmp fail

; [SECTION] WRITE SECTORS: 16 sectors at LBA 100
write_part:
    xor bp, bp                      ; fill the buffer: sector t, byte k
.fill_sector:
    mov ax, bp
    shl ax, 5
    add ax, WRITE_SEG
    mov es, ax
    mov ax, bp
    mov ah, 29
    mul ah
    mov dh, al                      ; dh = 29 t mod 256
    xor bx, bx
.fill_byte:
    mov al, bl
    xor al, 0xA5
    add al, dh
    xor al, bh
    mov [es:bx], al
    inc bx
    cmp bx, 512
    jb .fill_byte
    inc bp
    cmp bp, 16
    jb .fill_sector

    mov eax, 100
    mov cl, 16
    mov al, 0x30
    call issue_lba100
    xor bp, bp
.write_next:
    call wait_drq
    jc write_error
    mov ax, bp
    shl ax, 5
    add ax, WRITE_SEG
    mov ds, ax
    xor si, si
    mov dx, ATA_DATA
    cmp bp, 0
    je .owords
    cmp bp, 1
    je .odwords
    mov cx, 256
    rep outsw
    jmp .write_done
.owords:
    mov cx, 256
.ow:
    lodsw
    out dx, ax
    loop .ow
    jmp .write_done
.odwords:
    mov cx, 128
.od:
    lodsd
    out dx, eax
    loop .od
.write_done:
    xor ax, ax
    mov ds, ax
    inc bp
    cmp bp, 16
    jb .write_next
    call wait_idle
    test al, ST_ERR
    jnz write_error

; [SECTION] FLUSH CACHE
    mov dx, ATA_STATUS
    mov al, 0xE7
    out dx, al
    call wait_idle
    mov bl, 8
    test al, ST_ERR
    jnz fail

; [SECTION] read back LBA 100..115 and compare
    mov eax, 100
    mov cl, 16
    mov al, 0x20
    call issue_lba100
    xor bp, bp
.back_next:
    call wait_drq
    mov bl, 4
    jc fail
    mov ax, bp
    shl ax, 5
    add ax, BACK_SEG
    mov es, ax
    xor di, di
    mov dx, ATA_DATA
    mov cx, 256
    rep insw
    inc bp
    cmp bp, 16
    jb .back_next
    push ds
    mov ax, WRITE_SEG
    mov ds, ax
    mov ax, BACK_SEG
    mov es, ax
    xor si, si
    xor di, di
    mov cx, 16 * 512 / 2
    repe cmpsw
    pop ds
    mov bl, 9
    jne fail
    mov si, msg_ok
    call print
    mov dx, TS_CONTROL_PORT
    mov al, TS_EXIT_PASS
    out dx, al
    hlt

write_error:                        ; ABRT on a write: the disk is read-only
    mov dx, ATA_ERROR
    in al, dx
    mov bl, 6
    test al, ERR_ABRT
    jz fail
    mov bl, 7
fail:                               ; bl = exit code
    xor ax, ax
    mov ds, ax
    mov si, msg_fail
    call print
    mov al, bl
    movzx eax, al
    call print_hex
    mov si, msg_newline
    call print
    mov dx, TS_CONTROL_PORT
    mov al, bl
    out dx, al
    hlt

; issue: cl = sector count, al = command, LBA 0. issue_lba100: LBA 100.
issue_lba100:
    mov ah, 100
    jmp issue_common
issue:
    mov ah, 0
issue_common:
    push ax
    mov dx, ATA_DEVICE
    mov al, 0xE0                    ; LBA, device 0, LBA bits 27:24 = 0
    out dx, al
    mov dx, ATA_COUNT
    mov al, cl
    out dx, al
    mov dx, ATA_LBA_LOW
    mov al, ah
    out dx, al
    xor al, al
    mov dx, ATA_LBA_MID
    out dx, al
    mov dx, ATA_LBA_HIGH
    out dx, al
    pop ax
    mov dx, ATA_STATUS
    out dx, al
    ret

; wait_drq: poll Status until BSY is clear and DRQ or ERR is set. CF set on ERR or timeout.
wait_drq:
    push cx
    mov dx, ATA_CONTROL
    in al, dx                       ; the 400 ns settle read (Alternate Status)
    mov dx, ATA_STATUS
    mov cx, 0xFFFF
.poll:
    in al, dx
    test al, ST_BSY
    jnz .again
    test al, ST_ERR
    jnz .error
    test al, ST_DRQ
    jnz .ok
.again:
    loop .poll
.error:
    pop cx
    stc
    ret
.ok:
    pop cx
    clc
    ret

; wait_idle: poll Status until BSY is clear; al = Status.
wait_idle:
    mov dx, ATA_STATUS
.poll:
    in al, dx
    test al, ST_BSY
    jnz .poll
    ret

; print: the NUL-terminated string at ds:si on the debug console.
print:
    push ax
    push dx
    TS_PRINT_SI
    pop dx
    pop ax
    ret

; print_hex: eax as 8 hex digits.
print_hex:
    push cx
    push dx
    mov cx, 8
    mov dx, TS_DEBUG_PORT
.digit:
    rol eax, 4
    push eax
    and al, 0x0F
    add al, '0'
    cmp al, '9'
    jbe .out
    add al, 'a' - '9' - 1
.out:
    out dx, al
    pop eax
    loop .digit
    pop dx
    pop cx
    ret

msg_identify: db "disk-ata: IDENTIFY ok, sectors 0x", 0
msg_checksum: db "disk-ata: 64 sectors read, byte sum 0x", 0
msg_ok:       db "disk-ata: 16 sectors written, flushed and read back: ok", 10, 0
msg_fail:     db "disk-ata: FAILED at step 0x", 0
msg_newline:  db 10, 0
