// gdbstub/packet.hpp — the framing layer of the GDB Remote Serial Protocol (RSP): a pure parser of
// the bytes gdb sends and the framing of the stub's replies. No I/O, no target: gdbstub/session.hpp
// gives it bytes and acts on what it finds.
//
// Sources: the GDB manual, Appendix E "Remote Protocol": E.1 Overview (packets `$data#cs`, the
// checksum is the sum of the data bytes modulo 256 as two hex digits; `}` escapes `#`, `$`, `}`
// and `*` as the byte XOR 0x20; `*` introduces run-length encoding, which only replies use),
// E.11 Packet Acknowledgment (`+` / `-`, QStartNoAckMode), E.9 Interrupts (a lone 0x03 byte).
//
// [SECTION] Hostile input
//   The parser holds at most kMaxPacketBytes of packet data: a longer packet is consumed up to its
//   `#cs` and reported as kOverflow (the stub answers with an error), never stored. A `$` inside a
//   packet starts a new one (gdb's own resynchronisation); bytes outside a packet other than `$`,
//   `+`, `-` and 0x03 are ignored; a `*` in gdb's data is kept as an ordinary byte (gdb never
//   run-length encodes what it sends, so an expansion could only be an attack).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace trapscope::gdbstub {

// The largest packet data the stub accepts and advertises (qSupported PacketSize, hex): a `G` of
// the x86-64 layout is under 1.2 KiB, an `M` of this size writes 8 KiB at once.
inline constexpr size_t kMaxPacketBytes = 16384;

struct Input {
  enum class Kind : uint8_t {
    kPacket,       // a well-formed packet: `data` is its (unescaped) contents
    kBadChecksum,  // a packet whose checksum did not match: answer `-` (in ack mode)
    kOverflow,     // a packet longer than kMaxPacketBytes: answer an error
    kInterrupt,    // 0x03 outside a packet: stop the target
    kAck,          // `+`
    kNack,         // `-`: resend the last reply
  };
  Kind kind;
  std::string data;
};

class PacketParser {
 public:
  // Parses `bytes` and appends what they complete to `out` (a packet may span calls).
  void feed(std::span<const uint8_t> bytes, std::vector<Input>& out);
  void feed(std::string_view bytes, std::vector<Input>& out) {
    feed(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), out);
  }

 private:
  enum class State : uint8_t { kIdle, kData, kEscape, kCheck1, kCheck2 };
  State state_ = State::kIdle;
  std::string data_;
  uint8_t sum_ = 0;       // of the raw bytes between `$` and `#`
  uint8_t expected_ = 0;  // the checksum as received
  bool overflow_ = false;
  bool bad_digit_ = false;
};

// `$data#cs` with `#`, `$`, `}` and `*` escaped (E.1): every reply goes out through this.
std::string frame(std::string_view data);

// Hex helpers of the protocol: bytes as two lower-case digits each, and back (false on an odd
// length or a non-hex character).
std::string to_hex(std::span<const uint8_t> bytes);
std::string to_hex(std::string_view text);
bool from_hex(std::string_view hex, std::vector<uint8_t>* out);
// A hex number of at most 16 digits (false on an empty string, another character or overflow).
bool parse_hex_u64(std::string_view hex, uint64_t* out);

}  // namespace trapscope::gdbstub
