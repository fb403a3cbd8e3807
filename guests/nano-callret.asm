; nano-callret — nanobenchmark (Adams & Agesen, ASPLOS 2006): call + ret, 1000 times
; (include/nano_body.inc; `trapscope compare nano-callret`).
%include "trapscope.inc"
%define BENCH NANO_CALLRET
%define PV 0
%include "nano_body.inc"
