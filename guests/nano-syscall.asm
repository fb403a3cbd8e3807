; nano-syscall — nanobenchmark (Adams & Agesen, ASPLOS 2006): CPL 3 syscall + kernel sysretq, 1000 times
; (include/nano_body.inc; `trapscope compare nano-syscall`).
%include "trapscope.inc"
%define BENCH NANO_SYSCALL
%define PV 0
%include "nano_body.inc"
