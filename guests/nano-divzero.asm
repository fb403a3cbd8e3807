; nano-divzero — nanobenchmark (Adams & Agesen, ASPLOS 2006): div by zero: #DE to the guest's handler, 1000 times
; (include/nano_body.inc; `trapscope compare nano-divzero`).
%include "trapscope.inc"
%define BENCH NANO_DIVZERO
%define PV 0
%include "nano_body.inc"
