// `kes identity [KEY|FILE]`, `kes identity new|of|info|ls` (spec cli.md
// §3.4, historical `identity new` form of §6).
#include <openssl/x509.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/connect.h"
#include "cli/format.h"
#include "cli/term.h"
#include "crypto/secret_bytes.h"
#include "identity/api_key.h"
#include "identity/certificate.h"
#include "identity/identity.h"
#include "identity/pem.h"

namespace kes::cli {
namespace {

using nlohmann::json;

const char* kIdentityUsage =
    "Usage:\n"
    "    kes identity <command>\n"
    "    kes identity [<API-KEY> | <FILE>]\n"
    "\n"
    "Commands:\n"
    "    new                      Create a new KES identity.\n"
    "    of                       Compute a KES identity.\n"
    "    info                     Get information about a KES identity.\n"
    "    ls                       List KES identities.\n"
    "\n"
    "Options:\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Examples:\n"
    "    $ kes identity\n"
    "    $ kes identity kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw\n"
    "    $ kes identity private.key\n";

const char* kNewUsage =
    "Usage:\n"
    "    kes identity new [options] [<subject>]\n"
    "\n"
    "Options:\n"
    "    --key <PATH>             Path to private key. (default: none)\n"
    "    --cert <PATH>            Path to certificate. (default: none)\n"
    "    -f, --force              Overwrite an existing private key and/or certificate.\n"
    "\n"
    "    --ip <IP>                Add <IP> as subject alternative name. (SAN)\n"
    "    --dns <DOMAIN>           Add <DOMAIN> as subject alternative name. (SAN)\n"
    "    --expiry <DURATION>      Duration until the certificate expires. (default: 720h)\n"
    "    --encrypt                Encrypt the private key with a password.\n"
    "\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "    Without --key/--cert but with any of --ip, --dns, --expiry, --encrypt or\n"
    "    --force, the key pair is written to private.key and public.crt (the\n"
    "    historical form, e.g. for a server certificate).\n"
    "\n"
    "Examples:\n"
    "    $ kes identity new\n"
    "    $ kes identity new --key=client.key --cert=client.crt MyApp\n"
    "    $ kes identity new --ip \"127.0.0.1\" localhost\n";

const char* kOfUsage =
    "Usage:\n"
    "    kes identity of <API-KEY> | <CERTIFICATE>\n"
    "\n"
    "Options:\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Examples:\n"
    "    $ kes identity of kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw\n"
    "    $ kes identity of client.crt\n";

const char* kInfoUsage =
    "Usage:\n"
    "    kes identity info [options] [<identity>]\n"
    "\n"
    "Options:\n"
    "    -k, --insecure           Skip TLS certificate validation.\n"
    "        --json               Print identity information in JSON format.\n"
    "        --color <when>       Specify when to use colored output.\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Examples:\n"
    "    $ kes identity info\n"
    "    $ kes identity info 3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22\n";

const char* kLsUsage =
    "Usage:\n"
    "    kes identity ls [options] [<prefix>]\n"
    "\n"
    "Options:\n"
    "    -k, --insecure           Skip TLS certificate validation.\n"
    "        --json               Print identities in JSON format.\n"
    "        --color <when>       Specify when to use colored output.\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Examples:\n"
    "    $ kes identity ls\n";

void PrintIdentity(const std::string& id, bool from_api_key) {
  if (!IsTerminal()) {
    Out(id);
    return;
  }
  (void)from_api_key;
  Out(Frame("Identity:\n\n   " + Bold(id) +
            "\n\nAn identity is a fingerprint of your API key\nor certificate and can be shared "
            "securely."));
}

int GenerateAPIKey() {
  auto key = identity::APIKey::Generate();
  if (!key.ok()) return Fail(key.status().message());
  std::string text = key->String();
  if (!IsTerminal()) {
    Out(text);
    return 0;
  }
  Out(Frame("Your API key:\n\n   " + Bold(text) +
            "\n\nThis is the only time it is shown. Keep it secret and secure!\n\n"
            "Your API key's identity:\n\n   " +
            Bold(key->Identity()) +
            "\n\nThe identity is not a secret and can be shared securely.\n"
            "Peers need your identity in order to verify your API key.\n\n"
            "This identity can be re-computed again via:\n\n  $ kes identity " +
            text));
  crypto::Zeroize(text.data(), text.size());
  return 0;
}

// `kes identity <API-KEY | FILE>`.
int IdentityOfKeyOrFile(const std::string& arg) {
  if (auto key = identity::APIKey::Parse(arg); key.ok()) {
    PrintIdentity(key->Identity(), true);
    return 0;
  }
  auto text = identity::ReadFileToString(arg);
  if (!text.ok()) return Fail(text.status().message());
  std::string_view rest = *text;
  while (auto block = identity::DecodePemBlock(&rest)) {
    if (block->type == "CERTIFICATE") {
      auto id = identity::IdentityOfDer(block->bytes);
      if (!id.ok()) return Fail(id.status().message());
      PrintIdentity(*id, false);
      return 0;
    }
    if (block->type.find("PRIVATE KEY") != std::string::npos) {
      const unsigned char* p = block->bytes.data();
      PKCS8_PRIV_KEY_INFO* p8 =
          d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, static_cast<long>(block->bytes.size()));
      EVP_PKEY* pkey = p8 != nullptr ? EVP_PKCS82PKEY(p8) : nullptr;
      PKCS8_PRIV_KEY_INFO_free(p8);
      identity::PrivateKeyPtr owned(pkey);
      crypto::Zeroize(block->bytes.data(), block->bytes.size());
      if (pkey == nullptr || EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
        return Fail("'" + arg +
                    "' contains unsupported private key. Only ed25519 private keys are supported");
      }
      auto key = identity::APIKey::FromPrivateKey(pkey);
      if (!key.ok()) return Fail(key.status().message());
      std::string s = key->String();
      if (!IsTerminal()) {
        Out(s);
      } else {
        Out(Frame("Your API key:\n\n   " + Bold(s) + "\n\nIt corresponds to the private key in: " +
                  arg + ".\nKeep it secret and secure!"));
      }
      crypto::Zeroize(s.data(), s.size());
      return 0;
    }
  }
  return Fail("'" + arg + "' contains no valid PEM certificate or private key");
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

int New(const Args& args) {
  const std::string cmd = "kes identity new";
  FlagSet f(kNewUsage);
  std::string* key_path = f.String("key");
  std::string* cert_path = f.String("cert");
  std::vector<std::string>* ips = f.StringSlice("ip");
  std::vector<std::string>* dns = f.StringSlice("dns");
  std::string* expiry_text = f.String("expiry", 0, "0s");
  bool* encrypt = f.Bool("encrypt");
  bool* force = f.Bool("force", 'f');
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  for (const auto& ip : *ips) {
    if (!identity::ParseIpAddress(ip)) {
      // NOLINTBEGIN(performance-inefficient-string-concatenation): an error message, built once
      return FailSee(
          "invalid argument \"" + ip +
              "\" for \"--ip\" flag: invalid string being converted to IP address: " + ip,
          cmd);
      // NOLINTEND(performance-inefficient-string-concatenation)
    }
  }
  auto expiry = ParseDuration(*expiry_text);
  if (!expiry.ok()) {
    return FailSee("invalid argument \"" + *expiry_text +
                       "\" for \"--expiry\" flag: " + expiry.status().message(),
                   cmd);
  }
  if (f.args().size() > 1) return FailSee("too many arguments", cmd);
  if (!key_path->empty() && cert_path->empty()) {
    return Fail("private key file specified but no certificate file. Set the '--cert' flag");
  }
  if (key_path->empty() && !cert_path->empty()) {
    return Fail("certificate file specified but no private key file. Set the '--key' flag");
  }
  // Historical form (cli.md §6): certificate options without --key/--cert
  // write private.key / public.crt like releases up to v0.22.3 did.
  bool historical = false;
  if (key_path->empty() && cert_path->empty() &&
      (*encrypt || *force || expiry->count() > 0 || !ips->empty() || !dns->empty())) {
    historical = true;
    *key_path = "private.key";
    *cert_path = "public.crt";
  }
  std::string subject = f.args().empty() ? "" : f.args()[0];

  identity::NewIdentityOptions opts;
  opts.subject = subject;
  opts.dns_names = *dns;
  opts.ip_addresses = *ips;
  opts.expiry = std::chrono::duration_cast<std::chrono::seconds>(*expiry);
  auto id = identity::CreateNewIdentity(opts);
  if (!id.ok()) return Fail(id.status().message());

  const bool write_files = !key_path->empty();
  if (write_files) {
    if (!*force && Exists(*key_path)) {
      return Fail("private key already exists. Use --force to overwrite it");
    }
    if (!*force && Exists(*cert_path)) {
      return Fail("certificate already exists. Use --force to overwrite it");
    }
    std::string password;
    if (*encrypt) {
      auto pw = ReadPassword("Enter password for private key:");
      if (!pw.ok()) return Fail(pw.status().message());
      password = std::move(*pw);
      if (std::getenv("KES_CLIENT_KEY_PASSWORD") == nullptr) {
        auto confirm = ReadPassword("Confirm password for private key:");
        if (!confirm.ok()) return Fail(confirm.status().message());
        bool same = crypto::ConstantTimeEqual(password, *confirm);
        crypto::Zeroize(confirm->data(), confirm->size());
        if (!same) return Fail("passwords don't match");
      }
    }
    auto key_pem = identity::PrivateKeyToPem(id->api_key.private_key(), password);
    crypto::Zeroize(password.data(), password.size());
    if (!key_pem.ok()) return Fail("failed to create private key: " + key_pem.status().message());
    auto cert_pem = identity::CertificateToPem(id->certificate.get());
    if (!cert_pem.ok()) return Fail("failed to create certificate: " + cert_pem.status().message());
    Status s = identity::WriteIdentityFiles(*key_path, *key_pem, *cert_path, *cert_pem, *force);
    crypto::Zeroize(key_pem->data(), key_pem->size());
    if (!s.ok()) return Fail(s.message());
  }

  if (historical) {
    // The seed guide's output: only on a terminal.
    if (isatty(STDOUT_FILENO)) {
      Out("\n  Private key:  " + *key_path + "\n  Certificate:  " + *cert_path +
          "\n  Identity:     " + id->identity + "\n");
    }
    return 0;
  }
  std::string api_key = id->api_key.String();
  std::string out = "Your API key:\n\n   " + Bold(api_key) +
                    "\n\nThis is the only time it is shown. Keep it secret and secure!\n\n"
                    "Your Identity:\n\n   " +
                    Bold(id->identity) +
                    "\n\nThe identity is not a secret. It can be shared. Any peer\n"
                    "needs this identity in order to verify your API key.\n\n";
  if (write_files) {
    out += "The generated TLS private key is stored at: " + *key_path + "\n";
    out += "The generated TLS certificate is stored at: " + *cert_path + "\n\n";
  }
  out += "The identity can be computed again via:\n\n    kes identity of " + api_key + "\n";
  if (write_files) {
    out += "    kes identity of " + *cert_path + "\n";
  } else {
    out += "\n";
  }
  Out(out);
  crypto::Zeroize(api_key.data(), api_key.size());
  crypto::Zeroize(out.data(), out.size());
  return 0;
}

int Of(const Args& args) {
  const std::string cmd = "kes identity of";
  FlagSet f(kOfUsage);
  if (auto rc = ParseFlags(f, args, cmd)) return *rc;
  if (f.args().empty()) return FailSee("no API key or certificate specified", cmd);
  const std::string& arg = f.args()[0];
  std::string id;
  if (arg.starts_with("kes:v1:")) {
    auto key = identity::APIKey::Parse(arg);
    if (!key.ok()) return Fail(key.status().message());
    id = key->Identity();
  } else {
    auto text = identity::ReadFileToString(arg);
    if (!text.ok()) return Fail(text.status().message());
    auto certs = identity::ParseCertificatesPem(*text);
    if (!certs.ok()) {
      return Fail("failed to parse certificate in '" + arg + "': " + certs.status().message());
    }
    auto r = identity::IdentityOf((*certs)[0].get());
    if (!r.ok())
      return Fail("failed to parse certificate in '" + arg + "': " + r.status().message());
    id = *r;
  }
  if (IsTerminal()) {
    Out("Identity:\n\n   " + Bold(id) + "\n");
  } else {
    Out(id);
  }
  return 0;
}

std::string Label(const std::string& l) { return Bold(Faint(Pad(l, 11))) + " "; }

int Info(const Args& args) {
  const std::string cmd = "kes identity info";
  FlagSet f(kInfoUsage);
  bool* insecure = f.Bool("insecure", 'k');
  f.Bool("json");
  std::string* color = f.String("color", 0, "auto");
  f.String("enclave", 'e');
  if (auto rc = ParseFlags(f, args, "kes policy ls")) return *rc;  // sic (cli.md §3.4)
  if (Status s = SetColorMode(*color); !s.ok()) return FailSee(s.message(), "kes policy ls");
  if (f.args().size() > 1) return FailSee("too many arguments", cmd);
  auto client = Connect({*insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  std::string out;
  if (f.args().size() == 1) {
    auto info = (*client)->DescribeIdentity(f.args()[0]);
    if (!info.ok()) return FailRequest(info.status());
    out += Label("Identity") + Color(kBlue, f.args()[0]) + "\n";
    if (!info->policy.empty()) out += Label("Policy") + Color(kYellow, info->policy) + "\n";
    out += Label("Created At") + FormatDate(info->created_at, false) + "\n";
    out += Label("Role") + (info->is_admin ? "Admin" : "User") + "\n";
    if (!info->created_by.empty()) out += Label("Created By") + info->created_by + "\n";
    Out(out);
    return 0;
  }
  auto self = (*client)->DescribeSelf();
  if (!self.ok()) return FailRequest(self.status());
  out += Label("Identity") + Color(kBlue, self->info.identity) + "\n";
  out += Label("Created At") + FormatDate(self->info.created_at, false) + "\n";
  out += Label("Role") + (self->info.is_admin ? "Admin" : "User") + "\n";
  if (!self->info.created_by.empty()) out += Label("Created By") + self->info.created_by + "\n";
  if (self->policy) {
    out += "\n" + Label("Policy") + Color(kYellow, self->info.policy) + "\n";
    out += Label("Created At") + "0001-01-01 00:00:00\n";
    if (!self->policy->allow.empty()) {
      out += Bold(Faint("Allow")) + "\n";
      for (auto& p : self->policy->allow)
        out += std::string(12, ' ') + Color(kGreen, "·") + " " + p + "\n";
    }
    if (!self->policy->deny.empty()) {
      out += Bold(Faint("Deny")) + "\n";
      for (auto& p : self->policy->deny)
        out += std::string(12, ' ') + Color(kDenyRed, "·") + " " + p + "\n";
    }
  }
  Out(out);
  return 0;
}

int List(const Args& args) {
  const std::string cmd = "kes identity ls";
  FlagSet f(kLsUsage);
  bool* insecure = f.Bool("insecure", 'k');
  const OutputFlags output = AddOutputFlags(f);
  if (auto rc = ParseFlags(f, args, cmd, output)) return *rc;
  if (f.args().size() > 1) return FailSee("too many arguments", cmd);
  auto client = Connect({*insecure, {}, {}});
  if (!client.ok()) return Fail(client.status().message());
  std::string prefix = f.args().empty() ? "" : f.args()[0];
  if (prefix == "*") prefix.clear();
  auto ids = (*client)->ListIdentities(prefix);
  if (!ids.ok()) return FailRequest(ids.status());
  PrintNames(*ids, "Identity", *output.json);
  return 0;
}

}  // namespace

int IdentityCommand(const Args& args) {
  if (args.empty()) return GenerateAPIKey();
  const std::string& sub = args[0];
  Args rest(args.begin() + 1, args.end());
  if (sub == "-h" || sub == "--help") {
    Err(kIdentityUsage);
    return 2;
  }
  if (sub == "new") return New(rest);
  if (sub == "of") return Of(rest);
  if (sub == "info") return Info(rest);
  if (sub == "ls") return List(rest);
  if (args.size() > 1) return Fail("too many arguments");
  return IdentityOfKeyOrFile(sub);
}

}  // namespace kes::cli
