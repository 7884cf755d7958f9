// `kes key create|import|info|ls|rm|encrypt|decrypt|dek` (spec cli.md §3.5).
#include <array>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "cli/connect.h"
#include "cli/format.h"
#include "cli/term.h"
#include "crypto/encoding.h"
#include "crypto/secret_bytes.h"

namespace kes::cli {
namespace {

using nlohmann::json;

const char* kKeyUsage =
    "Usage:\n"
    "    kes key <command>\n"
    "\n"
    "Commands:\n"
    "    create                   Create a new crypto key.\n"
    "    import                   Import a crypto key.\n"
    "    info                     Get information about a crypto key.\n"
    "    ls                       List crypto keys.\n"
    "    rm                       Delete a crypto key.\n"
    "\n"
    "    encrypt                  Encrypt a message.\n"
    "    decrypt                  Decrypt an encrypted message.\n"
    "    dek                      Generate a new data encryption key.\n"
    "\n"
    "    rotate                   Add a new version to crypto keys.\n"
    "    config                   Set the minimum decryption version of a crypto key.\n"
    "    rewrap                   Re-encrypt a ciphertext under a key's latest version.\n"
    "\n"
    "Options:\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Example:\n"
    "    $ kes key create my-key\n";

std::string SubUsage(const std::string& synopsis, const std::string& extra_options,
                     const std::string& example) {
  return "Usage:\n    " + synopsis + "\n\nOptions:\n" +
         "    -k, --insecure           Skip TLS certificate validation.\n" + extra_options +
         "    -h, --help               Print command line options.\n\nExample:\n    " + example +
         "\n";
}

// A client request failed: key sub-commands exit 1 silently on interrupt.
int FailKeyRequest(const Status& s, const std::string& prefix) {
  if (Interrupted().load()) return 1;
  return FailRequest(s, prefix);
}

struct Common {
  bool* insecure;
  std::string* enclave;
};

Common AddCommon(FlagSet& f) { return {f.Bool("insecure", 'k'), f.String("enclave", 'e')}; }

// Go's base64.StdEncoding, including its error text ("illegal base64 data at
// input byte N").
Result<std::vector<uint8_t>> DecodeArg(const std::string& text) {
  return crypto::Base64DecodeWithError(text);
}

// `kes key create` and `kes key rm`: one request per named key, stopping at
// the first failure ("failed to <verb> key "<name>": ...").
int ForEachKeyName(const Args& args, const std::string& cmd, const std::string& usage,
                   std::string_view verb, Status (client::Client::*op)(std::string_view)) {
  FlagSet f(usage);
  Common c = AddCommon(f);
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  if (f.args().empty()) return FailSee("no key name specified", cmd);
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  for (const auto& name : f.args()) {
    Status s = ((**client).*op)(name);
    if (!s.ok()) {
      return FailKeyRequest(s, "failed to " + std::string(verb) + " key " + GoQuote(name) + ": ");
    }
  }
  return 0;
}

int Create(const Args& args) {
  return ForEachKeyName(
      args, "kes key create",
      SubUsage("kes key create [options] <name>...", "", "$ kes key create my-key-1 my-key-2"),
      "create", &client::Client::CreateKey);
}

int Import(const Args& args) {
  const std::string cmd = "kes key import";
  FlagSet f(SubUsage("kes key import [options] <name> <key>", "",
                     "$ kes key import my-key-1 \"$(head -c 32 /dev/urandom | base64)\""));
  Common c = AddCommon(f);
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  const auto& a = f.args();
  if (a.empty()) return FailSee("no key name specified", cmd);
  if (a.size() == 1) return FailSee("no crypto key specified", cmd);
  if (a.size() > 2) return FailSee("too many arguments", cmd);
  auto key = DecodeArg(a[1]);
  if (!key.ok()) return FailSee("invalid key: " + key.status().message(), cmd);
  crypto::SecretBytes secret(*key);
  crypto::Zeroize(key->data(), key->size());
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  Status s = (*client)->ImportKey(a[0], secret.span(), "AES256");
  if (!s.ok()) return FailKeyRequest(s, "failed to import " + GoQuote(a[0]) + ": ");
  return 0;
}

// The `<name> <ciphertext> [<context>]` arguments of `kes key decrypt` and
// `kes key rewrap`; an exit code on a usage error.
struct CiphertextArgs {
  std::vector<uint8_t> ciphertext;
  std::vector<uint8_t> context;
};
std::optional<int> ParseCiphertextArgs(const std::vector<std::string>& a, const std::string& cmd,
                                       CiphertextArgs& out) {
  if (a.empty()) return FailSee("no key name specified", cmd);
  if (a.size() == 1) return FailSee("no ciphertext specified", cmd);
  if (a.size() > 3) return FailSee("too many arguments", cmd);
  auto ciphertext = DecodeArg(a[1]);
  if (!ciphertext.ok()) return FailSee("invalid ciphertext: " + ciphertext.status().message(), cmd);
  out.ciphertext = std::move(*ciphertext);
  if (a.size() == 3) {
    auto ctx = DecodeArg(a[2]);
    if (!ctx.ok()) return FailSee("invalid context: " + ctx.status().message(), cmd);
    out.context = std::move(*ctx);
  }
  return std::nullopt;
}

// `--version` of encrypt and dek (rotation.md §9): the key version to use.
constexpr const char* kVersionOption =
    "        --version <v>        Key version (default: latest).\n";

// The key version a server named (only rotated keys have one): an extra
// terminal line / JSON member, nothing otherwise (upstream's output).
std::string VersionLine(const std::string& version) {
  return version.empty() ? "" : "version:    " + version + "\n";
}
std::string VersionMember(const std::string& version) {
  return version.empty() ? "" : ",\"version\":" + json(version).dump();
}

// A version as the server sends it (rotation.md §6.4, §6.5).
json VersionJson(const client::KeyVersionInfo& v) {
  json j = {{"version", v.version}, {"algorithm", v.algorithm}, {"created_at", v.created_at}};
  if (!v.created_by.empty()) j["created_by"] = v.created_by;
  return j;
}

// One line per version under a header, columns padded to their widest cell.
std::string VersionTable(const client::KeyVersions& versions) {
  std::vector<std::array<std::string, 5>> rows = {
      {"Version", "Algorithm", "Date", "Owner", "State"}};
  for (const auto& v : versions.versions) {
    rows.push_back({v.version, v.algorithm, FormatDate(v.created_at, false), v.created_by,
                    v.enabled ? "enabled" : "disabled"});
  }
  std::array<size_t, 5> width{};
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

int Info(const Args& args) {
  const std::string cmd = "kes key info";
  FlagSet f(SubUsage("kes key info [options] <name>",
                     "        --json               Print key information in JSON format.\n"
                     "        --color <when>       Specify when to use colored output.\n",
                     "$ kes key info my-key"));
  Common c = AddCommon(f);
  const OutputFlags output = AddOutputFlags(f);
  if (auto rc = ParseFlags(f, args, cmd, output)) return *rc;
  if (f.args().empty()) return FailSee("no key name specified", cmd);
  if (f.args().size() > 1) return FailSee("too many arguments", cmd);
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  auto info = (*client)->DescribeKey(f.args()[0]);
  if (!info.ok()) return FailKeyRequest(info.status(), "failed to describe keys: ");
  // Rotated keys (kes-cpp): their versions, unless the identity may not
  // read them (403 leaves the upstream output).
  std::optional<client::KeyVersions> versions;
  if (!info->version.empty()) {
    auto v = (*client)->ListKeyVersions(f.args()[0]);
    if (v.ok()) {
      versions = std::move(*v);
    } else if (v.status().http_status() != 403) {
      return FailKeyRequest(v.status(), "failed to describe keys: ");
    }
  }
  if (*output.json) {
    json j = json::object();
    j["name"] = info->name;
    if (info->algorithm == "ChaCha20") j["algorithm"] = info->algorithm;  // AES256 omitted (sic)
    j["created_at"] = info->created_at;
    if (!info->created_by.empty()) j["created_by"] = info->created_by;
    if (!info->version.empty()) {
      j["version"] = info->version;
      j["min_decryption_version"] = info->min_decryption_version;
    }
    if (versions) {
      json list = json::array();
      for (const auto& v : versions->versions) {
        json e = VersionJson(v);
        e["enabled"] = v.enabled;
        list.push_back(std::move(e));
      }
      j["versions"] = std::move(list);
    }
    Out(j.dump() + "\n");
    return 0;
  }
  std::string out = "Name        " + info->name + "\n";
  if (!info->algorithm.empty()) out += "Algorithm   " + info->algorithm + "\n";
  out += "Date        " + FormatDate(info->created_at, false) + "\n";
  out += "Owner       " + info->created_by;  // no newline after the last line (upstream)
  if (!info->version.empty()) {
    out += "\nVersion     " + info->version + "\nMin Version " + info->min_decryption_version;
  }
  if (versions) out += "\n\n" + VersionTable(*versions);
  Out(out);
  return 0;
}

int Rotate(const Args& args) {
  const std::string cmd = "kes key rotate";
  FlagSet f(SubUsage("kes key rotate [options] <name>...",
                     "        --json               Print the new versions in JSON format.\n",
                     "$ kes key rotate my-key-1 my-key-2"));
  Common c = AddCommon(f);
  bool* as_json = f.Bool("json");
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  if (f.args().empty()) return FailSee("no key name specified", cmd);
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  for (const auto& name : f.args()) {
    auto r = (*client)->RotateKey(name);
    if (!r.ok()) return FailKeyRequest(r.status(), "failed to rotate key " + GoQuote(name) + ": ");
    if (IsTerminal() && !*as_json) {
      Out(name + "  version " + r->latest.version + "\n");
      continue;
    }
    json j = {{"name", r->name}};
    j.update(VersionJson(r->latest));
    Out(j.dump() + "\n");
  }
  return 0;
}

int Config(const Args& args) {
  const std::string cmd = "kes key config";
  FlagSet f(SubUsage("kes key config [options] --min-decryption-version <m> <name>",
                     "        --min-decryption-version <m>\n"
                     "                             Oldest key version that may decrypt.\n",
                     "$ kes key config --min-decryption-version 2 my-key"));
  Common c = AddCommon(f);
  std::string* minimum = f.String("min-decryption-version");
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  const auto& a = f.args();
  if (a.empty()) return FailSee("no key name specified", cmd);
  if (a.size() > 1) return FailSee("too many arguments", cmd);
  if (minimum->empty()) return FailSee("no minimum decryption version specified", cmd);
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  auto r = (*client)->ConfigureKey(a[0], *minimum);
  if (!r.ok()) return FailKeyRequest(r.status(), "failed to configure key " + GoQuote(a[0]) + ": ");
  if (IsTerminal()) {
    Out("min decryption version: " + r->min_decryption_version + "\n");
  } else {
    Out(json({{"name", r->name},
              {"latest_version", r->latest_version},
              {"min_decryption_version", r->min_decryption_version}})
            .dump());
  }
  return 0;
}

int Rewrap(const Args& args) {
  const std::string cmd = "kes key rewrap";
  FlagSet f(SubUsage("kes key rewrap [options] <name> <ciphertext> [<context>]",
                     "        --version <v>        Target key version (default: latest).\n",
                     "$ kes key rewrap my-key \"$CIPHERTEXT\""));
  Common c = AddCommon(f);
  std::string* version = f.String("version");
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  const auto& a = f.args();
  CiphertextArgs in;
  if (auto rc = ParseCiphertextArgs(a, cmd, in)) return *rc;
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  auto r = (*client)->Rewrap(a[0], in.ciphertext, in.context, *version);
  if (!r.ok()) return FailKeyRequest(r.status(), "failed to rewrap ciphertext: ");
  const std::string b64 = crypto::Base64Encode(r->ciphertext);
  if (IsTerminal()) {
    Out("\nciphertext: " + b64 + "\nversion:    " + r->version + "\n");
  } else {
    Out(json({{"ciphertext", b64}, {"version", r->version}}).dump());
  }
  return 0;
}

int List(const Args& args) {
  const std::string cmd = "kes key ls";
  FlagSet f(SubUsage("kes key ls [options] [<pattern>]",
                     "        --json               Print keys in JSON format.\n"
                     "        --color <when>       Specify when to use colored output.\n",
                     "$ kes key ls 'my-key*'"));
  Common c = AddCommon(f);
  const OutputFlags output = AddOutputFlags(f);
  if (auto rc = ParseFlags(f, args, cmd, output)) return *rc;
  if (f.args().size() > 1) return FailSee("too many arguments", cmd);
  std::string pattern = f.args().empty() ? "*" : f.args()[0];
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  std::string prefix = pattern == "*" ? "" : pattern;
  auto names = (*client)->ListKeys(prefix);
  if (!names.ok()) return FailKeyRequest(names.status(), "failed to list keys: ");
  PrintNames(*names, "Key", *output.json);
  return 0;
}

int Remove(const Args& args) {
  return ForEachKeyName(args, "kes key rm",
                        SubUsage("kes key rm [options] <name>...", "", "$ kes key rm my-key"),
                        "remove", &client::Client::DeleteKey);
}

int Encrypt(const Args& args) {
  const std::string cmd = "kes key encrypt";
  FlagSet f(SubUsage("kes key encrypt [options] <name> <message>", kVersionOption,
                     "$ kes key encrypt my-key \"Hello World\""));
  Common c = AddCommon(f);
  std::string* version = f.String("version");
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  const auto& a = f.args();
  if (a.empty()) return FailSee("no key name specified", cmd);
  if (a.size() == 1) return FailSee("no message specified", cmd);
  if (a.size() > 2) return FailSee("too many arguments", cmd);
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  std::span<const uint8_t> msg(reinterpret_cast<const uint8_t*>(a[1].data()), a[1].size());
  auto ct = (*client)->Encrypt(a[0], msg, {}, *version);
  if (!ct.ok()) return FailKeyRequest(ct.status(), "failed to encrypt message: ");
  std::string b64 = crypto::Base64Encode(ct->ciphertext);
  if (IsTerminal()) {
    Out("\nciphertext: " + b64 + "\n" + VersionLine(ct->version));
  } else {
    Out("{\"ciphertext\":\"" + b64 + "\"" + VersionMember(ct->version) + "}");
  }
  return 0;
}

int Decrypt(const Args& args) {
  const std::string cmd = "kes key decrypt";
  FlagSet f(SubUsage("kes key decrypt [options] <name> <ciphertext> [<context>]", "",
                     "$ kes key decrypt my-key \"$CIPHERTEXT\""));
  Common c = AddCommon(f);
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  const auto& a = f.args();
  CiphertextArgs in;
  if (auto rc = ParseCiphertextArgs(a, cmd, in)) return *rc;
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  auto pt = (*client)->Decrypt(a[0], in.ciphertext, in.context);
  if (!pt.ok()) return FailKeyRequest(pt.status(), "failed to decrypt ciphertext: ");
  std::string b64 = crypto::Base64Encode(pt->span());
  if (IsTerminal()) {
    Out("\nplaintext: " + b64 + "\n");
  } else {
    Out("{\"plaintext\":\"" + b64 + "\"}");
  }
  crypto::Zeroize(b64.data(), b64.size());
  return 0;
}

int Dek(const Args& args) {
  const std::string cmd = "kes key dek";
  FlagSet f(
      SubUsage("kes key dek [options] <name> [<context>]", kVersionOption, "$ kes key dek my-key"));
  Common c = AddCommon(f);
  std::string* version = f.String("version");
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  const auto& a = f.args();
  if (a.empty()) return FailSee("no key name specified", cmd);
  if (a.size() > 2) return FailSee("too many arguments", cmd);
  std::vector<uint8_t> context;
  if (a.size() == 2) {
    auto ctx = DecodeArg(a[1]);
    if (!ctx.ok()) return FailSee("invalid context: " + ctx.status().message(), cmd);
    context = std::move(*ctx);
  }
  auto client = Connect({*c.insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  auto dek = (*client)->GenerateKey(a[0], context, *version);
  if (!dek.ok()) return FailKeyRequest(dek.status(), "failed to derive key: ");
  std::string pt = crypto::Base64Encode(dek->plaintext.span());
  std::string ct = crypto::Base64Encode(dek->ciphertext);
  if (IsTerminal()) {
    Out("\nplaintext:  " + pt + "\nciphertext: " + ct + "\n" + VersionLine(dek->version));
  } else {
    Out("{\"plaintext\":\"" + pt + "\",\"ciphertext\":\"" + ct + "\"" +
        VersionMember(dek->version) + "}");
  }
  crypto::Zeroize(pt.data(), pt.size());
  return 0;
}

}  // namespace

int KeyCommand(const Args& args) {
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    Err(kKeyUsage);
    return 2;
  }
  Args rest(args.begin() + 1, args.end());
  const std::string& sub = args[0];
  if (sub == "create") return Create(rest);
  if (sub == "import") return Import(rest);
  if (sub == "info") return Info(rest);
  if (sub == "ls") return List(rest);
  if (sub == "rm") return Remove(rest);
  if (sub == "encrypt") return Encrypt(rest);
  if (sub == "decrypt") return Decrypt(rest);
  if (sub == "dek") return Dek(rest);
  if (sub == "rotate") return Rotate(rest);
  if (sub == "config") return Config(rest);
  if (sub == "rewrap") return Rewrap(rest);
  if (sub.starts_with("-")) {
    return FailSee("unknown flag: " + sub, "kes key");
  }
  return FailSee(GoQuote(sub) + " is not a key command", "kes key");
}

}  // namespace kes::cli
