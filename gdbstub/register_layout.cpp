#include "gdbstub/register_layout.hpp"

#include <array>
#include <cstring>

namespace trapscope::gdbstub {
namespace {

enum class Field : uint8_t { kGpr, kRip, kRflags, kSeg, kZero, kCr0, kCr2, kCr3, kCr4, kEfer };

struct RegDef {
  std::string name;
  uint16_t bits;
  std::string type;   // gdb's predefined types or a type defined in the document
  std::string group;  // "" = general
  Field field;
  uint8_t index;      // kGpr: x86::Gpr; kSeg: x86::SegReg
  std::string feature;
};

constexpr const char* kCore = "org.gnu.gdb.i386.core";
constexpr const char* kSse = "org.gnu.gdb.i386.sse";
constexpr const char* kSystem = "org.trapscope.x86.system";

std::vector<RegDef> make_defs(bool wide) {
  std::vector<RegDef> d;
  const uint16_t w = wide ? 64 : 32;
  using x86::Gpr;
  // gdb's order: 32-bit eax ecx edx ebx esp ebp esi edi; 64-bit rax rbx rcx rdx rsi rdi rbp rsp
  // r8 … r15 (G.5, i386 Features).
  const std::array<std::pair<const char*, Gpr>, 8> r32 = {{{"eax", x86::kRax}, {"ecx", x86::kRcx},
      {"edx", x86::kRdx}, {"ebx", x86::kRbx}, {"esp", x86::kRsp}, {"ebp", x86::kRbp},
      {"esi", x86::kRsi}, {"edi", x86::kRdi}}};
  const std::array<std::pair<const char*, Gpr>, 8> r64 = {{{"rax", x86::kRax}, {"rbx", x86::kRbx},
      {"rcx", x86::kRcx}, {"rdx", x86::kRdx}, {"rsi", x86::kRsi}, {"rdi", x86::kRdi},
      {"rbp", x86::kRbp}, {"rsp", x86::kRsp}}};
  for (const auto& [name, g] : wide ? r64 : r32) {
    const bool ptr = g == x86::kRsp || g == x86::kRbp;
    d.push_back({name, w, ptr ? "data_ptr" : (wide ? "int64" : "int32"), "", Field::kGpr,
                 static_cast<uint8_t>(g), kCore});
  }
  if (wide) {
    for (uint8_t i = 8; i < 16; ++i) {
      d.push_back({std::string("r") + std::to_string(i), 64, "int64", "", Field::kGpr, i, kCore});
    }
  }
  d.push_back({wide ? "rip" : "eip", w, "code_ptr", "", Field::kRip, 0, kCore});
  d.push_back({"eflags", 32, "i386_eflags", "", Field::kRflags, 0, kCore});
  const std::array<std::pair<const char*, x86::SegReg>, 6> segs = {{{"cs", x86::kCs},
      {"ss", x86::kSs}, {"ds", x86::kDs}, {"es", x86::kEs}, {"fs", x86::kFs}, {"gs", x86::kGs}}};
  for (const auto& [name, s] : segs) {
    d.push_back({name, 32, "int32", "", Field::kSeg, static_cast<uint8_t>(s), kCore});
  }
  for (int i = 0; i < 8; ++i) {
    d.push_back({std::string("st") + std::to_string(i), 80, "i387_ext", "float", Field::kZero, 0, kCore});
  }
  for (const char* n : {"fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop"}) {
    d.push_back({n, 32, "int", "float", Field::kZero, 0, kCore});
  }
  for (int i = 0; i < (wide ? 16 : 8); ++i) {
    d.push_back({std::string("xmm") + std::to_string(i), 128, "uint128", "vector", Field::kZero, 0, kSse});
  }
  d.push_back({"mxcsr", 32, "int", "vector", Field::kZero, 0, kSse});
  const std::array<std::pair<const char*, Field>, 5> sys = {{{"cr0", Field::kCr0},
      {"cr2", Field::kCr2}, {"cr3", Field::kCr3}, {"cr4", Field::kCr4}, {"efer", Field::kEfer}}};
  for (const auto& [name, f] : sys) d.push_back({name, 64, "uint64", "system", f, 0, kSystem});
  return d;
}

const std::vector<RegDef>& defs(Layout layout) {
  static const std::vector<RegDef> narrow = make_defs(false), wide = make_defs(true);
  return layout == Layout::kX86_64 ? wide : narrow;
}

// RFLAGS bits by name (SDM Vol. 1 3.4.3), as gdb's i386_eflags type shows them.
constexpr std::array<std::pair<const char*, int>, 17> kFlags = {{{"CF", 0}, {"", 1}, {"PF", 2},
    {"AF", 4}, {"ZF", 6}, {"SF", 7}, {"TF", 8}, {"IF", 9}, {"DF", 10}, {"OF", 11}, {"NT", 14},
    {"RF", 16}, {"VM", 17}, {"AC", 18}, {"VIF", 19}, {"VIP", 20}, {"ID", 21}}};

std::string make_xml(Layout layout) {
  std::string x = "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target>\n";
  x += "<architecture>" + std::string(architecture_name(layout)) + "</architecture>\n";
  std::string feature;
  for (const RegDef& r : defs(layout)) {
    if (r.feature != feature) {
      if (!feature.empty()) x += "</feature>\n";
      feature = r.feature;
      x += "<feature name=\"" + feature + "\">\n";
      if (feature == kCore) {
        x += "<flags id=\"i386_eflags\" size=\"4\">\n";
        for (const auto& [name, bit] : kFlags) {
          x += "  <field name=\"" + std::string(name) + "\" start=\"" + std::to_string(bit) +
               "\" end=\"" + std::to_string(bit) + "\"/>\n";
        }
        x += "</flags>\n";
      }
    }
    x += "<reg name=\"" + r.name + "\" bitsize=\"" + std::to_string(r.bits) + "\" type=\"" +
         r.type + "\"";
    if (!r.group.empty()) x += " group=\"" + r.group + "\"";
    x += "/>\n";
  }
  x += "</feature>\n</target>\n";
  return x;
}

uint64_t get(const RegDef& r, const x86::CpuState& s) {
  switch (r.field) {
    case Field::kGpr: return s.gpr[r.index];
    case Field::kRip: return s.rip;
    case Field::kRflags: return s.rflags;
    case Field::kSeg: return s.seg[r.index].selector;
    case Field::kZero: return 0;
    case Field::kCr0: return s.cr0;
    case Field::kCr2: return s.cr2;
    case Field::kCr3: return s.cr3;
    case Field::kCr4: return s.cr4;
    case Field::kEfer: return s.efer;
  }
  return 0;
}

void put(const RegDef& r, x86::CpuState* s, uint64_t v) {
  auto low = [&](uint64_t old) {
    return r.bits >= 64 ? v : (old & ~((1ull << r.bits) - 1)) | (v & ((1ull << r.bits) - 1));
  };
  switch (r.field) {
    case Field::kGpr: s->gpr[r.index] = low(s->gpr[r.index]); break;
    case Field::kRip: s->rip = low(s->rip); break;
    case Field::kRflags: s->rflags = (v & 0xFFFFFFFFull) | 0x2; break;  // bit 1 is always 1
    case Field::kSeg: {
      x86::Segment& sg = s->seg[r.index];
      sg.selector = static_cast<uint16_t>(v);
      if (!(s->cr0 & x86::kCr0Pe) || (s->rflags & x86::kVM)) sg.base = uint64_t{sg.selector} << 4;
      break;
    }
    case Field::kZero: break;
    case Field::kCr0: s->cr0 = v; break;
    case Field::kCr2: s->cr2 = v; break;
    case Field::kCr3: s->cr3 = v; break;
    case Field::kCr4: s->cr4 = v; break;
    case Field::kEfer: s->efer = v; break;
  }
}

}  // namespace

Layout layout_for(const x86::CpuState& s) {
  if (s.code64()) return Layout::kX86_64;
  if (!(s.cr0 & x86::kCr0Pe) || (s.rflags & x86::kVM)) return Layout::kI8086;
  return Layout::kI386;
}

std::string_view architecture_name(Layout layout) {
  switch (layout) {
    case Layout::kI8086: return "i8086";
    case Layout::kI386: return "i386";
    case Layout::kX86_64: return "i386:x86-64";
  }
  return "i386";
}

const std::string& target_xml(Layout layout) {
  static const std::string xml[3] = {make_xml(Layout::kI8086), make_xml(Layout::kI386),
                                     make_xml(Layout::kX86_64)};
  return xml[static_cast<int>(layout)];
}

size_t register_count(Layout layout) { return defs(layout).size(); }

std::string_view register_name(Layout layout, size_t n) {
  return n < defs(layout).size() ? std::string_view(defs(layout)[n].name) : std::string_view();
}

size_t register_bytes(Layout layout, size_t n) {
  return n < defs(layout).size() ? defs(layout)[n].bits / 8 : 0;
}

size_t pc_register(Layout layout) { return layout == Layout::kX86_64 ? 16 : 8; }

std::vector<uint8_t> read_one(Layout layout, const x86::CpuState& s, size_t n) {
  if (n >= defs(layout).size()) return {};
  const RegDef& r = defs(layout)[n];
  std::vector<uint8_t> out(r.bits / 8, 0);
  const uint64_t v = get(r, s);
  for (size_t i = 0; i < out.size() && i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
  return out;
}

std::vector<uint8_t> read_all(Layout layout, const x86::CpuState& s) {
  std::vector<uint8_t> out;
  for (size_t n = 0; n < defs(layout).size(); ++n) {
    const auto one = read_one(layout, s, n);
    out.insert(out.end(), one.begin(), one.end());
  }
  return out;
}

bool write_one(Layout layout, x86::CpuState* s, size_t n, std::span<const uint8_t> bytes) {
  if (n >= defs(layout).size()) return false;
  const RegDef& r = defs(layout)[n];
  if (bytes.size() != r.bits / 8u) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < bytes.size() && i < 8; ++i) v |= uint64_t{bytes[i]} << (8 * i);
  put(r, s, v);
  return true;
}

bool write_all(Layout layout, x86::CpuState* s, std::span<const uint8_t> bytes) {
  size_t total = 0;
  for (const RegDef& r : defs(layout)) total += r.bits / 8;
  if (bytes.size() != total) return false;
  x86::CpuState next = *s;
  size_t at = 0;
  for (size_t n = 0; n < defs(layout).size(); ++n) {
    const size_t len = defs(layout)[n].bits / 8;
    // Only registers whose value changes are written, so that a `G` that echoes a `g` changes
    // nothing (not even a real-mode segment base that differs from selector × 16).
    if (read_one(layout, *s, n) != std::vector<uint8_t>(bytes.begin() + at, bytes.begin() + at + len)) {
      write_one(layout, &next, n, bytes.subspan(at, len));
    }
    at += len;
  }
  *s = next;
  return true;
}

}  // namespace trapscope::gdbstub
