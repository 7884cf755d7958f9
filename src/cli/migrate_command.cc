// `kes migrate` (spec cli.md §3.11): copies stored keys unchanged from the
// keystore of one config file to the keystore of another. Re-running it
// resumes: with --merge, keys already at the target are skipped.
#include <fnmatch.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "cli/commands.h"
#include "cli/connect.h"
#include "cli/term.h"
#include "config/config.h"
#include "crypto/secret_bytes.h"
#include "keystore/key_ring.h"

namespace kes::cli {
namespace {

const char* kUsage =
    "Usage:\n"
    "    kes migrate [options] --from <PATH> --to <PATH> [<pattern>]\n"
    "\n"
    "Options:\n"
    "    --from <PATH>            Path to the KES config file of the migration source.\n"
    "    --to <PATH>              Path to the KES config file of the migration target.\n"
    "    -f, --force              Overwrite existing keys at the migration target.\n"
    "        --merge              Skip keys that already exist at the migration target.\n"
    "    -s, --server <HOST:PORT> MinIO KMS server (not supported by this build).\n"
    "    -e, --enclave <NAME>     MinIO KMS enclave (not supported by this build).\n"
    "    -a, --api-key <KEY>      MinIO KMS API key (not supported by this build).\n"
    "    -k, --insecure           Skip TLS certificate validation.\n"
    "    -h, --help               Print command line options.\n"
    "\n"
    "Examples:\n"
    "    $ kes migrate --from vault-config.yml --to aws-config.yml\n"
    "    $ kes migrate --merge --from old.yml --to new.yml 'my-app-*'\n";

std::string Progress(uint64_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, n <= 1 ? "Migrated %6llu key  ...\n" : "Migrated %6llu keys ...\n",
                static_cast<unsigned long long>(n));
  return buf;
}

}  // namespace

int MigrateCommand(const Args& args) {
  FlagSet f(kUsage);
  std::string* from = f.String("from");
  std::string* to = f.String("to");
  std::string* server = f.String("server", 's', LookupEnv({"MINIO_KMS_SERVER"}).value_or(""));
  std::string* enclave = f.String("enclave", 'e', LookupEnv({"MINIO_KMS_ENCLAVE"}).value_or(""));
  std::string* api_key = f.String("api-key", 'a', LookupEnv({"MINIO_KMS_API_KEY"}).value_or(""));
  bool* insecure = f.Bool("insecure", 'k');
  bool* force = f.Bool("force", 'f');
  bool* merge = f.Bool("merge");
  if (auto rc = ParseFlags(f, args, "kes migrate")) return *rc;
  if (f.args().size() > 1) return Fail("too many arguments");
  if (from->empty()) return Fail("no source specified. Use '--from' flag");
  if (!to->empty()) {
    if (f.Changed("server")) return Fail("cannot use '-s / --server' and '--to' flag");
    if (f.Changed("enclave")) return Fail("cannot use '-e / --enclave' and '--to' flag");
    if (f.Changed("api-key")) return Fail("cannot use '-a / --api-key' and '--to' flag");
    if (*insecure) return Fail("cannot use '-k / --insecure' and '--to' flag");
  } else {
    if (server->empty()) return Fail("missing migration target. Use '--to' or '--server'");
    if (enclave->empty()) return Fail("no KMS enclave specified. Use '--enclave'");
    if (api_key->empty()) return Fail("no KMS API key specified. Use '--api-key'");
  }
  if (*force && *merge) return Fail("'--force' and '--merge' flags are mutually exclusive");
  if (to->empty()) {
    return Fail("migration to a MinIO KMS server is not supported by kes-cpp. Use '--to'");
  }
  const std::string pattern = f.args().empty() ? "*" : f.args()[0];

  auto src_config = config::LoadConfigFile(*from);
  if (!src_config.ok()) return Fail(src_config.status().message());
  auto dst_config = config::LoadConfigFile(*to);
  if (!dst_config.ok()) return Fail(dst_config.status().message());
  auto src = src_config->keystore->Connect();
  if (!src.ok()) return Fail(src.status().message());
  auto dst = dst_config->keystore->Connect();
  if (!dst.ok()) return Fail(dst.status().message());

  Out("Starting key migration:\n\n");
  uint64_t migrated = 0;
  auto last_report = std::chrono::steady_clock::now();
  // Every backend answers List with all names when the page size is <= 0.
  auto names = (*src)->List("", 0, kNoDeadline);
  if (!names.ok()) return Fail(names.status().message());
  for (const auto& name : names->names) {
    if (Interrupted().load()) return Fail("context canceled");
    // Internal entries of rotated keys (rotation.md §4.9) go with their key
    // and are not counted as keys.
    const std::optional<std::string_view> owner = keystore::InternalEntryOwner(name);
    const std::string matched(owner ? *owner : std::string_view(name));
    // A malformed pattern silently matches nothing (Go's filepath.Match).
    if (fnmatch(pattern.c_str(), matched.c_str(), 0) != 0) continue;
    auto value = (*src)->Get(name, kNoDeadline);
    if (!value.ok()) return Fail(value.status().message());
    Status s = (*dst)->Create(name, *value, kNoDeadline);
    if (s.code() == Code::kAlreadyExists) {
      if (*merge) {
        crypto::Zeroize(value->data(), value->size());
        continue;
      }
      if (*force) {
        s = (*dst)->Delete(name, kNoDeadline);
        if (s.ok()) s = (*dst)->Create(name, *value, kNoDeadline);
      }
    }
    crypto::Zeroize(value->data(), value->size());
    if (!s.ok()) return Fail(s.message());
    if (owner) continue;
    ++migrated;
    auto now = std::chrono::steady_clock::now();
    if (now - last_report >= std::chrono::seconds(1)) {
      Out(Progress(migrated));
      last_report = now;
    }
  }
  (*src)->Close();
  (*dst)->Close();
  if (migrated == 0) {
    Out("Migration succeeded! No keys migrated.\n");
  } else {
    char buf[64];
    std::snprintf(buf, sizeof buf, "Migrated %6llu keys successfully!\n",
                  static_cast<unsigned long long>(migrated));
    Out(buf);
  }
  return 0;
}

}  // namespace kes::cli
