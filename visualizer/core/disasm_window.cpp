#include "visualizer/core/disasm_window.hpp"

#include <algorithm>
#include <cstring>
#include <span>

#include "x86/disasm.hpp"

namespace trapscope::viz {
namespace {

// Decodes the instruction at window offset `off`; false if unreadable or invalid.
bool decode_at(const CodeWindow& w, size_t off, DisasmLine* line) {
  if (off >= w.bytes.size() || !w.readable[off]) return false;
  size_t avail = 0;
  while (off + avail < w.bytes.size() && avail < 15 && w.readable[off + avail]) ++avail;
  const std::span<const uint8_t> bytes(w.bytes.data() + off, avail);
  const x86::Disassembly d = x86::disassemble(bytes, w.mode, w.start + off);
  line->address = w.start + off;
  line->ok = d.ok;
  line->text = d.text;
  line->length = d.ok ? d.length : 1;
  std::memcpy(line->bytes, bytes.data(), std::min<size_t>(line->length, avail));
  if (d.ok) line->pg = classify_popek_goldberg(bytes.first(d.length), w.mode);
  return d.ok;
}

}  // namespace

std::vector<DisasmLine> disassemble_around(const CodeWindow& w, int before, int after) {
  std::vector<DisasmLine> out;
  if (!w.valid || w.rip < w.start || w.rip - w.start >= w.bytes.size()) return out;
  const size_t rip_off = static_cast<size_t>(w.rip - w.start);
  // Lines before RIP: the earliest start that decodes cleanly onto RIP.
  for (size_t s = 0; s < rip_off; ++s) {
    std::vector<DisasmLine> lines;
    size_t off = s;
    bool clean = true;
    while (off < rip_off) {
      DisasmLine l;
      if (!decode_at(w, off, &l)) {
        clean = false;
        break;
      }
      off += l.length;
      lines.push_back(std::move(l));
    }
    if (clean && off == rip_off) {
      const size_t keep = std::min<size_t>(lines.size(), static_cast<size_t>(std::max(before, 0)));
      out.assign(std::make_move_iterator(lines.end() - static_cast<ptrdiff_t>(keep)),
                 std::make_move_iterator(lines.end()));
      break;
    }
  }
  size_t off = rip_off;
  for (int i = 0; i <= after && off < w.bytes.size(); ++i) {
    DisasmLine l;
    const bool ok = decode_at(w, off, &l);
    if (!w.readable[off]) break;
    l.is_rip = off == rip_off;
    off += l.length;
    out.push_back(std::move(l));
    if (!ok && i > 0) break;
  }
  return out;
}

}  // namespace trapscope::viz
