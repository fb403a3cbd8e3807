; pv-nano-ptemod — paravirtualized nano-ptemod: one mmu_update hypercall per PTE + a read of the page, 1000 times
; (include/nano_body.inc).
%include "trapscope.inc"
%define BENCH NANO_PTEMOD
%define PV 1
%include "nano_body.inc"
