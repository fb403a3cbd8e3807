; ptes — page-table work in bulk with direct PTE writes, invlpg and mov cr3 (see
; include/ptes_body.inc); its paravirtualized twin is pv-ptes.
%include "trapscope.inc"
%define PV 0
%include "ptes_body.inc"
