; nano-cli — nanobenchmark (Adams & Agesen, ASPLOS 2006): cli + sti (the interrupt-mask write), 1000 times
; (include/nano_body.inc; `trapscope compare nano-cli`).
%include "trapscope.inc"
%define BENCH NANO_CLI
%define PV 0
%include "nano_body.inc"
