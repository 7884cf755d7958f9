// JSON as Go's encoding/json writes and reads it (api.md §1.4, §1.5).
//
// Writing: a tiny append-only builder. Strings are escaped like Go
// (`<`, `>`, `&`, U+2028, U+2029 as \uXXXX; invalid UTF-8 as U+FFFD), byte
// arrays as padded base64. Reading: a lenient decoder for the flat request
// objects of the key API (case-insensitive field names, unknown fields
// ignored, last duplicate wins, null = absent, only the first JSON value
// read).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kes::server {

// Appends `s` as a quoted JSON string with Go's escaping.
void AppendJsonString(std::string& out, std::string_view s);

// Builds one JSON object or array into a caller-owned string.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // Object member name; the value follows with one of the calls below.
  JsonWriter& Key(std::string_view name);
  JsonWriter& String(std::string_view value);
  JsonWriter& Bytes(std::span<const uint8_t> value);  // base64 with padding
  JsonWriter& Int(int64_t value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  JsonWriter& Raw(std::string_view json);

 private:
  void Separate();
  std::string& out_;
  bool first_ = true;
};

// The string-or-null fields of one request object. Field names are matched
// case-insensitively (ASCII), as Go does for these names.
struct JsonFields {
  // `names`: the fields to extract. values[i] is the decoded string of
  // names[i] (nullopt if absent or null).
  std::vector<std::optional<std::string>> values;
};

// Decodes the first JSON value of `body` as Go's json.Decoder.Decode into a
// struct whose fields are all []byte/string would. Returns nullopt if the
// body is not decodable that way: empty input, a syntax error in the first
// value, a top-level value other than an object or null, or a listed field
// holding a non-string value.
std::optional<JsonFields> DecodeJsonFields(std::string_view body,
                                           std::span<const std::string_view> names);

// The same for a body that Go decodes into a []struct: a JSON array of such
// objects (null elements are all-absent ones; a top-level null is an empty
// list).
std::optional<std::vector<JsonFields>> DecodeJsonFieldsArray(
    std::string_view body, std::span<const std::string_view> names);

// Overwrites the decoded values (they may hold key material).
void WipeJsonFields(JsonFields& fields);

namespace detail {
// The same decoder with the JSON library only (DecodeJsonFields scans flat
// objects of plain strings itself first); for tests that compare the two.
std::optional<JsonFields> DecodeJsonFieldsWithLibrary(std::string_view body,
                                                      std::span<const std::string_view> names);
}  // namespace detail

}  // namespace kes::server
