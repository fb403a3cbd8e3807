# The teaching guests. MODE is the mode the VMM enters the guest in (trapscope run --mode).
trapscope_guest(hello MODE real
  DESCRIPTION "real mode: writes a message to the debug console (port 0xE9) and halts")
trapscope_guest(long-hello MODE long
  DESCRIPTION "entered in 64-bit long mode by the VMM: writes to the COM1 UART and halts")
trapscope_guest(boot MODE real
  DESCRIPTION "switches itself from real to protected to long mode, reporting each step")
trapscope_guest(rings MODE long
  DESCRIPTION "GDT, IDT and TSS, iretq to CPL 3: privileged instructions and a bad access trap to CPL 0")
trapscope_guest(compute MODE real DESCRIPTION "boot-sector integer loop of bench/interp_mips")
trapscope_guest(popek MODE protected
  DESCRIPTION "a 32-bit kernel that runs pushf/popf, push cs, sgdt/sidt/str/smsw and prints what it sees (Popek-Goldberg)")
trapscope_guest(paging MODE long
  DESCRIPTION "its own page tables: demand paging via #PF, PTE changes, unmapping, two address spaces (CR3)")
trapscope_guest(smc MODE real
  DESCRIPTION "real mode: a loop patches the instruction it runs next (self-modifying code)")
trapscope_guest(kernelops MODE protected
  DESCRIPTION "a 32-bit kernel loop of cli/sti, pushf/popf, CR0/CR3, lgdt, mov ds, invlpg (bench/bt_speed)")
trapscope_guest(pv-hello MODE real
  DESCRIPTION "paravirtualized hello: one console_write hypercall for the whole message, then the halt hypercall")
trapscope_guest(ptes MODE long
  DESCRIPTION "page-table work in bulk: 16 rounds of 64 PTE stores + invlpg and two mov cr3")
trapscope_guest(pv-ptes MODE long
  DESCRIPTION "paravirtualized ptes: one batched mmu_update hypercall per round, set_cr3 hypercalls")
trapscope_guest(nano-syscall MODE long
  DESCRIPTION "nanobenchmark: CPL 3 syscall + kernel sysretq, 1000 times")
trapscope_guest(nano-in MODE long
  DESCRIPTION "nanobenchmark: in al, 0xE9 (a port read), 1000 times")
trapscope_guest(nano-cli MODE long
  DESCRIPTION "nanobenchmark: cli + sti (the interrupt-mask write), 1000 times")
trapscope_guest(nano-callret MODE long
  DESCRIPTION "nanobenchmark: call + ret, 1000 times")
trapscope_guest(nano-pgfault MODE long
  DESCRIPTION "nanobenchmark: a read of a not-present page: #PF to the guest's handler, 1000 times")
trapscope_guest(nano-divzero MODE long
  DESCRIPTION "nanobenchmark: div by zero: #DE to the guest's handler, 1000 times")
trapscope_guest(nano-ptemod MODE long
  DESCRIPTION "nanobenchmark: one PTE store + invlpg + a read of the page, 1000 times")
trapscope_guest(pv-nano-cli MODE long
  DESCRIPTION "paravirtualized nano-cli: the shared event-mask byte instead of cli + sti, 1000 times")
trapscope_guest(pv-nano-ptemod MODE long
  DESCRIPTION "paravirtualized nano-ptemod: one mmu_update hypercall per PTE + a read of the page, 1000 times")
trapscope_guest(pv-paging MODE long
  DESCRIPTION "paravirtualized paging: mmu_update in the #PF handler and for every PTE change, set_cr3, console_write")
trapscope_guest(compute64 MODE real
  DESCRIPTION "boot sector: long mode with paging, an 8-instruction loop with add [base + index*8], reg (bench/engine_ratios)")
trapscope_guest(disk-ata MODE real
  DESCRIPTION "an ATA PIO driver: IDENTIFY, read and check 64 sectors, write 16, flush, read back (needs --disk; docs/disks.md)")
trapscope_guest(passthrough MODE protected
  DESCRIPTION "drives the passthrough device (run with --passthrough mapped|emulated): DMA reads, writes, its buffer, refused requests")
trapscope_guest(dirty MODE protected
  DESCRIPTION "live migration: increments a dword in each page of a working set, pass after pass (--guest-arg PAGES[,PASSES])")
trapscope_guest(disk-virtio MODE protected
  DESCRIPTION "a virtio-blk driver over virtio-mmio: GET_ID, read and check 64 sectors, write 16, flush, read back (needs a disk)")
