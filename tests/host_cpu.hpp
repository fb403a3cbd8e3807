// tests/host_cpu.hpp — what a test that compares the simulator with this host's CPU may compare.
//
// Flags (and results) the SDM leaves undefined are compared only when this host is the CPU the
// simulator models (sim::host_is_model_cpu(), sim/interp/undefined.hpp). Elsewhere the tests
// mask sim::undefined_flags() of each instruction, skip snippets whose RESULT is undefined, and
// print undefined_flags_note() once per test process, so the output says what was not compared
// and why. Used by tests/test_sim_integer.cpp ("[diff]") and the random differential tester
// (tests/difftest/).
#pragma once

#include <string>
#include <utility>

#include "sim/interp/undefined.hpp"

namespace trapscope::test {

// True on the model CPU: compare undefined flags and results too.
inline bool compare_undefined() { return sim::host_is_model_cpu(); }

// "NOT COMPARED: …": this host, the model CPU and the masked flags per instruction (from
// sim::undefined_flags, so the text cannot drift from the masks). Empty on the model CPU.
inline std::string undefined_flags_note() {
  if (compare_undefined()) return "";
  auto names = [](uint64_t f) {
    std::string s;
    const std::pair<uint64_t, const char*> all[] = {{x86::kCF, "CF"}, {x86::kPF, "PF"}, {x86::kAF, "AF"},
                                                    {x86::kZF, "ZF"}, {x86::kSF, "SF"}, {x86::kOF, "OF"}};
    for (const auto& [bit, n] : all)
      if (f & bit) s += std::string(s.empty() ? "" : "|") + n;
    return s;
  };
  using x86::Op;
  const std::pair<Op, const char*> ops[] = {
      {Op::kAnd, "and/or/xor/test"}, {Op::kShl, "shl/shr"}, {Op::kSar, "sar"},
      {Op::kRol, "rol/ror/rcl/rcr"}, {Op::kShld, "shld/shrd"}, {Op::kMul, "mul/imul"},
      {Op::kDiv, "div/idiv"},       {Op::kBt, "bt/bts/btr/btc"}, {Op::kBsf, "bsf/bsr"}};
  std::string s = "NOT COMPARED: flags the SDM leaves undefined, because this host (" +
                  sim::cpu_name(sim::host_cpu()) + ") is not the CPU the simulator models (" +
                  sim::cpu_name(sim::model_cpu()) + ", " + std::string(sim::kModelCpuName) +
                  ": sim/interp/undefined.hpp); masked per instruction (the widest set):";
  for (const auto& [op, n] : ops) s += std::string(" ") + n + " " + names(sim::undefined_flags(op, 16));
  return s + "; snippets whose result is undefined are not run";
}

// undefined_flags_note() the first time it is called in this process, then "".
inline std::string undefined_flags_note_once() {
  static bool said = false;
  if (said) return "";
  said = true;
  return undefined_flags_note();
}

}  // namespace trapscope::test
