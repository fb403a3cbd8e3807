; pv-paging — the paravirtualized twin of paging: mmu_update for every page-table change after
; boot (the #PF handler's too), set_cr3, console_write per line (include/paging_body.inc).
%include "trapscope.inc"
%define PV 1
%include "paging_body.inc"
