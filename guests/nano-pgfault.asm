; nano-pgfault — nanobenchmark (Adams & Agesen, ASPLOS 2006): a read of a not-present page: #PF to the guest's handler, 1000 times
; (include/nano_body.inc; `trapscope compare nano-pgfault`).
%include "trapscope.inc"
%define BENCH NANO_PGFAULT
%define PV 0
%include "nano_body.inc"
