#!/bin/sh
# tests/bad_option.sh STATUS WORD PROGRAM ARGS... — a small program given a bad option value
# (CLI11) must exit with STATUS, print an error naming WORD (the option) on stderr and nothing
# on stdout; and `PROGRAM --help` must exit 0 listing WORD. Run by ctest (tests/CMakeLists.txt).
status="$1"; word="$2"; shift 2
tmp="$(mktemp)"
out="$("$@" 2>"$tmp")"; rc=$?
err="$(cat "$tmp")"; rm -f "$tmp"
echo "exit $rc; stderr: $err"
[ "$rc" -eq "$status" ] || { echo "FAIL: exit status $rc, expected $status"; exit 1; }
[ -z "$out" ] || { echo "FAIL: stdout not empty: $out"; exit 1; }
case "$err" in *"$word"*) ;; *) echo "FAIL: the error does not name $word"; exit 1 ;; esac
help="$("$1" --help)" || { echo "FAIL: $1 --help exited non-zero"; exit 1; }
case "$help" in *"$word"*) ;; *) echo "FAIL: --help does not list $word"; exit 1 ;; esac
echo PASS
