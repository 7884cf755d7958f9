#include "server/json.h"

#include <array>
#include <charconv>
#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"

namespace kes::server {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void AppendUnicodeEscape(std::string& out, uint32_t cp) {
  out += "\\u";
  out += kHex[(cp >> 12) & 0xf];
  out += kHex[(cp >> 8) & 0xf];
  out += kHex[(cp >> 4) & 0xf];
  out += kHex[cp & 0xf];
}

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid.
size_t Utf8SequenceLength(std::string_view s, size_t i, uint32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[i + k]); };
  uint8_t c = b(0);
  size_t n;
  uint32_t v;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    n = 2;
    v = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    v = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    v = (v << 6) | (b(k) & 0x3f);
  }
  // Reject overlong forms, surrogates and values beyond U+10FFFF.
  if ((n == 2 && v < 0x80) || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000) ||
      (v >= 0xd800 && v <= 0xdfff) || v > 0x10ffff) {
    return 0;
  }
  *cp = v;
  return n;
}

// SAX consumer that records the string members we were asked for: of the
// top-level object, or (array mode, a Go []struct) of each object of the
// top-level array.
class FieldCollector : public nlohmann::json_sax<nlohmann::json> {
 public:
  FieldCollector(std::span<const std::string_view> names, JsonFields* out)
      : names_(names), out_(out) {
    out_->values.assign(names.size(), std::nullopt);
  }
  FieldCollector(std::span<const std::string_view> names, std::vector<JsonFields>* list)
      : names_(names), list_(list), member_depth_(2) {}

  bool null() override { return Scalar(Kind::kNull, nullptr); }
  bool boolean(bool) override { return Scalar(Kind::kOther, nullptr); }
  bool number_integer(number_integer_t) override { return Scalar(Kind::kOther, nullptr); }
  bool number_unsigned(number_unsigned_t) override { return Scalar(Kind::kOther, nullptr); }
  bool number_float(number_float_t, const string_t&) override {
    return Scalar(Kind::kOther, nullptr);
  }
  bool string(string_t& val) override { return Scalar(Kind::kString, &val); }
  bool binary(binary_t&) override { return Scalar(Kind::kOther, nullptr); }

  bool start_object(std::size_t) override {
    if (depth_ >= kMaxDepth) return TooDeep();
    if (depth_ == 0) {
      if (list_ != nullptr) type_error_ = true;  // Go: cannot unmarshal object into slice
    } else if (depth_ == 1 && list_ != nullptr) {
      NewElement();
    } else if (!ContainerValue()) {
      return false;
    }
    ++depth_;
    return true;
  }
  bool end_object() override {
    --depth_;
    if (depth_ == 0) done_ = true;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ >= kMaxDepth) return TooDeep();
    if (depth_ == 0) {
      if (list_ == nullptr) type_error_ = true;  // Go: cannot unmarshal array into struct
    } else if (depth_ == 1 && list_ != nullptr) {
      type_error_ = true;  // an array as an element of []struct
    } else if (!ContainerValue()) {
      return false;
    }
    ++depth_;
    return true;
  }
  bool end_array() override {
    --depth_;
    if (depth_ == 0) done_ = true;
    return true;
  }
  bool key(string_t& val) override {
    if (depth_ == member_depth_) {
      current_ = -1;
      for (size_t i = 0; i < names_.size(); ++i) {
        if (EqualFoldAscii(val, names_[i])) {
          current_ = static_cast<int>(i);
          break;
        }
      }
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    syntax_error_ = true;
    return false;
  }

  bool ok() const { return !syntax_error_ && !type_error_ && done_; }

 private:
  enum class Kind { kNull, kString, kOther };
  // Go's encoding/json scanner: "exceeded max depth" past 10000 levels.
  static constexpr int kMaxDepth = 10000;

  bool TooDeep() {
    syntax_error_ = true;
    return false;
  }

  void NewElement() {
    list_->emplace_back();
    out_ = &list_->back();
    out_->values.assign(names_.size(), std::nullopt);
    current_ = -1;
  }

  // A nested object/array as a member value: fine for unknown fields.
  bool ContainerValue() {
    if (depth_ == member_depth_ && current_ >= 0) type_error_ = true;
    return true;
  }

  bool Scalar(Kind kind, string_t* val) {
    if (depth_ == 0) {
      // A top-level scalar: null is a no-op for Go, anything else a type error.
      if (kind != Kind::kNull) type_error_ = true;
      done_ = true;
      return true;
    }
    if (depth_ == 1 && list_ != nullptr) {
      // An element of []struct: null is a zero element, anything else a type error.
      if (kind == Kind::kNull) {
        NewElement();
      } else {
        type_error_ = true;
      }
      return true;
    }
    if (depth_ == member_depth_ && current_ >= 0) {
      if (kind == Kind::kString) {
        out_->values[current_] = std::move(*val);
      } else if (kind == Kind::kNull) {
        // Go leaves the field unchanged on null; an earlier duplicate stays.
      } else {
        type_error_ = true;
      }
    }
    return true;
  }

  std::span<const std::string_view> names_;
  JsonFields* out_ = nullptr;
  std::vector<JsonFields>* list_ = nullptr;  // array mode
  int member_depth_ = 1;
  int depth_ = 0;
  int current_ = -1;
  bool syntax_error_ = false;
  bool type_error_ = false;
  bool done_ = false;
};

// Go's decoder neither skips a UTF-8 byte order mark, which the library does
// ("invalid character 'ï' looking for beginning of value"), nor reads past
// the first value (strict = false).
template <typename Out>
bool ParseLikeGo(std::string_view body, std::span<const std::string_view> names, Out* out) {
  if (body.starts_with("\xEF\xBB\xBF")) return false;
  FieldCollector sax(names, out);
  nlohmann::json::sax_parse(body.begin(), body.end(), &sax, nlohmann::json::input_format_t::json,
                            /*strict=*/false);
  return sax.ok();
}

}  // namespace

namespace {

// The shape of nearly every request body: one flat object whose members are
// all plain strings — printable ASCII without escapes, as base64 always is.
// Scanned without the library (which copies every token character twice and
// cost ~0.9 us per decrypt request); anything else returns false untouched,
// and the caller falls back to the full parser. Accepted inputs are valid
// JSON, so both paths agree on them (tests/unit/server_test.cc compares them).
bool DecodeFlatStringObject(std::string_view in, std::span<const std::string_view> names,
                            JsonFields* out) {
  size_t i = 0;
  const auto skip_ws = [&] {
    while (i < in.size() && (in[i] == ' ' || in[i] == '\t' || in[i] == '\n' || in[i] == '\r')) {
      ++i;
    }
  };
  // A string token of printable ASCII without '"' or '\\'.
  const auto plain_string = [&](std::string_view* token) {
    if (i >= in.size() || in[i] != '"') return false;
    const size_t start = ++i;
    while (i < in.size() && in[i] != '"') {
      const auto c = static_cast<unsigned char>(in[i]);
      if (c < 0x20 || c >= 0x7f || c == '\\') return false;
      ++i;
    }
    if (i >= in.size()) return false;
    *token = in.substr(start, i - start);
    ++i;  // the closing quote
    return true;
  };
  constexpr size_t kMaxNames = 8;  // request types name at most 3 fields
  if (names.size() > kMaxNames) return false;
  std::array<std::string_view, kMaxNames> found{};
  std::array<bool, kMaxNames> present{};
  skip_ws();
  if (i >= in.size() || in[i] != '{') return false;
  ++i;
  skip_ws();
  if (i < in.size() && in[i] == '}') {
    out->values.assign(names.size(), std::nullopt);
    return true;
  }
  for (;;) {
    std::string_view key, value;
    if (!plain_string(&key)) return false;
    skip_ws();
    if (i >= in.size() || in[i] != ':') return false;
    ++i;
    skip_ws();
    if (!plain_string(&value)) return false;
    for (size_t n = 0; n < names.size(); ++n) {
      if (EqualFoldAscii(key, names[n])) {  // the first matching name, as the SAX path
        found[n] = value;                   // a later duplicate wins
        present[n] = true;
        break;
      }
    }
    skip_ws();
    if (i < in.size() && in[i] == ',') {
      ++i;
      skip_ws();
      continue;
    }
    if (i < in.size() && in[i] == '}') break;
    return false;
  }
  out->values.assign(names.size(), std::nullopt);
  for (size_t n = 0; n < names.size(); ++n) {
    if (present[n]) out->values[n].emplace(found[n]);
  }
  return true;
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '<':
        case '>':
        case '&':
          AppendUnicodeEscape(out, c);
          break;
        default:
          if (c < 0x20) {
            AppendUnicodeEscape(out, c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t n = Utf8SequenceLength(s, i, &cp);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
    } else if (cp == 0x2028 || cp == 0x2029) {
      AppendUnicodeEscape(out, cp);
      i += n;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

void JsonWriter::Separate() {
  if (!first_) out_ += ',';
  first_ = false;
}

JsonWriter& JsonWriter::BeginObject() {
  Separate();
  out_ += '{';
  first_ = true;
  return *this;
}
JsonWriter& JsonWriter::EndObject() {
  out_ += '}';
  first_ = false;
  return *this;
}
JsonWriter& JsonWriter::BeginArray() {
  Separate();
  out_ += '[';
  first_ = true;
  return *this;
}
JsonWriter& JsonWriter::EndArray() {
  out_ += ']';
  first_ = false;
  return *this;
}
JsonWriter& JsonWriter::Key(std::string_view name) {
  Separate();
  AppendJsonString(out_, name);
  out_ += ':';
  first_ = true;  // the value must not add a comma
  return *this;
}
JsonWriter& JsonWriter::String(std::string_view value) {
  Separate();
  AppendJsonString(out_, value);
  return *this;
}
JsonWriter& JsonWriter::Bytes(std::span<const uint8_t> value) {
  Separate();
  out_ += '"';
  crypto::Base64Append(out_, value);
  out_ += '"';
  return *this;
}
JsonWriter& JsonWriter::Int(int64_t value) {
  Separate();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, r.ptr);
  return *this;
}
JsonWriter& JsonWriter::Bool(bool value) {
  Separate();
  out_ += value ? "true" : "false";
  return *this;
}
JsonWriter& JsonWriter::Null() {
  Separate();
  out_ += "null";
  return *this;
}
JsonWriter& JsonWriter::Raw(std::string_view json) {
  Separate();
  out_ += json;
  return *this;
}

std::optional<JsonFields> DecodeJsonFields(std::string_view body,
                                           std::span<const std::string_view> names) {
  JsonFields fields;
  if (DecodeFlatStringObject(body, names, &fields)) return fields;
  return detail::DecodeJsonFieldsWithLibrary(body, names);
}

std::optional<JsonFields> detail::DecodeJsonFieldsWithLibrary(
    std::string_view body, std::span<const std::string_view> names) {
  JsonFields fields;
  if (!ParseLikeGo(body, names, &fields)) return std::nullopt;
  return fields;
}

std::optional<std::vector<JsonFields>> DecodeJsonFieldsArray(
    std::string_view body, std::span<const std::string_view> names) {
  std::vector<JsonFields> list;
  if (!ParseLikeGo(body, names, &list)) {
    for (auto& f : list) WipeJsonFields(f);
    return std::nullopt;
  }
  return list;
}

void WipeJsonFields(JsonFields& fields) {
  for (auto& v : fields.values) {
    if (v) crypto::Zeroize(v->data(), v->size());
  }
}

}  // namespace kes::server
