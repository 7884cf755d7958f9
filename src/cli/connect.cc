#include "cli/connect.h"

#include <csignal>
#include <cstdlib>

#include "cli/term.h"
#include "crypto/secret_bytes.h"
#include "identity/api_key.h"
#include "identity/pem.h"

namespace kes::cli {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void OnInterrupt(int) { g_interrupted.store(true); }

}  // namespace

std::optional<std::string> LookupEnv(std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (const char* v = std::getenv(n); v != nullptr) return std::string(v);
  }
  return std::nullopt;
}

std::string EndpointEnv() {
  return LookupEnv({"MINIO_KES_SERVER", "KES_SERVER", "MINIO_KMS_KES_ENDPOINT"})
      .value_or("127.0.0.1:7373");
}

std::string APIKeyEnv() {
  return LookupEnv({"MINIO_KES_API_KEY", "KES_API_KEY", "MINIO_KMS_KES_API_KEY"}).value_or("");
}

Result<std::unique_ptr<client::Client>> Connect(const ConnectOptions& opts) {
  std::string api_key = opts.api_key ? *opts.api_key : APIKeyEnv();
  std::string key_file =
      LookupEnv({"MINIO_KES_KEY_FILE", "KES_CLIENT_KEY", "MINIO_KES_CLIENT_KEY"}).value_or("");
  std::string cert_file =
      LookupEnv({"MINIO_KES_CERT_FILE", "KES_CLIENT_CERT", "MINIO_KES_CLIENT_CERT"}).value_or("");

  if (api_key.empty() && key_file.empty() && cert_file.empty()) {
    return Status::Invalid("no API key specified. Consider setting MINIO_KES_API_KEY");
  }
  if (!api_key.empty() && !key_file.empty()) {
    return Status::Invalid("API key and private key file cannot be used at the same time");
  }
  if (!api_key.empty() && !cert_file.empty()) {
    return Status::Invalid("API key and certificate file cannot be used at the same time");
  }
  if (!key_file.empty() && cert_file.empty()) {
    return Status::Invalid("no certificate file specified. Consider setting MINIO_KES_CERT_FILE");
  }
  if (key_file.empty() && !cert_file.empty()) {
    return Status::Invalid("no private key file specified. Consider setting MINIO_KES_KEY_FILE");
  }

  client::Config config;
  config.endpoints = client::NormalizeEndpoints(opts.server ? *opts.server : EndpointEnv());
  config.insecure = opts.insecure;
  config.cancel = &g_interrupted;
  if (!api_key.empty()) {
    auto key = identity::APIKey::Parse(api_key);
    if (!key.ok()) return Status::Invalid("parsing API key: " + key.status().message());
    KES_ASSIGN_OR_RETURN(config.certificate, key->GenerateCertificate());
    EVP_PKEY_up_ref(key->private_key());
    config.private_key = identity::PrivateKeyPtr(key->private_key());
  } else {
    auto certs = identity::LoadCertificateFile(cert_file);
    if (!certs.ok()) {
      return Status::Invalid("reading certificate file: " + certs.status().message());
    }
    auto key_pem = identity::ReadFileToString(key_file);
    if (!key_pem.ok()) {
      return Status::Invalid("reading private key file: " + key_pem.status().message());
    }
    std::string password;
    const bool encrypted = identity::IsEncryptedPrivateKeyPem(*key_pem);
    if (encrypted) {
      auto pw = ReadPassword("Enter password for private key: ");
      if (!pw.ok()) return pw.status();
      password = std::move(*pw);
    }
    auto key = identity::ParsePrivateKeyPem(*key_pem, password);
    crypto::Zeroize(password.data(), password.size());
    crypto::Zeroize(key_pem->data(), key_pem->size());
    if (!key.ok()) {
      const std::string& m = key.status().message();
      if (m.find("password incorrect") != std::string::npos) {
        return Status::Invalid("incorrect password");
      }
      if (m.find("no PEM-encoded private key") != std::string::npos ||
          m.find("no valid PEM") != std::string::npos) {
        return Status::Invalid("failed to read TLS private key: no PEM-encoded private key found");
      }
      if (!encrypted) return Status::Invalid(m);
      return Status::Invalid("failed to decrypt private key: " + m);
    }
    KES_TRY(identity::CheckKeyMatchesCertificate(key->get(), (*certs)[0].get()));
    config.certificate = std::move((*certs)[0]);
    config.private_key = std::move(*key);
  }
  return client::Client::New(std::move(config));
}

const std::atomic<bool>& Interrupted() { return g_interrupted; }

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string TrustHint() {
  return "Hint: the server's certificate is not trusted. Trust it with "
         "SSL_CERT_FILE=<server certificate, e.g. public.crt> or skip verification with "
         "-k/--insecure";
}

int FailRequest(const Status& s, const std::string& prefix) {
  Fail(prefix + s.message());
  if (client::IsCertificateVerifyError(s)) Err(TrustHint() + "\n");
  return 1;
}

}  // namespace kes::cli
