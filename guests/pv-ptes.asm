; pv-ptes — the paravirtualized twin of ptes: batched mmu_update and set_cr3 hypercalls in
; place of PTE stores + invlpg and mov cr3, console_write per string (include/ptes_body.inc).
%include "trapscope.inc"
%define PV 1
%include "ptes_body.inc"
