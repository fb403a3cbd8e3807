; nano-ptemod — nanobenchmark (Adams & Agesen, ASPLOS 2006): one PTE store + invlpg + a read of the page, 1000 times
; (include/nano_body.inc; `trapscope compare nano-ptemod`).
%include "trapscope.inc"
%define BENCH NANO_PTEMOD
%define PV 0
%include "nano_body.inc"
