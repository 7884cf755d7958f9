#include "yaml/decoder.h"

#include <cctype>
#include <cstdlib>
#include <regex>

namespace kes::yaml {
namespace {

constexpr std::string_view kCoreTagPrefix = "tag:yaml.org,2002:";

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Plain-scalar resolution of YAML 1.2's core schema as yaml.v3 applies it.
std::string ResolvePlain(const std::string& text) {
  static const std::regex kInt(
      "[-+]?[0-9][0-9_]*|[-+]?0x[0-9a-fA-F_]+|[-+]?0o[0-7_]+|[-+]?0b[01_]+");
  static const std::regex kFloat(
      "[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|"
      "NAN)");
  if (text == "true" || text == "True" || text == "TRUE" || text == "false" || text == "False" ||
      text == "FALSE") {
    return "!!bool";
  }
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return "!!null";
  }
  if (std::regex_match(text, kInt)) return "!!int";
  if (std::regex_match(text, kFloat)) return "!!float";
  return "!!str";
}

// yaml.v3 accepts YAML 1.1 boolean words when the target is a bool.
bool BoolWord(std::string_view s, bool* out) {
  for (std::string_view t :
       {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"}) {
    if (s == t) return *out = true, true;
  }
  for (std::string_view f :
       {"n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"}) {
    if (s == f) return *out = false, true;
  }
  return false;
}

}  // namespace

std::string YamlDecoder::ResolvedTag(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "!!map";
    case YAML::NodeType::Sequence:
      return "!!seq";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "!!null";
    case YAML::NodeType::Scalar:
      break;
  }
  const std::string& tag = node.Tag();
  if (tag == "!") return "!!str";  // quoted or block scalar
  if (tag.starts_with(kCoreTagPrefix)) return "!!" + tag.substr(kCoreTagPrefix.size());
  if (tag == "?" || tag.empty()) return ResolvePlain(node.Scalar());
  return tag;
}

void YamlDecoder::TypeError(const YAML::Node& node, std::string_view tag, std::string_view value,
                            std::string_view go_type) {
  std::string msg = "line " + std::to_string(Line(node)) + ": cannot unmarshal " + std::string(tag);
  if (tag != "!!map" && tag != "!!seq") {
    // yaml.v3 shortens long values in error messages.
    msg += value.size() > 10 ? " `" + std::string(value.substr(0, 7)) + "...`"
                             : " `" + std::string(value) + "`";
  }
  msg += " into " + std::string(go_type);
  type_errors_.push_back(std::move(msg));
}

std::string YamlDecoder::Expand(const YAML::Node& node, bool* from_env) {
  *from_env = false;
  const std::string& text = node.Scalar();
  const std::string_view v = TrimSpace(text);
  if (v.size() < 3 || !v.starts_with("${") || !v.ends_with("}")) return text;
  const std::string name(TrimSpace(v.substr(2, v.size() - 3)));
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || name.empty()) {
    throw DecodeAbort{"kesconf: referenced env. variable '" + name + "' in line '" +
                      std::to_string(Line(node)) + "' not found"};
  }
  *from_env = true;
  return value;
}

bool YamlDecoder::CheckDuplicates(const YAML::Node& node) {
  std::vector<std::pair<std::string, int>> keys;
  for (auto it = node.begin(); it != node.end(); ++it) {
    keys.emplace_back(it->first.IsScalar() ? it->first.Scalar() : std::string(), Line(it->first));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    bool dup = false;
    for (size_t j = i + 1; j < keys.size(); ++j) {
      if (keys[i].first != keys[j].first) continue;
      type_errors_.push_back("line " + std::to_string(keys[j].second) + ": mapping key \"" +
                             keys[i].first + "\" already defined at line " +
                             std::to_string(keys[i].second));
      dup = true;
    }
    if (dup) return false;
  }
  return true;
}

bool YamlDecoder::Mapping(const YAML::Node& node, std::string_view path, std::string_view go_type,
                          const std::vector<Field>& fields) {
  if (!node.IsDefined() || node.IsNull()) return false;
  if (!node.IsMap()) {
    TypeError(node, ResolvedTag(node), node.IsScalar() ? node.Scalar() : "", go_type);
    return false;
  }
  if (!CheckDuplicates(node)) return true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string();
    bool known = false;
    for (const Field& f : fields) {
      if (f.key == key) {
        f.decode(it->second);
        known = true;
        break;
      }
    }
    if (!known) {
      const std::string full = path.empty() ? key : std::string(path) + "." + key;
      warnings_.push_back("line " + std::to_string(Line(it->first)) + ": unknown config key '" +
                          full + "' ignored");
    }
  }
  return true;
}

bool YamlDecoder::FreeMapping(
    const YAML::Node& node, std::string_view go_type,
    const std::function<void(const std::string& key, const YAML::Node&)>& fn) {
  if (!node.IsDefined() || node.IsNull()) return false;
  if (!node.IsMap()) {
    TypeError(node, ResolvedTag(node), node.IsScalar() ? node.Scalar() : "", go_type);
    return false;
  }
  if (!CheckDuplicates(node)) return true;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      TypeError(it->first, ResolvedTag(it->first), "", "string");
      continue;
    }
    fn(it->first.Scalar(), it->second);
  }
  return true;
}

bool YamlDecoder::Sequence(const YAML::Node& node, std::string_view go_type,
                           const std::function<void(const YAML::Node&)>& fn) {
  if (!node.IsDefined() || node.IsNull()) return false;
  if (!node.IsSequence()) {
    TypeError(node, ResolvedTag(node), node.IsScalar() ? node.Scalar() : "", go_type);
    return false;
  }
  for (auto it = node.begin(); it != node.end(); ++it) fn(*it);
  return true;
}

void YamlDecoder::String(const YAML::Node& node, std::string* out, bool env) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsScalar()) {
    TypeError(node, ResolvedTag(node), "", "string");
    return;
  }
  bool from_env = false;
  *out = env ? Expand(node, &from_env) : node.Scalar();
}

void YamlDecoder::Duration(const YAML::Node& node, kes::Duration* out) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsScalar()) {
    TypeError(node, ResolvedTag(node), "", "time.Duration");
    return;
  }
  bool from_env = false;
  const std::string text = Expand(node, &from_env);
  // A substituted value is always a string; a bare integer in the file is
  // not (yaml.v3 refuses !!int for time.Duration).
  const std::string tag = from_env ? "!!str" : ResolvedTag(node);
  if (tag == "!!str") {
    if (auto d = ParseDuration(text); d.ok()) {
      *out = *d;
      return;
    }
  }
  TypeError(node, tag, text, "time.Duration");
}

void YamlDecoder::Bool(const YAML::Node& node, bool* out) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsScalar()) {
    TypeError(node, ResolvedTag(node), "", "bool");
    return;
  }
  bool from_env = false;
  const std::string text = Expand(node, &from_env);
  const std::string tag = from_env ? "!!str" : ResolvedTag(node);
  if ((tag == "!!str" || tag == "!!bool") && BoolWord(text, out)) return;
  TypeError(node, tag, text, "bool");
}

void YamlDecoder::StringList(const YAML::Node& node, std::vector<std::string>* out, bool env) {
  out->clear();
  Sequence(node, "[]string", [&](const YAML::Node& elem) {
    std::string s;
    String(elem, &s, env);
    out->push_back(std::move(s));
  });
}

Status YamlDecoder::TypeErrors() const {
  if (type_errors_.empty()) return Status::Ok();
  std::string msg = "yaml: unmarshal errors:";
  for (const std::string& e : type_errors_) msg += "\n  " + e;
  return Status::Invalid(std::move(msg));
}

}  // namespace kes::yaml
