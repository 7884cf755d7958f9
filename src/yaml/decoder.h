// YamlDecoder: decodes yaml-cpp nodes the way gopkg.in/yaml.v3 decodes into
// upstream's config structs (config.md §1-2): YAML 1.2 tag resolution for
// plain scalars, "${VAR}" whole-value expansion, type errors collected as
// "line N: cannot unmarshal ...", duplicate mapping keys rejected, unknown
// keys reported as warnings. Used by the config module and by
// each keystore backend for its own section.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/duration.h"
#include "common/status.h"

namespace kes::yaml {

// Aborts decoding (a missing environment variable). Caught by the loader;
// never leaves LoadConfigText.
struct DecodeAbort {
  std::string message;
};

class YamlDecoder {
 public:
  using FieldFn = std::function<void(const YAML::Node& value)>;
  struct Field {
    std::string_view key;
    FieldFn decode;
  };

  // Decodes a mapping into known fields, in document order. `path` names the
  // mapping in warnings ("tls.proxy"); `go_type` names it in type errors.
  // Returns true if `node` is a non-null mapping (the section is present).
  bool Mapping(const YAML::Node& node, std::string_view path, std::string_view go_type,
               const std::vector<Field>& fields);
  // Calls `fn(key, value)` for each entry of a mapping with free-form keys
  // (policy names, API paths). Keys are literal (no env expansion).
  bool FreeMapping(const YAML::Node& node, std::string_view go_type,
                   const std::function<void(const std::string& key, const YAML::Node&)>& fn);
  // Decodes a sequence element by element.
  bool Sequence(const YAML::Node& node, std::string_view go_type,
                const std::function<void(const YAML::Node&)>& fn);

  // Field decoders for the common cases: a string, a nested section.
  FieldFn Str(std::string* out) {
    return [this, out](const YAML::Node& n) { String(n, out); };
  }
  FieldFn Section(std::string path, std::string go_type, std::vector<Field> fields) {
    return [this, path = std::move(path), go_type = std::move(go_type),
            fields = std::move(fields)](const YAML::Node& n) { Mapping(n, path, go_type, fields); };
  }

  // Scalar fields. A null node leaves `out` unchanged (the zero value).
  void String(const YAML::Node& node, std::string* out, bool env = true);
  void Duration(const YAML::Node& node, kes::Duration* out);
  void Bool(const YAML::Node& node, bool* out);
  void StringList(const YAML::Node& node, std::vector<std::string>* out, bool env = true);

  // "yaml: unmarshal errors:\n  line N: ..." or OK.
  Status TypeErrors() const;
  std::vector<std::string> TakeWarnings() { return std::move(warnings_); }

  // YAML 1.2 core-schema tag of a node in yaml.v3's short form ("!!str").
  static std::string ResolvedTag(const YAML::Node& node);
  static int Line(const YAML::Node& node) { return node.Mark().line + 1; }

 private:
  void TypeError(const YAML::Node& node, std::string_view tag, std::string_view value,
                 std::string_view go_type);
  // The scalar's text, or the referenced variable's value (sets *from_env).
  std::string Expand(const YAML::Node& node, bool* from_env);
  // False (and a type error) if `node` has a repeated key.
  bool CheckDuplicates(const YAML::Node& node);

  std::vector<std::string> type_errors_;
  std::vector<std::string> warnings_;
};

}  // namespace kes::yaml
