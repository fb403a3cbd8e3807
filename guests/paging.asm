; paging — a kernel managing its own virtual memory (include/paging_body.inc); its
; paravirtualized twin is pv-paging.
%include "trapscope.inc"
%define PV 0
%include "paging_body.inc"
