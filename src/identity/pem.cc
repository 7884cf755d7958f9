#include "identity/pem.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/os.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"

namespace kes::identity {
namespace {

constexpr std::string_view kBegin = "-----BEGIN ";
constexpr std::string_view kEnd = "\n-----END ";
constexpr std::string_view kDashes = "-----";

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Go's pem getLine: the line up to '\n' without trailing " \t\r", and the rest.
std::pair<std::string_view, std::string_view> GetLine(std::string_view data) {
  const size_t i = data.find('\n');
  std::string_view line = i == std::string_view::npos ? data : data.substr(0, i);
  std::string_view rest = i == std::string_view::npos ? std::string_view() : data.substr(i + 1);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  return {line, rest};
}

bool IsPrivateKeyType(std::string_view type) {
  return type == "PRIVATE KEY" ||
         (type.size() > 12 && type.substr(type.size() - 12) == " PRIVATE KEY");
}

Result<CertificatePtr> ParseCertificateDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  CertificatePtr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) return Status::Invalid("x509: malformed certificate");
  if (p != der.data() + der.size()) return Status::Invalid("x509: trailing data");
  return cert;
}

// PKCS#8, PKCS#1 RSA or SEC 1 EC, whatever the block type says (as Go's
// tls.X509KeyPair does).
PrivateKeyPtr ParsePrivateKeyDer(std::span<const uint8_t> der) {
  const long len = static_cast<long>(der.size());
  {
    const unsigned char* p = der.data();
    PKCS8_PRIV_KEY_INFO* p8 = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, len);
    if (p8 != nullptr) {
      PrivateKeyPtr key(EVP_PKCS82PKEY(p8));
      PKCS8_PRIV_KEY_INFO_free(p8);
      if (key) return key;
    }
  }
  for (int type : {EVP_PKEY_RSA, EVP_PKEY_EC}) {
    const unsigned char* p = der.data();
    PrivateKeyPtr key(d2i_PrivateKey(type, nullptr, &p, len));
    if (key) return key;
  }
  return nullptr;
}

// RFC 1423 DEK-Info ciphers Go supports.
const EVP_CIPHER* LegacyCipher(std::string_view name) {
  if (name == "DES-CBC") return EVP_des_cbc();
  if (name == "DES-EDE3-CBC") return EVP_des_ede3_cbc();
  if (name == "AES-128-CBC") return EVP_aes_128_cbc();
  if (name == "AES-192-CBC") return EVP_aes_192_cbc();
  if (name == "AES-256-CBC") return EVP_aes_256_cbc();
  return nullptr;
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

// Decrypts a legacy encrypted block (Go's x509.DecryptPEMBlock).
Result<crypto::SecretBytes> DecryptLegacy(const PemBlock& block, std::string_view password) {
  const std::string* dek = block.Header("DEK-Info");
  if (dek == nullptr) return Status::Invalid("x509: no DEK-Info header in block");
  const size_t comma = dek->find(',');
  if (comma == std::string::npos) return Status::Invalid("x509: malformed DEK-Info header");
  const EVP_CIPHER* cipher = LegacyCipher(std::string_view(*dek).substr(0, comma));
  if (cipher == nullptr) return Status::Invalid("x509: unknown encryption mode");
  auto iv = crypto::HexDecode(std::string_view(*dek).substr(comma + 1));
  const int block_size = EVP_CIPHER_get_block_size(cipher);
  if (!iv || static_cast<int>(iv->size()) != block_size || iv->size() < 8) {
    return Status::Invalid("x509: incorrect IV size");
  }
  if (block.bytes.empty() || block.bytes.size() % block_size != 0) {
    return Status::Invalid("x509: encrypted PEM data is not a multiple of the block size");
  }
  crypto::SecretBytes key(static_cast<size_t>(EVP_CIPHER_get_key_length(cipher)));
  if (EVP_BytesToKey(cipher, EVP_md5(), iv->data(),
                     reinterpret_cast<const unsigned char*>(password.data()),
                     static_cast<int>(password.size()), 1, key.data(), nullptr) <= 0) {
    return Status::Internal("x509: key derivation failed");
  }
  crypto::SecretBytes out(block.bytes.size() + static_cast<size_t>(block_size));
  CipherCtx c;
  int len = 0, total = 0;
  // Padding is checked by hand below, like Go, to tell a wrong password apart.
  bool ok = c.ctx != nullptr &&
            EVP_DecryptInit_ex(c.ctx, cipher, nullptr, key.data(), iv->data()) == 1 &&
            EVP_CIPHER_CTX_set_padding(c.ctx, 0) == 1 &&
            EVP_DecryptUpdate(c.ctx, out.data(), &len, block.bytes.data(),
                              static_cast<int>(block.bytes.size())) == 1;
  total = len;
  ok = ok && EVP_DecryptFinal_ex(c.ctx, out.data() + total, &len) == 1;
  if (!ok) return Status::Internal("x509: decryption failed");
  total += len;
  const int pad = total > 0 ? out.data()[total - 1] : 0;
  if (pad == 0 || pad > block_size || pad > total) {
    return Status::Invalid("x509: decryption password incorrect");
  }
  for (int i = total - pad; i < total; ++i) {
    if (out.data()[i] != pad) return Status::Invalid("x509: decryption password incorrect");
  }
  crypto::SecretBytes plain(std::span<const uint8_t>(out.data(), static_cast<size_t>(total - pad)));
  return plain;
}

}  // namespace

const std::string* PemBlock::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

bool PemBlock::IsLegacyEncrypted() const {
  const std::string* proc = Header("Proc-Type");
  return proc != nullptr && proc->find("ENCRYPTED") != std::string::npos;
}

std::optional<PemBlock> DecodePemBlock(std::string_view* data) {
  std::string_view rest = *data;
  for (;;) {
    if (rest.substr(0, kBegin.size()) == kBegin) {
      rest.remove_prefix(kBegin.size());
    } else {
      const size_t i = rest.find("\n-----BEGIN ");
      if (i == std::string_view::npos) return std::nullopt;
      rest.remove_prefix(i + 1 + kBegin.size());
    }
    auto [type_line, after_type] = GetLine(rest);
    rest = after_type;
    if (type_line.size() < kDashes.size() ||
        type_line.substr(type_line.size() - kDashes.size()) != kDashes) {
      continue;
    }
    const std::string_view type = type_line.substr(0, type_line.size() - kDashes.size());

    PemBlock block;
    block.type = std::string(type);
    bool truncated = false;
    for (;;) {
      if (rest.empty()) {
        truncated = true;
        break;
      }
      auto [line, next] = GetLine(rest);
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) break;
      block.headers.emplace_back(std::string(TrimSpace(line.substr(0, colon))),
                                 std::string(TrimSpace(line.substr(colon + 1))));
      rest = next;
    }
    if (truncated) return std::nullopt;

    size_t end_index, trailer_index;
    if (block.headers.empty() && rest.substr(0, kEnd.size() - 1) == kEnd.substr(1)) {
      end_index = 0;
      trailer_index = kEnd.size() - 1;
    } else {
      end_index = rest.find(kEnd);
      if (end_index == std::string_view::npos) continue;
      trailer_index = end_index + kEnd.size();
    }
    std::string_view trailer = rest.substr(trailer_index);
    const size_t trailer_len = type.size() + kDashes.size();
    if (trailer.size() < trailer_len) continue;
    const std::string_view rest_of_line = trailer.substr(trailer_len);
    trailer = trailer.substr(0, trailer_len);
    if (trailer.substr(0, type.size()) != type || trailer.substr(type.size()) != kDashes) {
      continue;
    }
    if (!GetLine(rest_of_line).first.empty()) continue;

    std::string body;
    for (char c : rest.substr(0, end_index)) {
      if (c != ' ' && c != '\t') body += c;
    }
    auto bytes = crypto::Base64Decode(body);
    crypto::Zeroize(body.data(), body.size());
    if (!bytes) continue;
    block.bytes = std::move(*bytes);
    *data = GetLine(rest.substr(end_index + kEnd.size() - 1)).second;
    return block;
  }
}

std::string EncodePemBlock(const PemBlock& block) {
  std::string out = "-----BEGIN " + block.type + "-----\n";
  if (!block.headers.empty()) {
    if (const std::string* proc = block.Header("Proc-Type")) out += "Proc-Type: " + *proc + "\n";
    for (const auto& [k, v] : block.headers) {
      if (k == "Proc-Type") continue;
      out += k;
      out += ": ";
      out += v;
      out += '\n';
    }
    out += "\n";
  }
  std::string b64 = crypto::Base64Encode(block.bytes);
  for (size_t i = 0; i < b64.size(); i += 64) {
    out.append(b64, i, 64);
    out += '\n';
  }
  crypto::Zeroize(b64.data(), b64.size());
  out += "-----END " + block.type + "-----\n";
  return out;
}

Result<std::string> ReadFileToString(const std::string& path) { return ReadWholeFile(path); }

Result<std::vector<CertificatePtr>> ParseCertificatesPem(std::string_view text) {
  std::string_view rest = TrimSpace(text);
  std::vector<CertificatePtr> certs;
  while (!rest.empty()) {
    auto block = DecodePemBlock(&rest);
    if (!block) return Status::Invalid("https: no valid PEM data");
    if (block->type != "CERTIFICATE") return Status::Invalid("https: unsupported PEM data block");
    KES_ASSIGN_OR_RETURN(auto cert, ParseCertificateDer(block->bytes));
    certs.push_back(std::move(cert));
    rest = TrimSpace(rest);
  }
  if (certs.empty()) return Status::Invalid("https: no valid PEM data");
  return certs;
}

Result<std::vector<CertificatePtr>> LoadCertificateFile(const std::string& path) {
  KES_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseCertificatesPem(text);
}

namespace {

std::optional<PemBlock> FirstPrivateKeyBlock(std::string_view text) {
  std::string_view rest = TrimSpace(text);
  while (auto block = DecodePemBlock(&rest)) {
    if (IsPrivateKeyType(block->type)) return block;
    crypto::Zeroize(block->bytes.data(), block->bytes.size());
  }
  return std::nullopt;
}

}  // namespace

bool IsEncryptedPrivateKeyPem(std::string_view text) {
  auto block = FirstPrivateKeyBlock(text);
  if (!block) return false;
  const bool encrypted = block->IsLegacyEncrypted() || block->type == "ENCRYPTED PRIVATE KEY";
  crypto::Zeroize(block->bytes.data(), block->bytes.size());
  return encrypted;
}

Result<PrivateKeyPtr> ParsePrivateKeyPem(std::string_view text, std::string_view password) {
  auto block = FirstPrivateKeyBlock(text);
  if (!block) return Status::Invalid("no PEM-encoded private key found");
  struct Wipe {
    PemBlock& b;
    ~Wipe() { crypto::Zeroize(b.bytes.data(), b.bytes.size()); }
  } wipe{*block};

  if (block->type == "ENCRYPTED PRIVATE KEY") {
    if (password.empty())
      return Status::Invalid("https: private key is encrypted: password required");
    const unsigned char* p = block->bytes.data();
    X509_SIG* sig = d2i_X509_SIG(nullptr, &p, static_cast<long>(block->bytes.size()));
    if (sig == nullptr) return Status::Invalid("x509: malformed encrypted private key");
    PKCS8_PRIV_KEY_INFO* p8 =
        PKCS8_decrypt(sig, password.data(), static_cast<int>(password.size()));
    X509_SIG_free(sig);
    if (p8 == nullptr) return Status::Invalid("x509: decryption password incorrect");
    PrivateKeyPtr key(EVP_PKCS82PKEY(p8));
    PKCS8_PRIV_KEY_INFO_free(p8);
    if (!key) return Status::Invalid("tls: failed to parse private key");
    return key;
  }
  if (block->IsLegacyEncrypted()) {
    if (password.empty())
      return Status::Invalid("https: private key is encrypted: password required");
    KES_ASSIGN_OR_RETURN(crypto::SecretBytes der, DecryptLegacy(*block, password));
    PrivateKeyPtr key = ParsePrivateKeyDer(der.span());
    // Valid padding by chance with a wrong password leaves garbage DER.
    if (!key) return Status::Invalid("x509: decryption password incorrect");
    return key;
  }
  PrivateKeyPtr key = ParsePrivateKeyDer(block->bytes);
  if (!key) return Status::Invalid("tls: failed to parse private key");
  return key;
}

Result<PrivateKeyPtr> LoadPrivateKeyFile(const std::string& path, std::string_view password) {
  KES_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  auto key = ParsePrivateKeyPem(text, password);
  crypto::Zeroize(text.data(), text.size());
  return key;
}

Result<std::vector<CertificatePtr>> LoadCertificateAuthorities(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::Invalid(GoPathError("stat", path, errno));
  if (!S_ISDIR(st.st_mode)) return LoadCertificateFile(path);

  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return Status::Invalid(GoPathError("open", path, errno));
  std::vector<std::string> files;
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string full = path;
    if (full.back() != '/') full += '/';
    full += name;
    struct stat fst {};
    if (::stat(full.c_str(), &fst) == 0 && S_ISDIR(fst.st_mode)) continue;
    files.push_back(full);
  }
  ::closedir(dir);
  std::sort(files.begin(), files.end());  // deterministic order, like Go's ReadDir

  std::vector<CertificatePtr> all;
  for (const auto& file : files) {
    KES_ASSIGN_OR_RETURN(auto certs, LoadCertificateFile(file));
    for (auto& c : certs) all.push_back(std::move(c));
  }
  return all;
}

Status CheckKeyMatchesCertificate(EVP_PKEY* key, X509* cert) {
  if (key == nullptr || cert == nullptr || X509_check_private_key(cert, key) != 1) {
    return Status::Invalid("tls: private key does not match public key");
  }
  return Status::Ok();
}

Result<PemBlock> EncryptLegacyPemBlock(std::string_view type, std::span<const uint8_t> der,
                                       std::string_view password) {
  const EVP_CIPHER* cipher = EVP_aes_256_cbc();
  std::array<uint8_t, 16> iv;
  KES_TRY(crypto::RandomBytes(iv));
  crypto::SecretBytes key(32);
  if (EVP_BytesToKey(cipher, EVP_md5(), iv.data(),
                     reinterpret_cast<const unsigned char*>(password.data()),
                     static_cast<int>(password.size()), 1, key.data(), nullptr) <= 0) {
    return Status::Internal("x509: key derivation failed");
  }
  PemBlock block;
  block.type = std::string(type);
  block.bytes.resize(der.size() + 16);
  CipherCtx c;
  int len = 0, total = 0;
  bool ok = c.ctx != nullptr &&
            EVP_EncryptInit_ex(c.ctx, cipher, nullptr, key.data(), iv.data()) == 1 &&
            EVP_EncryptUpdate(c.ctx, block.bytes.data(), &len, der.data(),
                              static_cast<int>(der.size())) == 1;
  total = len;
  ok = ok && EVP_EncryptFinal_ex(c.ctx, block.bytes.data() + total, &len) == 1;
  if (!ok) return Status::Internal("x509: encryption failed");
  block.bytes.resize(static_cast<size_t>(total) + static_cast<size_t>(len));
  std::string iv_hex = crypto::HexEncode(iv);
  std::transform(iv_hex.begin(), iv_hex.end(), iv_hex.begin(), ::toupper);
  block.headers = {{"Proc-Type", "4,ENCRYPTED"}, {"DEK-Info", "AES-256-CBC," + iv_hex}};
  return block;
}

}  // namespace kes::identity
