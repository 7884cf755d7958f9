#include "net/ca_bundle.h"

#include <dirent.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <vector>

#include "common/os.h"

namespace kes::net {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};

// Appends every certificate of `pem` to `out`, re-encoded; false if none.
bool AppendCertificates(const std::string& pem, std::string* out) {
  std::unique_ptr<BIO, BioFree> in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<BIO, BioFree> encoded(BIO_new(BIO_s_mem()));
  if (!in || !encoded) return false;
  int count = 0;
  while (std::unique_ptr<X509, X509Free> cert{
      PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr)}) {
    if (PEM_write_bio_X509(encoded.get(), cert.get()) != 1) break;
    ++count;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  char* data = nullptr;
  const long len = BIO_get_mem_data(encoded.get(), &data);
  if (count == 0 || len <= 0) return false;
  out->append(data, static_cast<size_t>(len));
  return true;
}

Status AppendFile(const std::string& file, std::string* out) {
  KES_ASSIGN_OR_RETURN(std::string pem, ReadWholeFile(file));
  if (!AppendCertificates(pem, out)) {
    return Status::Invalid("'" + file + "' does not contain a valid X.509 PEM-encoded certificate");
  }
  return Status::Ok();
}

Result<std::vector<std::string>> RegularFilesIn(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::Invalid(GoPathError("open", dir, errno));
  std::vector<std::string> files;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string full = dir + (dir.back() == '/' ? "" : "/") + name;
    struct stat st {};
    if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode)) files.push_back(std::move(full));
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

// The trust store OpenSSL (and so curl) uses by default; SSL_CERT_FILE wins.
void AppendSystemRoots(std::string* out) {
  const char* env = std::getenv(X509_get_default_cert_file_env());
  const std::string file = env != nullptr && *env != '\0' ? env : X509_get_default_cert_file();
  if (auto pem = ReadWholeFile(file); pem.ok()) AppendCertificates(*pem, out);
}

}  // namespace

Result<std::string> ReadCaBundle(const std::string& path, bool with_system_roots) {
  std::string bundle;
  if (with_system_roots) AppendSystemRoots(&bundle);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::Invalid(GoPathError("stat", path, errno));
  if (!S_ISDIR(st.st_mode)) {
    KES_TRY(AppendFile(path, &bundle));
    return bundle;
  }
  KES_ASSIGN_OR_RETURN(std::vector<std::string> files, RegularFilesIn(path));
  for (const std::string& file : files) KES_TRY(AppendFile(file, &bundle));
  return bundle;
}

}  // namespace kes::net
