#include "gdbstub/packet.hpp"

namespace trapscope::gdbstub {
namespace {

int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr char kDigits[] = "0123456789abcdef";

}  // namespace

void PacketParser::feed(std::span<const uint8_t> bytes, std::vector<Input>& out) {
  for (const uint8_t b : bytes) {
    switch (state_) {
      case State::kIdle:
        if (b == '$') {
          state_ = State::kData;
          data_.clear();
          sum_ = 0;
          overflow_ = false;
        } else if (b == 0x03) {
          out.push_back({Input::Kind::kInterrupt, {}});
        } else if (b == '+') {
          out.push_back({Input::Kind::kAck, {}});
        } else if (b == '-') {
          out.push_back({Input::Kind::kNack, {}});
        }
        break;  // anything else between packets is noise
      case State::kData:
      case State::kEscape:
        if (b == '$') {  // a new packet before this one ended: start again
          data_.clear();
          sum_ = 0;
          overflow_ = false;
          state_ = State::kData;
          break;
        }
        if (b == '#') {
          state_ = State::kCheck1;
          break;
        }
        sum_ = static_cast<uint8_t>(sum_ + b);
        if (state_ == State::kData && b == '}') {
          state_ = State::kEscape;
          break;
        }
        if (data_.size() >= kMaxPacketBytes) {
          overflow_ = true;
          data_.clear();
          data_.shrink_to_fit();
        }
        if (!overflow_) data_.push_back(static_cast<char>(state_ == State::kEscape ? b ^ 0x20 : b));
        state_ = State::kData;
        break;
      case State::kCheck1:
      case State::kCheck2: {
        const int d = hex_digit(b);
        if (state_ == State::kCheck1) {
          bad_digit_ = d < 0;
          expected_ = static_cast<uint8_t>((d < 0 ? 0 : d) << 4);
          state_ = State::kCheck2;
          break;
        }
        bad_digit_ = bad_digit_ || d < 0;
        expected_ = static_cast<uint8_t>(expected_ | (d < 0 ? 0 : d));
        state_ = State::kIdle;
        if (bad_digit_ || expected_ != sum_) {
          out.push_back({Input::Kind::kBadChecksum, {}});
        } else if (overflow_) {
          out.push_back({Input::Kind::kOverflow, {}});
        } else {
          out.push_back({Input::Kind::kPacket, std::move(data_)});
        }
        data_.clear();
        overflow_ = false;
        break;
      }
    }
  }
}

std::string frame(std::string_view data) {
  std::string out = "$";
  uint8_t sum = 0;
  auto put = [&](char c) {
    out.push_back(c);
    sum = static_cast<uint8_t>(sum + static_cast<uint8_t>(c));
  };
  for (const char c : data) {
    if (c == '#' || c == '$' || c == '}' || c == '*') {
      put('}');
      put(static_cast<char>(c ^ 0x20));
    } else {
      put(c);
    }
  }
  out.push_back('#');
  out.push_back(kDigits[sum >> 4]);
  out.push_back(kDigits[sum & 0xF]);
  return out;
}

std::string to_hex(std::span<const uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xF]);
  }
  return out;
}

std::string to_hex(std::string_view text) {
  return to_hex(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

bool from_hex(std::string_view hex, std::vector<uint8_t>* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  out->reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_digit(static_cast<uint8_t>(hex[i]));
    const int lo = hex_digit(static_cast<uint8_t>(hex[i + 1]));
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return true;
}

bool parse_hex_u64(std::string_view hex, uint64_t* out) {
  if (hex.empty() || hex.size() > 16) return false;
  uint64_t v = 0;
  for (const char c : hex) {
    const int d = hex_digit(static_cast<uint8_t>(c));
    if (d < 0) return false;
    v = v << 4 | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

}  // namespace trapscope::gdbstub
