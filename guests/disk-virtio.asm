; disk-virtio — a virtio-blk driver written from the OASIS virtio 1.1 specification: the
; virtio-mmio transport (§4.2.2 registers, §4.2.3.1 initialization), a split virtqueue (§2.6)
; and block requests (§5.2.6). The same work as disk-ata: identify the disk (capacity from the
; configuration space, the GET_ID string), read and check 64 sectors, write 16, flush, read
; them back; exit code 0 if every value was as expected (docs/virtio.md lists the codes).
;
; The disk it expects (tests make it): at least 80 sectors, byte i of sector s = (s*0x1D + i)
; mod 256. It writes sectors 64..79 with that pattern XOR 0xA5.
; Completion is by polling the used ring: trapscope has no interrupts. Each batch of requests is
; made available at once and costs one QueueNotify (one VM exit).
; Entered in 32-bit protected mode at CPL 0 with the VMM's flat GDT (paging off).
%include "trapscope.inc"
bits 32
org TS_LOAD_DEFAULT

VIO          equ 0xE0000000      ; virtio-mmio device 0 (platform/virtio_mmio.hpp)
R_MAGIC      equ 0x000
R_VERSION    equ 0x004
R_DEVICE_ID  equ 0x008
R_DEV_FEAT   equ 0x010
R_DEV_FSEL   equ 0x014
R_DRV_FEAT   equ 0x020
R_DRV_FSEL   equ 0x024
R_QUEUE_SEL  equ 0x030
R_QNUM_MAX   equ 0x034
R_QNUM       equ 0x038
R_QREADY     equ 0x044
R_QNOTIFY    equ 0x050
R_STATUS     equ 0x070
R_QDESC_LO   equ 0x080
R_QDESC_HI   equ 0x084
R_QDRV_LO    equ 0x090
R_QDRV_HI    equ 0x094
R_QDEV_LO    equ 0x0a0
R_QDEV_HI    equ 0x0a4
R_CONFIG     equ 0x100

S_ACK        equ 1
S_DRIVER     equ 2
S_DRIVER_OK  equ 4
S_FEATURES_OK equ 8

F_FLUSH      equ 1 << 9          ; VIRTIO_BLK_F_FLUSH (low word)
F_VERSION_1  equ 1               ; VIRTIO_F_VERSION_1 = bit 32 (high word)

T_IN         equ 0
T_OUT        equ 1
T_FLUSH      equ 4
T_GET_ID     equ 8

D_NEXT       equ 1
D_WRITE      equ 2

QSIZE        equ 32
DESC         equ 0x10000         ; 32 × 16 bytes
AVAIL        equ 0x10200         ; flags, idx, ring[32], used_event
USED         equ 0x10400         ; flags, idx, ring[32] of {id, len}, avail_event
HDRS         equ 0x11000         ; request headers, 16 bytes per request of a batch
STATUS       equ 0x11200         ; status bytes, one per request of a batch
IDBUF        equ 0x11300         ; GET_ID answer (20 bytes)
RDBUF        equ 0x20000         ; 64 sectors read
WRBUF        equ 0x30000         ; 16 sectors to write
BACKBUF      equ 0x38000         ; 16 sectors read back
STACK_TOP    equ 0x8000

start:
    mov esp, STACK_TOP
    mov esi, VIO
    ; --- probe (§4.2.3.1.1): magic, version 2, device ID 2 (block)
    cmp dword [esi + R_MAGIC], 0x74726976
    je .found
    mov ebx, msg_nodev
    call puts
    mov al, 1
    jmp fail
.found:
    mov al, 2
    cmp dword [esi + R_VERSION], 2
    jne fail
    mov al, 3
    cmp dword [esi + R_DEVICE_ID], 2
    jne fail
    ; --- initialization (§3.1.1): reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK
    mov dword [esi + R_STATUS], 0
    mov dword [esi + R_STATUS], S_ACK
    mov dword [esi + R_STATUS], S_ACK | S_DRIVER
    mov dword [esi + R_DEV_FSEL], 1
    mov al, 4
    test dword [esi + R_DEV_FEAT], F_VERSION_1
    jz fail
    mov dword [esi + R_DEV_FSEL], 0
    test dword [esi + R_DEV_FEAT], F_FLUSH
    jz fail
    mov dword [esi + R_DRV_FSEL], 0
    mov dword [esi + R_DRV_FEAT], F_FLUSH
    mov dword [esi + R_DRV_FSEL], 1
    mov dword [esi + R_DRV_FEAT], F_VERSION_1
    mov dword [esi + R_STATUS], S_ACK | S_DRIVER | S_FEATURES_OK
    mov al, 5
    test dword [esi + R_STATUS], S_FEATURES_OK
    jz fail
    ; --- queue 0 (§4.2.3.2)
    mov dword [esi + R_QUEUE_SEL], 0
    mov al, 6
    cmp dword [esi + R_QNUM_MAX], QSIZE
    jb fail
    cld
    mov edi, DESC                ; clear the rings
    mov ecx, (0x11400 - DESC) / 4
    xor eax, eax
    rep stosd
    mov dword [esi + R_QNUM], QSIZE
    mov dword [esi + R_QDESC_LO], DESC
    mov dword [esi + R_QDESC_HI], 0
    mov dword [esi + R_QDRV_LO], AVAIL
    mov dword [esi + R_QDRV_HI], 0
    mov dword [esi + R_QDEV_LO], USED
    mov dword [esi + R_QDEV_HI], 0
    mov dword [esi + R_QREADY], 1
    mov dword [esi + R_STATUS], S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK
    ; --- capacity (§5.2.4)
    mov al, 7
    cmp dword [esi + R_CONFIG + 4], 0
    jne .big
    cmp dword [esi + R_CONFIG], 80
    jb fail
.big:
    mov ebx, msg_cap
    call puts
    mov eax, [esi + R_CONFIG]
    call print_hex
    ; --- batch 1: GET_ID
    call batch_begin
    mov eax, T_GET_ID
    xor edx, edx
    mov ebx, IDBUF
    mov ecx, 20
    call submit
    call kick
    mov al, 8
    mov edi, IDBUF
    mov ebx, id_expected
    mov ecx, id_expected_len
.id:
    mov dl, [ebx]
    cmp [edi], dl
    jne fail
    inc edi
    inc ebx
    loop .id
    mov ebx, msg_id
    call puts
    mov ebx, IDBUF
    call puts
    ; --- batch 2: 64 sectors in 8 requests of 8 sectors
    call batch_begin
    xor edx, edx                 ; sector
    mov ebx, RDBUF
.rd:
    mov eax, T_IN
    mov ecx, 8 * 512
    call submit
    add edx, 8
    add ebx, 8 * 512
    cmp edx, 64
    jb .rd
    call kick
    ; check every byte against the pattern, and sum them
    xor edx, edx                 ; sector
    mov edi, RDBUF
    xor ebp, ebp                 ; checksum
.chk_sector:
    xor ecx, ecx                 ; byte index
.chk_byte:
    mov eax, edx
    imul eax, eax, 0x1D
    add eax, ecx
    movzx ebx, byte [edi]
    add ebp, ebx
    cmp bl, al
    mov al, 11
    jne fail
    inc edi
    inc ecx
    cmp ecx, 512
    jb .chk_byte
    inc edx
    cmp edx, 64
    jb .chk_sector
    mov ebx, msg_sum
    call puts
    mov eax, ebp
    call print_hex
    ; --- batch 3: write sectors 64..79 (2 requests of 8), then batch 4: flush
    mov edi, WRBUF
    mov edx, 64
.fill_sector:
    xor ecx, ecx
.fill_byte:
    mov eax, edx
    imul eax, eax, 0x1D
    add eax, ecx
    xor al, 0xA5
    mov [edi], al
    inc edi
    inc ecx
    cmp ecx, 512
    jb .fill_byte
    inc edx
    cmp edx, 80
    jb .fill_sector
    call batch_begin
    mov eax, T_OUT
    mov edx, 64
    mov ebx, WRBUF
    mov ecx, 8 * 512
    call submit
    mov eax, T_OUT
    mov edx, 72
    mov ebx, WRBUF + 8 * 512
    mov ecx, 8 * 512
    call submit
    call kick
    call batch_begin
    mov eax, T_FLUSH
    xor edx, edx
    xor ecx, ecx
    call submit
    call kick
    ; --- batch 5: read 64..79 back, compare with what was written
    call batch_begin
    mov eax, T_IN
    mov edx, 64
    mov ebx, BACKBUF
    mov ecx, 16 * 512
    call submit
    call kick
    mov al, 12
    mov esi, WRBUF
    mov edi, BACKBUF
    mov ecx, 16 * 512 / 4
    repe cmpsd
    jne fail
    mov ebx, msg_ok
    call puts
    xor eax, eax
    out TS_CONTROL_PORT, eax
    hlt

; fail: exit with the code in al (after printing it).
fail:
    movzx eax, al
    push eax
    mov ebx, msg_fail
    call puts
    mov eax, [esp]
    call print_hex
    pop eax
    out TS_CONTROL_PORT, eax
    hlt

; batch_begin: the next submit starts at request 0 of a new batch.
batch_begin:
    mov dword [nreq], 0
    ret

; submit: eax = type, edx = sector, ebx = data GPA, ecx = data bytes (0: none). Puts request
; n = nreq in descriptors 3n.. (header, [data], status), makes it available (not yet seen by the
; device: the avail idx is published by kick). Clobbers eax, edi.
submit:
    push ebx
    push ecx
    push edx
    push esi
    mov esi, [nreq]
    mov edi, esi
    shl edi, 4
    add edi, HDRS                ; header: type, reserved, sector (le64)
    mov [edi], eax
    mov dword [edi + 4], 0
    mov [edi + 8], edx
    mov dword [edi + 12], 0
    mov byte [STATUS + esi], 0xFF
    ; the expected used len: data bytes + 1 if the device writes the data, else 1
    mov edx, 1
    cmp eax, T_IN
    je .dev_writes
    cmp eax, T_GET_ID
    jne .len_done
.dev_writes:
    add edx, ecx
.len_done:
    mov [exp_len + 4 * esi], edx
    mov [is_write_type], eax
    lea edx, [esi + esi * 2]     ; first descriptor 3n
    shl edx, 4
    add edx, DESC
    mov [edx], edi               ; desc 3n: header, readable, NEXT
    mov dword [edx + 4], 0
    mov dword [edx + 8], 16
    lea eax, [esi + esi * 2 + 1]
    shl eax, 16
    or eax, D_NEXT
    mov [edx + 12], eax          ; flags (low half), next (high half)
    add edx, 16
    test ecx, ecx
    jz .status
    mov [edx], ebx               ; desc 3n+1: data
    mov dword [edx + 4], 0
    mov [edx + 8], ecx
    lea eax, [esi + esi * 2 + 2]
    shl eax, 16
    or eax, D_NEXT
    cmp dword [is_write_type], T_OUT
    je .readable
    or eax, D_WRITE
.readable:
    mov [edx + 12], eax
    add edx, 16
.status:
    lea eax, [STATUS + esi]      ; last: status byte, device-writable
    mov [edx], eax
    mov dword [edx + 4], 0
    mov dword [edx + 8], 1
    mov dword [edx + 12], D_WRITE
    ; avail ring entry (avail_idx + n) mod QSIZE = head 3n
    movzx eax, word [avail_idx]
    add eax, esi
    and eax, QSIZE - 1
    lea edx, [esi + esi * 2]
    mov [AVAIL + 4 + 2 * eax], dx
    inc dword [nreq]
    pop esi
    pop edx
    pop ecx
    pop ebx
    ret

; kick: publishes the batch (avail idx += nreq), notifies queue 0 once, polls the used ring
; until the device has used every request, then checks each status byte and used length.
kick:
    push esi
    mov eax, [nreq]
    add [avail_idx], ax
    mov ax, [avail_idx]
    mov [AVAIL + 2], ax          ; the ring entries are written before the index (§2.6.13)
    mov esi, VIO
    mov dword [esi + R_QNOTIFY], 0
    mov ecx, 1000000
.poll:
    mov ax, [USED + 2]
    cmp ax, [avail_idx]
    je .done
    loop .poll
    mov al, 10
    jmp fail
.done:
    ; used ring entries of this batch: (avail_idx - nreq + k) mod QSIZE, k = 0..nreq-1
    xor ecx, ecx
.check:
    cmp ecx, [nreq]
    jae .ok
    mov al, 9
    cmp byte [STATUS + ecx], 0
    jne fail
    movzx edx, word [avail_idx]
    sub edx, [nreq]
    add edx, ecx
    and edx, QSIZE - 1
    mov eax, [exp_len + 4 * ecx]
    cmp eax, [USED + 8 + 8 * edx]
    mov al, 13
    jne fail
    inc ecx
    jmp .check
.ok:
    pop esi
    ret

; puts: prints the NUL-terminated string at ebx. Clobbers eax, ebx, edx.
puts:
    mov dx, TS_DEBUG_PORT
.next:
    mov al, [ebx]
    test al, al
    jz .end
    out dx, al
    inc ebx
    jmp .next
.end:
    ret

; print_hex: prints eax as 0x + 8 hex digits and a newline. Clobbers eax, ebx, ecx, edx.
print_hex:
    mov ebx, eax
    mov dx, TS_DEBUG_PORT
    mov al, '0'
    out dx, al
    mov al, 'x'
    out dx, al
    mov ecx, 8
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
    loop .digit
    mov al, 10
    out dx, al
    ret

msg_cap:      db "disk-virtio: capacity (sectors) ", 0
msg_id:       db "disk-virtio: id ", 0
msg_sum:      db 10, "disk-virtio: 64 sectors read, byte sum ", 0
msg_ok:       db "disk-virtio: 16 sectors written, flushed and read back: ok", 10, 0
msg_nodev:    db "disk-virtio: no virtio device at 0xE0000000 (give the machine a disk: --disk FILE)", 10, 0
msg_fail:     db "disk-virtio: FAILED, exit code ", 0
id_expected:  db "trapscope-vblk0", 0, 0, 0, 0, 0
id_expected_len equ $ - id_expected
align 4
nreq:         dd 0
avail_idx:    dd 0
is_write_type: dd 0
exp_len:      times QSIZE dd 0
