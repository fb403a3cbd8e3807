; nano-in — nanobenchmark (Adams & Agesen, ASPLOS 2006): in al, 0xE9 (a port read), 1000 times
; (include/nano_body.inc; `trapscope compare nano-in`).
%include "trapscope.inc"
%define BENCH NANO_IN
%define PV 0
%include "nano_body.inc"
