#include "snapshot/format.hpp"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "snapshot/bytes.hpp"
#include "snapshot/device_state.hpp"

namespace trapscope::snapshot {

FormatError::FormatError(uint64_t offset, std::string field, const std::string& what)
    : std::runtime_error("byte " + std::to_string(offset) + " (" + field + "): " + what),
      offset_(offset),
      field_(std::move(field)) {}

namespace {

constexpr uint32_t tag(const char (&t)[5]) {
  return uint32_t(uint8_t(t[0])) | uint32_t(uint8_t(t[1])) << 8 | uint32_t(uint8_t(t[2])) << 16 |
         uint32_t(uint8_t(t[3])) << 24;
}
std::string tag_text(uint32_t t) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>(t >> (8 * i));
    s += (c >= 0x20 && c < 0x7F) ? c : '?';
  }
  return s;
}

uint32_t crc_of(std::span<const uint8_t> b) {
  uLong crc = crc32(0, nullptr, 0);
  for (size_t at = 0; at < b.size(); at += 1u << 30) {
    const size_t n = std::min<size_t>(b.size() - at, 1u << 30);
    crc = crc32(crc, b.data() + at, static_cast<uInt>(n));
  }
  return static_cast<uint32_t>(crc);
}

constexpr uint32_t kMeta = tag("META"), kCpu = tag("CPU "), kFpu = tag("FPU "),
                   kEvents = tag("EVNT"), kDevices = tag("DEVS"), kMemory = tag("MEM "),
                   kEnd = tag("END ");
constexpr uint32_t kSectionRequired = 1;  // section flags bit 0: a reader must know it
constexpr uint32_t kSectionHeaderBytes = 16;

// The fields of x86::CpuState in file order, each as (name, reference): one list for the
// writer, the reader and docs/snapshots.md. `Seg` visits a segment, `Num` a number of N bytes.
template <class C, class Num, class Seg>
void cpu_fields(C& c, Num num, Seg seg) {
  static constexpr const char* kGpr[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                           "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  for (int i = 0; i < 16; ++i) num(kGpr[i], c.gpr[i]);
  num("rip", c.rip);
  num("rflags", c.rflags);
  static constexpr const char* kSeg[6] = {"es", "cs", "ss", "ds", "fs", "gs"};
  for (int i = 0; i < 6; ++i) seg(kSeg[i], c.seg[i]);
  seg("ldtr", c.ldtr);
  seg("tr", c.tr);
  num("gdtr.base", c.gdtr.base);
  num("gdtr.limit", c.gdtr.limit);
  num("idtr.base", c.idtr.base);
  num("idtr.limit", c.idtr.limit);
  num("cr0", c.cr0);
  num("cr2", c.cr2);
  num("cr3", c.cr3);
  num("cr4", c.cr4);
  num("cr8", c.cr8);
  static constexpr const char* kDr[8] = {"dr0", "dr1", "dr2", "dr3", "dr4", "dr5", "dr6", "dr7"};
  for (int i = 0; i < 8; ++i) num(kDr[i], c.dr[i]);
  num("efer", c.efer);
  num("star", c.star);
  num("lstar", c.lstar);
  num("cstar", c.cstar);
  num("fmask", c.fmask);
  num("kernel_gs_base", c.kernel_gs_base);
  num("tsc", c.tsc);
}

template <class S, class Num>
void segment_fields(S& s, Num num) {
  num("selector", s.selector);
  num("base", s.base);
  num("limit", s.limit);
  num("type", s.type);
  num("s", s.s);
  num("dpl", s.dpl);
  num("present", s.present);
  num("db", s.db);
  num("l", s.l);
  num("g", s.g);
  num("avl", s.avl);
  num("unusable", s.unusable);
}

template <class T>
void put(Writer& w, T v) {
  if constexpr (sizeof(T) == 1) w.u8(static_cast<uint8_t>(v));
  else if constexpr (sizeof(T) == 2) w.u16(static_cast<uint16_t>(v));
  else if constexpr (sizeof(T) == 4) w.u32(static_cast<uint32_t>(v));
  else w.u64(static_cast<uint64_t>(v));
}
template <class T>
void get(Reader& r, std::string_view name, T& v) {
  if constexpr (sizeof(T) == 1) v = static_cast<T>(r.u8(name));
  else if constexpr (sizeof(T) == 2) v = static_cast<T>(r.u16(name));
  else if constexpr (sizeof(T) == 4) v = static_cast<T>(r.u32(name));
  else v = static_cast<T>(r.u64(name));
}

void write_cpu(Writer& w, const x86::CpuState& c) {
  const auto num = [&](const char*, const auto& v) { put(w, v); };
  cpu_fields(c, num, [&](const char*, const x86::Segment& s) { segment_fields(s, num); });
}
void read_cpu(Reader& r, x86::CpuState* c) {
  const auto num = [&](const char* name, auto& v) { get(r, name, v); };
  cpu_fields(*c, num, [&](const char* seg, x86::Segment& s) {
    segment_fields(s, [&](const char* f, auto& v) { get(r, std::string(seg) + "." + f, v); });
  });
}

void write_fpu(Writer& w, const x86::FpuState& f) {
  w.u16(f.fcw);
  w.u16(f.fsw);
  w.u8(f.ftw);
  w.u16(f.last_opcode);
  w.u64(f.last_ip);
  w.u64(f.last_dp);
  w.u32(f.mxcsr);
  for (const auto& st : f.st) w.bytes(st);
  for (const auto& x : f.xmm) w.bytes(x);
}
void read_fpu(Reader& r, x86::FpuState* f) {
  f->fcw = r.u16("fcw");
  f->fsw = r.u16("fsw");
  f->ftw = r.u8("ftw");
  f->last_opcode = r.u16("last_opcode");
  f->last_ip = r.u64("last_ip");
  f->last_dp = r.u64("last_dp");
  f->mxcsr = r.u32("mxcsr");
  for (auto& st : f->st) std::memcpy(st, r.bytes("st", 16).data(), 16);
  for (auto& x : f->xmm) std::memcpy(x, r.bytes("xmm", 16).data(), 16);
}

void write_events(Writer& w, const x86::PendingEvents& e) {
  w.u8(e.exception_injected);
  w.u8(e.exception_pending);
  w.u8(e.exception_has_error_code);
  w.u8(e.exception_vector);
  w.u32(e.exception_error_code);
  w.u8(e.interrupt_injected);
  w.u8(e.interrupt_soft);
  w.u8(e.interrupt_vector);
  w.u8(e.interrupt_shadow);
  w.u8(e.nmi_injected);
  w.u8(e.nmi_pending);
  w.u8(e.nmi_masked);
}
void read_events(Reader& r, x86::PendingEvents* e) {
  e->exception_injected = r.flag("exception.injected");
  e->exception_pending = r.flag("exception.pending");
  e->exception_has_error_code = r.flag("exception.has_error_code");
  e->exception_vector = r.u8("exception.vector");
  e->exception_error_code = r.u32("exception.error_code");
  e->interrupt_injected = r.flag("interrupt.injected");
  e->interrupt_soft = r.flag("interrupt.soft");
  e->interrupt_vector = r.u8("interrupt.vector");
  e->interrupt_shadow = r.u8("interrupt.shadow");
  e->nmi_injected = r.flag("nmi.injected");
  e->nmi_pending = r.flag("nmi.pending");
  e->nmi_masked = r.flag("nmi.masked");
}

void write_devices(Writer& w, const platform::Devices::State& s) {
  const auto codecs = device_codecs();
  w.u32(static_cast<uint32_t>(codecs.size()));
  for (const DeviceCodec& c : codecs) {
    w.text(c.name);
    const size_t len_at = w.size();
    w.u64(0);
    c.save(s, w);
    w.patch_u64(len_at, w.size() - len_at - 8);
  }
}
void read_devices(Reader& r, platform::Devices::State* s) {
  const uint32_t n = r.u32("count");
  std::map<std::string, uint64_t> seen;
  for (uint32_t i = 0; i < n; ++i) {
    const uint64_t at = r.offset();
    const std::string name = r.text("record name");
    const uint64_t len = r.u64("record length");
    const uint64_t payload_at = r.offset();
    const auto payload = r.bytes("record " + name, len);
    const auto codecs = device_codecs();
    const auto c = std::find_if(codecs.begin(), codecs.end(),
                                [&](const DeviceCodec& d) { return name == d.name; });
    if (c == codecs.end()) {
      r.fail(at, "record name", "a device this build does not know: '" + name + "'");
    }
    if (!seen.emplace(name, at).second) r.fail(at, "record name", "'" + name + "' twice");
    Reader rec(payload, payload_at, "DEVS." + name + ".");
    c->load(rec, s);
    rec.expect_end("record");
  }
}

// MEM: memory_bytes u64, page_bytes u32, present u64, bitmap, zstd_len u64, zstd frame.
void write_memory(Writer& w, const MemoryImage& m) {
  const uint64_t pages = m.bytes / kPageBytes;
  w.u64(m.bytes);
  w.u32(static_cast<uint32_t>(kPageBytes));
  w.u64(m.pages.size());
  std::vector<uint8_t> bitmap((pages + 7) / 8, 0);
  for (const uint64_t p : m.pages) bitmap[p / 8] |= static_cast<uint8_t>(1u << (p % 8));
  w.bytes(bitmap);
  std::vector<uint8_t> z(ZSTD_compressBound(m.data.size()));
  const size_t n = ZSTD_compress(z.data(), z.size(), m.data.data(), m.data.size(), 3);
  if (ZSTD_isError(n)) {
    throw std::runtime_error(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
  }
  z.resize(n);
  w.u64(z.size());
  w.bytes(z);
}

void read_memory(Reader& r, MemoryImage* m, const ReadLimits& limits) {
  uint64_t at = r.offset();
  m->bytes = r.u64("memory_bytes");
  if (m->bytes == 0 || m->bytes % kPageBytes != 0 || m->bytes > limits.max_memory_bytes) {
    r.fail(at, "memory_bytes",
           std::to_string(m->bytes) + " is not a multiple of 4 KiB from 4 KiB to " +
               std::to_string(limits.max_memory_bytes >> 20) + " MiB");
  }
  at = r.offset();
  if (const uint32_t pb = r.u32("page_bytes"); pb != kPageBytes) {
    r.fail(at, "page_bytes", std::to_string(pb) + " (this version has 4096-byte pages only)");
  }
  const uint64_t pages = m->bytes / kPageBytes;
  at = r.offset();
  const uint64_t present = r.u64("present_pages");
  if (present > pages) {
    r.fail(at, "present_pages", std::to_string(present) + " > " + std::to_string(pages) + " pages");
  }
  at = r.offset();
  const auto bitmap = r.bytes("bitmap", (pages + 7) / 8);
  m->pages.clear();
  m->pages.reserve(present);
  for (uint64_t p = 0; p < pages; ++p) {
    if (bitmap[p / 8] >> (p % 8) & 1) m->pages.push_back(p);
  }
  if (m->pages.size() != present || (pages % 8 && bitmap.back() >> (pages % 8))) {
    r.fail(at, "bitmap", "marks " + std::to_string(m->pages.size()) +
                             " pages (or pages past the end); present_pages says " +
                             std::to_string(present));
  }
  const uint64_t z_len = r.u64("zstd_bytes");
  at = r.offset();
  const auto z = r.bytes("zstd frame", z_len);
  const uint64_t want = present * kPageBytes;
  const unsigned long long declared = ZSTD_getFrameContentSize(z.data(), z.size());
  if (declared != want) {
    r.fail(at, "zstd frame",
           declared == ZSTD_CONTENTSIZE_ERROR ? std::string("not a zstd frame")
                                              : "content size " + std::to_string(declared) +
                                                    ", expected " + std::to_string(want));
  }
  m->data.resize(want);
  const size_t n = ZSTD_decompress(m->data.data(), m->data.size(), z.data(), z.size());
  if (ZSTD_isError(n) || n != want) {
    r.fail(at, "zstd frame",
           ZSTD_isError(n) ? std::string(ZSTD_getErrorName(n)) : "decompressed to a wrong size");
  }
}

nlohmann::json meta_json(const Metadata& m) {
  return {{"format", "trapscope snapshot"},
          {"tool_version", m.tool_version},
          {"guest", m.guest},
          {"guest_sha256", m.guest_sha256},
          {"engine", m.engine},
          {"technique", m.technique},
          {"paging", m.paging},
          {"host", m.host},
          {"time", m.time},
          {"point", m.point},
          {"memory_bytes", m.memory_bytes},
          {"exits", m.exits},
          {"instructions", m.instructions},
          {"not_captured", m.not_captured}};
}

Metadata read_meta(Reader& r) {
  const uint64_t at = r.offset();
  const auto b = r.bytes("json", r.left());
  Metadata m;
  try {
    const auto j = nlohmann::json::parse(b.begin(), b.end());
    const auto str = [&](const char* k) { return j.at(k).get<std::string>(); };
    const auto num = [&](const char* k) { return j.at(k).get<uint64_t>(); };
    m.tool_version = str("tool_version");
    m.guest = str("guest");
    m.guest_sha256 = str("guest_sha256");
    m.engine = str("engine");
    m.technique = str("technique");
    m.paging = str("paging");
    m.host = str("host");
    m.time = str("time");
    m.point = str("point");
    m.memory_bytes = num("memory_bytes");
    m.exits = num("exits");
    m.instructions = num("instructions");
    m.not_captured = j.at("not_captured").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    r.fail(at, "json", e.what());
  }
  if (m.engine != "kvm" && m.engine != "sim") {
    r.fail(at, "json.engine", "'" + m.engine + "' (kvm or sim)");
  }
  return m;
}

void section(Writer& w, uint32_t t, uint32_t flags, const std::vector<uint8_t>& payload) {
  w.u32(t);
  w.u32(flags);
  w.u64(payload.size());
  w.bytes(payload);
}

}  // namespace

MemoryImage MemoryImage::from(std::span<const uint8_t> memory) {
  static const uint8_t kZero[kPageBytes] = {};
  MemoryImage m;
  m.bytes = memory.size();
  for (uint64_t off = 0; off + kPageBytes <= memory.size(); off += kPageBytes) {
    if (std::memcmp(memory.data() + off, kZero, kPageBytes) == 0) continue;
    m.pages.push_back(off / kPageBytes);
    m.data.insert(m.data.end(), memory.begin() + off, memory.begin() + off + kPageBytes);
  }
  return m;
}

void MemoryImage::copy_to(std::span<uint8_t> memory) const {
  size_t next = 0;
  for (uint64_t p = 0; p < memory.size() / kPageBytes; ++p) {
    uint8_t* dst = memory.data() + p * kPageBytes;
    if (next < pages.size() && pages[next] == p) {
      std::memcpy(dst, data.data() + next * kPageBytes, kPageBytes);
      ++next;
    } else {
      std::memset(dst, 0, kPageBytes);
    }
  }
}

std::vector<uint8_t> encode(const File& f) {
  std::vector<std::pair<uint32_t, std::vector<uint8_t>>> sections;
  const auto add = [&](uint32_t t, auto fill) {
    std::vector<uint8_t> p;
    Writer w(p);
    fill(w);
    sections.emplace_back(t, std::move(p));
  };
  add(kMeta, [&](Writer& w) {
    const std::string j = meta_json(f.meta).dump(2);
    w.bytes({reinterpret_cast<const uint8_t*>(j.data()), j.size()});
  });
  add(kCpu, [&](Writer& w) { write_cpu(w, f.state.registers); });
  if (f.state.fpu) add(kFpu, [&](Writer& w) { write_fpu(w, *f.state.fpu); });
  if (f.state.events) add(kEvents, [&](Writer& w) { write_events(w, *f.state.events); });
  add(kDevices, [&](Writer& w) { write_devices(w, f.state.devices); });
  add(kMemory, [&](Writer& w) { write_memory(w, f.memory); });

  std::vector<uint8_t> out(kMagic, kMagic + sizeof kMagic);
  Writer w(out);
  w.u16(kVersionMajor);
  w.u16(kVersionMinor);
  w.u32(kHeaderBytes);
  w.u32(static_cast<uint32_t>(sections.size() + 1));
  w.u32(0);  // flags
  const size_t size_at = w.size();
  w.u64(0);  // file size, patched below
  for (const auto& [t, p] : sections) section(w, t, kSectionRequired, p);
  w.u32(kEnd);
  w.u32(kSectionRequired);
  w.u64(4);
  w.patch_u64(size_at, out.size() + 4);
  w.u32(crc_of(out));
  return out;
}

File decode(std::span<const uint8_t> bytes, const ReadLimits& limits) {
  Reader h(bytes, 0, "header.");
  if (bytes.size() < sizeof kMagic ||
      std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw FormatError(0, "header.magic",
                      "not a trapscope snapshot (the file does not start with \"TRAPSNAP\")");
  }
  h.bytes("magic", sizeof kMagic);
  File f;
  const uint16_t major = h.u16("version_major");
  f.version_minor = h.u16("version_minor");
  if (major != kVersionMajor) {
    throw FormatError(8, "header.version_major",
                      "format version " + std::to_string(major) + "." +
                          std::to_string(f.version_minor) + "; this build reads version " +
                          std::to_string(kVersionMajor) + ".x only");
  }
  if (const uint32_t hb = h.u32("header_bytes"); hb != kHeaderBytes) {
    h.fail(12, "header_bytes", std::to_string(hb) + ", expected 32");
  }
  const uint32_t count = h.u32("section_count");
  h.u32("flags");
  const uint64_t size = h.u64("file_bytes");
  if (size != bytes.size()) {
    h.fail(24, "file_bytes",
           "the header says " + std::to_string(size) + " bytes, the file has " +
               std::to_string(bytes.size()) +
               (bytes.size() < size ? " (truncated)" : " (extra bytes at the end)"));
  }
  if (size < kHeaderBytes + kSectionHeaderBytes + 4) h.fail(24, "file_bytes", "too small");
  const uint32_t stored = static_cast<uint32_t>(bytes[size - 4]) |
                          static_cast<uint32_t>(bytes[size - 3]) << 8 |
                          static_cast<uint32_t>(bytes[size - 2]) << 16 |
                          static_cast<uint32_t>(bytes[size - 1]) << 24;
  const uint32_t crc = crc_of(bytes.first(size - 4));
  if (stored != crc) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "CRC-32 of bytes 0..%llu is %08x, the file says %08x (corrupted)",
                  static_cast<unsigned long long>(size - 5), crc, stored);
    throw FormatError(size - 4, "END .crc32", buf);
  }

  bool have_meta = false, have_cpu = false, have_devices = false, have_memory = false,
       have_end = false;
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t at = h.offset();
    if (have_end) h.fail(at, "section", "a section after END ");
    const uint32_t t = h.u32("section.tag");
    const uint32_t flags = h.u32("section.flags");
    const uint64_t len = h.u64("section.length");
    const uint64_t payload_at = h.offset();
    const auto payload = h.bytes("section " + tag_text(t), len);
    Reader r(payload, payload_at, tag_text(t) + ".");
    const auto once = [&](bool& have) {
      if (have) h.fail(at, "section.tag", "section " + tag_text(t) + " twice");
      have = true;
    };
    if (t == kMeta) {
      once(have_meta);
      f.meta = read_meta(r);
    } else if (t == kCpu) {
      once(have_cpu);
      read_cpu(r, &f.state.registers);
    } else if (t == kFpu) {
      if (f.state.fpu) h.fail(at, "section.tag", "section FPU  twice");
      read_fpu(r, &f.state.fpu.emplace());
    } else if (t == kEvents) {
      if (f.state.events) h.fail(at, "section.tag", "section EVNT twice");
      read_events(r, &f.state.events.emplace());
    } else if (t == kDevices) {
      once(have_devices);
      read_devices(r, &f.state.devices);
    } else if (t == kMemory) {
      once(have_memory);
      read_memory(r, &f.memory, limits);
    } else if (t == kEnd) {
      have_end = true;
      if (len != 4 || payload_at + 4 != size) {
        h.fail(at, "section.tag", "END  must be the last 4-byte section");
      }
      r.bytes("crc32", 4);
    } else if (flags & kSectionRequired) {
      h.fail(at, "section.tag", "a required section this version does not know: '" +
                                    tag_text(t) + "' (file version " + std::to_string(major) +
                                    "." + std::to_string(f.version_minor) + ")");
    } else {
      f.skipped_sections.push_back(tag_text(t));
      r.bytes("payload", len);
    }
    r.expect_end("section");
  }
  if (!have_end) h.fail(h.offset(), "section", "no END  section (section_count too small)");
  const char* missing = !have_meta ? "META" : !have_cpu ? "CPU " : !have_devices ? "DEVS"
                        : !have_memory ? "MEM " : nullptr;
  if (missing) h.fail(h.offset(), "section", std::string("required section ") + missing + " is missing");
  if (f.meta.memory_bytes != f.memory.bytes) {
    h.fail(0, "META.memory_bytes", std::to_string(f.meta.memory_bytes) + " but MEM  holds " +
                                       std::to_string(f.memory.bytes) + " bytes");
  }
  f.state.kind = f.meta.engine == "kvm" ? backend::Kind::kKvm : backend::Kind::kSim;
  f.state.instructions = f.meta.instructions;
  return f;
}

void write_file(const std::string& path, const File& file) {
  const std::vector<uint8_t> bytes = encode(file);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

File read_file(const std::string& path, const ReadLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  return decode(bytes, limits);
}

std::string describe(const File& f, uint64_t file_bytes) {
  const Metadata& m = f.meta;
  const x86::CpuState& c = f.state.registers;
  char buf[512];
  std::string t;
  std::snprintf(buf, sizeof buf,
                "trapscope snapshot, format %u.%u, %llu bytes\n"
                "guest:        %s (sha256 %s)\n"
                "taken on:     %s (%s), technique %s, paging %s, by trapscope %s at %s\n"
                "point:        %s: %llu VM exits, %llu instructions\n"
                "memory:       %llu MiB, %zu non-zero 4 KiB pages of %llu\n",
                kVersionMajor, f.version_minor, static_cast<unsigned long long>(file_bytes),
                m.guest.c_str(), m.guest_sha256.empty() ? "unknown" : m.guest_sha256.c_str(),
                m.engine.c_str(), m.host.c_str(), m.technique.c_str(), m.paging.c_str(),
                m.tool_version.c_str(), m.time.c_str(), m.point.c_str(),
                static_cast<unsigned long long>(m.exits),
                static_cast<unsigned long long>(m.instructions),
                static_cast<unsigned long long>(f.memory.bytes >> 20), f.memory.pages.size(),
                static_cast<unsigned long long>(f.memory.bytes / kPageBytes));
  t += buf;
  std::snprintf(buf, sizeof buf,
                "vCPU:         %s, CPL %u, rip=0x%llx rsp=0x%llx rflags=0x%llx\n"
                "              cr0=0x%llx cr3=0x%llx cr4=0x%llx efer=0x%llx\n",
                std::string(trace::to_string(c.mode())).c_str(), c.cpl(),
                static_cast<unsigned long long>(c.rip),
                static_cast<unsigned long long>(c.gpr[x86::kRsp]),
                static_cast<unsigned long long>(c.rflags), static_cast<unsigned long long>(c.cr0),
                static_cast<unsigned long long>(c.cr3), static_cast<unsigned long long>(c.cr4),
                static_cast<unsigned long long>(c.efer));
  t += buf;
  t += std::string("FPU/SSE:      ") + (f.state.fpu ? "present" : "absent (the simulator has none)") +
       "\npending:      " +
       (!f.state.events ? std::string("absent (the simulator has no event sources)")
        : f.state.events->any() ? "an event pending delivery (restores on KVM only)"
                                : "none") +
       "\n";
  const auto& d = f.state.devices;
  std::snprintf(buf, sizeof buf,
                "devices:      console %zu bytes, exit code %s, %zu MMIO writes logged\n",
                d.console.size(),
                d.exit_code ? std::to_string(*d.exit_code).c_str() : "none", d.mmio_writes.size());
  t += buf;
  t += "not captured: ";
  if (m.not_captured.empty()) t += "nothing\n";
  for (size_t i = 0; i < m.not_captured.size(); ++i) {
    t += (i ? "              " : "") + m.not_captured[i] + "\n";
  }
  for (const auto& s : f.skipped_sections) t += "skipped:      section '" + s + "' (newer format)\n";
  return t;
}

}  // namespace trapscope::snapshot
