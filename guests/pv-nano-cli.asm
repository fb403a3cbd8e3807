; pv-nano-cli — paravirtualized nano-cli: the shared event-mask byte instead of cli + sti, 1000 times
; (include/nano_body.inc).
%include "trapscope.inc"
%define BENCH NANO_CLI
%define PV 1
%include "nano_body.inc"
