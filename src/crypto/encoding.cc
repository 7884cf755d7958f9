#include "crypto/encoding.h"

#include <array>

#include "crypto/secret_bytes.h"

namespace kes::crypto {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr auto kDecode = MakeDecodeTable();

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void Base64Append(std::string& out, std::span<const uint8_t> bytes) {
  const size_t at = out.size();
  out.resize(at + (bytes.size() + 2) / 3 * 4);
  char* p = out.data() + at;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    *p++ = kAlphabet[v >> 18];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = kAlphabet[(v >> 6) & 63];
    *p++ = kAlphabet[v & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = bytes[i] << 16;
    *p++ = kAlphabet[v >> 18];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = '=';
    *p++ = '=';
  } else if (rest == 2) {
    const uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    *p++ = kAlphabet[v >> 18];
    *p++ = kAlphabet[(v >> 12) & 63];
    *p++ = kAlphabet[(v >> 6) & 63];
    *p++ = '=';
  }
}

std::string Base64Encode(std::span<const uint8_t> bytes) {
  std::string out;
  Base64Append(out, bytes);
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  return Base64Encode(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

// Mirrors Go's base64.StdEncoding.DecodeString: CR/LF are skipped anywhere,
// the input must be whole 4-character quanta with '=' padding only at the
// end, and non-zero bits in the last partial quantum are tolerated.
namespace {

// The common case in one pass: whole quanta, no CR/LF, padding only at the
// end. Returns false (and leaves `out` unspecified) on anything else, which
// the general decoder below then handles, error offsets included.
bool DecodeCanonical(std::string_view text, std::vector<uint8_t>& out) {
  if (text.size() % 4 != 0) return false;
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  out.resize(text.size() / 4 * 3 - pad);
  uint8_t* o = out.data();
  const auto* in = reinterpret_cast<const uint8_t*>(text.data());
  const size_t full = text.empty() ? 0 : text.size() / 4 - (pad > 0 ? 1 : 0);
  int8_t bad = 0;  // the sign bit collects any invalid character
  for (size_t q = 0; q < full; ++q, in += 4) {
    const int8_t a = kDecode[in[0]], b = kDecode[in[1]], c = kDecode[in[2]], d = kDecode[in[3]];
    bad = static_cast<int8_t>(bad | a | b | c | d);
    const uint32_t v = (uint32_t(uint8_t(a)) << 18) | (uint32_t(uint8_t(b)) << 12) |
                       (uint32_t(uint8_t(c)) << 6) | uint32_t(uint8_t(d));
    *o++ = static_cast<uint8_t>(v >> 16);
    *o++ = static_cast<uint8_t>(v >> 8);
    *o++ = static_cast<uint8_t>(v);
  }
  if (bad < 0) return false;
  if (pad > 0) {
    const int8_t a = kDecode[in[0]], b = kDecode[in[1]];
    const int8_t c = pad == 1 ? kDecode[in[2]] : 0;
    if ((a | b | c) < 0) return false;
    const uint32_t v =
        (uint32_t(uint8_t(a)) << 18) | (uint32_t(uint8_t(b)) << 12) | (uint32_t(uint8_t(c)) << 6);
    *o++ = static_cast<uint8_t>(v >> 16);
    if (pad == 1) *o++ = static_cast<uint8_t>(v >> 8);
  }
  return true;
}

}  // namespace

Result<std::vector<uint8_t>> Base64DecodeWithError(std::string_view text) {
  std::vector<uint8_t> fast;
  if (DecodeCanonical(text, fast)) return fast;
  Zeroize(fast.data(), fast.size());  // may hold part of a secret
  return detail::Base64DecodeGeneral(text);
}

Result<std::vector<uint8_t>> detail::Base64DecodeGeneral(std::string_view text) {
  auto corrupt = [](size_t at) {
    return Status::Invalid("illegal base64 data at input byte " + std::to_string(at));
  };
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  uint8_t quantum[4];
  size_t n = 0;       // characters collected in the current quantum
  size_t pad = 0;     // '=' seen in the current quantum
  size_t start = 0;   // offset of the current quantum's first character
  bool done = false;  // a padded quantum ended the data
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' || c == '\n') continue;
    if (done) return corrupt(i);
    if (n == 0) start = i;
    if (c == '=') {
      if (n < 2) return corrupt(i);
      ++pad;
      quantum[n++] = 0;
    } else {
      if (pad > 0) return corrupt(i);
      const int8_t v = kDecode[static_cast<uint8_t>(c)];
      if (v < 0) return corrupt(i);
      quantum[n++] = static_cast<uint8_t>(v);
    }
    if (n == 4) {
      const uint32_t v = (quantum[0] << 18) | (quantum[1] << 12) | (quantum[2] << 6) | quantum[3];
      out.push_back(static_cast<uint8_t>(v >> 16));
      if (pad < 2) out.push_back(static_cast<uint8_t>(v >> 8));
      if (pad < 1) out.push_back(static_cast<uint8_t>(v));
      if (pad > 0) done = true;
      n = 0;
    }
  }
  if (n != 0) return corrupt(pad > 0 ? text.size() : start);
  return out;
}

std::optional<std::vector<uint8_t>> Base64Decode(std::string_view text) {
  auto r = Base64DecodeWithError(text);
  if (!r.ok()) return std::nullopt;
  return std::move(r).value();
}

std::string HexEncode(std::span<const uint8_t> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::optional<std::vector<uint8_t>> HexDecode(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::vector<uint8_t> out;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = HexValue(text[i]), lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<uint8_t>(hi << 4 | lo));
  }
  return out;
}

}  // namespace kes::crypto
