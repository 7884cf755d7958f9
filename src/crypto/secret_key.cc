// SHA256_Init/Update/Final are deprecated in OpenSSL 3 but remain the only
// API that resumes a hash from a saved chaining value (see HmacWithStates).
// Defined before any OpenSSL header: it takes effect where macros.h is first
// included.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "crypto/secret_key.h"

#include <cstring>
#include <memory>
#include <string>

#include "common/strings.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include <msgpuck.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <nlohmann/json.hpp>

#include "crypto/encoding.h"
#include "crypto/hmac_key.h"
#include "crypto/random.h"

namespace kes::crypto {
namespace {

// ---- CPU feature detection (crypto.md §2.2) --------------------------------

bool HasAesGcmHardware() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__) && defined(__linux__)
  // HWCAP_AES = 1 << 3, HWCAP_PMULL = 1 << 4.
  const unsigned long hwcap = getauxval(AT_HWCAP);
  return (hwcap & (1UL << 3)) && (hwcap & (1UL << 4));
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
  return true;
#else
  return false;
#endif
}

// ---- OpenSSL cipher objects, fetched once ----------------------------------

const EVP_CIPHER* AesGcm() {
  static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return c;
}

const EVP_CIPHER* ChaChaPoly() {
  static EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  return c;
}

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

// One context per thread and AEAD, set up with its cipher once and then only
// re-keyed (EVP_*Init_ex2 with a null cipher keeps the provider context): a
// full initialisation allocates and looks up parameters by name, about 5
// allocations per seal. Between calls the context holds the schedule of the
// last per-message subkey, which opens nothing but that one message (the
// master keys it derives from are in the key cache anyway); OpenSSL wipes it
// when the thread ends and the context is freed.
EVP_CIPHER_CTX* ThreadCipherCtx(KeyType type) {
  struct Ctx {
    std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter> ctx{EVP_CIPHER_CTX_new()};
    bool ready = false;
  };
  thread_local Ctx aes, chacha;
  Ctx& c = type == KeyType::kAES256 ? aes : chacha;
  if (!c.ready && c.ctx != nullptr) {
    const EVP_CIPHER* cipher = type == KeyType::kAES256 ? AesGcm() : ChaChaPoly();
    c.ready = cipher != nullptr &&
              EVP_CipherInit_ex2(c.ctx.get(), cipher, nullptr, nullptr, 1, nullptr) == 1;
    if (!c.ready) return nullptr;
  }
  return c.ctx.get();
}

// ---- HChaCha20 ------------------------------------------------------------

inline uint32_t Rotl(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

inline void QuarterRound(uint32_t& a, uint32_t& b, uint32_t& c, uint32_t& d) {
  a += b;
  d ^= a;
  d = Rotl(d, 16);
  c += d;
  b ^= c;
  b = Rotl(b, 12);
  a += b;
  d ^= a;
  d = Rotl(d, 8);
  c += d;
  b ^= c;
  b = Rotl(b, 7);
}

inline uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

inline void StoreLe32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}

// ---- Subkey derivation and AEAD ---------------------------------------------

// Seals plaintext into out[0, len(plaintext) + 16).
bool Seal(KeyType type, std::span<const uint8_t> subkey, std::span<const uint8_t> nonce,
          std::span<const uint8_t> plaintext, std::span<const uint8_t> aad, uint8_t* out) {
  EVP_CIPHER_CTX* ctx = ThreadCipherCtx(type);
  if (ctx == nullptr) return false;
  int len = 0;
  bool ok = EVP_EncryptInit_ex2(ctx, nullptr, subkey.data(), nonce.data(), nullptr) == 1;
  if (ok && !aad.empty()) {
    ok = EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1;
  }
  size_t written = 0;
  if (ok && !plaintext.empty()) {
    ok = EVP_EncryptUpdate(ctx, out, &len, plaintext.data(), static_cast<int>(plaintext.size())) ==
         1;
    written = static_cast<size_t>(len);
  }
  if (ok) ok = EVP_EncryptFinal_ex(ctx, out + written, &len) == 1;
  if (ok) {
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize),
                             out + plaintext.size()) == 1;
  }
  return ok;
}

// Opens sealed = ciphertext || tag into out[0, len(sealed) - 16).
bool Open(KeyType type, std::span<const uint8_t> subkey, std::span<const uint8_t> nonce,
          std::span<const uint8_t> sealed, std::span<const uint8_t> aad, uint8_t* out) {
  if (sealed.size() < kTagSize) return false;
  const size_t ct_len = sealed.size() - kTagSize;
  EVP_CIPHER_CTX* ctx = ThreadCipherCtx(type);
  if (ctx == nullptr) return false;
  int len = 0;
  bool ok = EVP_DecryptInit_ex2(ctx, nullptr, subkey.data(), nonce.data(), nullptr) == 1;
  if (ok && !aad.empty()) {
    ok = EVP_DecryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1;
  }
  size_t written = 0;
  if (ok && ct_len > 0) {
    ok = EVP_DecryptUpdate(ctx, out, &len, sealed.data(), static_cast<int>(ct_len)) == 1;
    written = static_cast<size_t>(len);
  }
  if (ok) {
    uint8_t tag[kTagSize];
    std::memcpy(tag, sealed.data() + ct_len, kTagSize);
    ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize), tag) == 1;
  }
  if (ok) ok = EVP_DecryptFinal_ex(ctx, out + written, &len) == 1;
  return ok;
}

// ---- Legacy ciphertext containers (crypto.md §6.2, §6.3) -------------------

struct LegacyCiphertext {
  KeyType algorithm;
  std::array<uint8_t, kIVSize> iv;
  std::array<uint8_t, kNonceSize> nonce;
  std::vector<uint8_t> sealed;
};

std::optional<LegacyCiphertext> ParseMsgpack(std::span<const uint8_t> b) {
  const char* p = reinterpret_cast<const char*>(b.data());
  const char* const end = p + b.size();
  // mp_check validates the whole element against the buffer bounds before any
  // mp_decode_* reads it (the decoders themselves do not check bounds).
  const char* check = p;
  if (mp_check(&check, end) != 0 || check != end) return std::nullopt;
  if (mp_typeof(*p) != MP_ARRAY || mp_decode_array(&p) != 5) return std::nullopt;

  auto read_str = [&](std::string_view* out) {
    if (mp_typeof(*p) != MP_STR) return false;
    uint32_t len = 0;
    const char* s = mp_decode_str(&p, &len);
    *out = std::string_view(s, len);
    return true;
  };
  auto read_bin = [&](std::span<const uint8_t>* out) {
    if (mp_typeof(*p) != MP_BIN) return false;
    uint32_t len = 0;
    const char* s = mp_decode_bin(&p, &len);
    *out = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s), len);
    return true;
  };

  std::string_view alg, id;
  std::span<const uint8_t> iv, nonce, bytes;
  if (!read_str(&alg) || !read_str(&id) || !read_bin(&iv) || !read_bin(&nonce) ||
      !read_bin(&bytes)) {
    return std::nullopt;
  }
  LegacyCiphertext c;
  if (alg == "AES256-GCM_SHA256" || alg == "AES256") {
    c.algorithm = KeyType::kAES256;
  } else if (alg == "XCHACHA20-POLY1305" || alg == "ChaCha20") {
    c.algorithm = KeyType::kChaCha20;
  } else {
    return std::nullopt;
  }
  if (iv.size() != kIVSize || nonce.size() != kNonceSize) return std::nullopt;
  std::memcpy(c.iv.data(), iv.data(), kIVSize);
  std::memcpy(c.nonce.data(), nonce.data(), kNonceSize);
  c.sealed.assign(bytes.begin(), bytes.end());
  return c;
}

std::optional<LegacyCiphertext> ParseJson(std::span<const uint8_t> b) {
  const auto doc =
      nlohmann::ordered_json::parse(b.begin(), b.end(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;

  // Go semantics: each member is applied in order (last one wins), null
  // leaves the field unset, any other non-string value is an error.
  std::string aead;
  std::optional<std::vector<uint8_t>> iv, nonce, bytes;
  for (const auto& [name, value] : doc.items()) {
    const bool is_aead = EqualFoldAscii(name, "aead"), is_id = EqualFoldAscii(name, "id"),
               is_iv = EqualFoldAscii(name, "iv"), is_nonce = EqualFoldAscii(name, "nonce"),
               is_bytes = EqualFoldAscii(name, "bytes");
    if (!is_aead && !is_id && !is_iv && !is_nonce && !is_bytes) continue;
    if (value.is_null()) continue;
    if (!value.is_string()) return std::nullopt;
    const auto& s = value.get_ref<const std::string&>();
    if (is_aead) {
      aead = s;
    } else if (!is_id) {
      auto decoded = Base64Decode(s);
      if (!decoded) return std::nullopt;
      (is_iv ? iv : is_nonce ? nonce : bytes) = std::move(decoded);
    }
  }
  LegacyCiphertext c;
  if (aead == "AES-256-GCM-HMAC-SHA-256") {
    c.algorithm = KeyType::kAES256;
  } else if (aead == "ChaCha20Poly1305") {
    c.algorithm = KeyType::kChaCha20;
  } else {
    return std::nullopt;
  }
  if (!iv || iv->size() != kIVSize || !nonce || nonce->size() != kNonceSize) return std::nullopt;
  std::memcpy(c.iv.data(), iv->data(), kIVSize);
  std::memcpy(c.nonce.data(), nonce->data(), kNonceSize);
  c.sealed = bytes ? std::move(*bytes) : std::vector<uint8_t>{};
  return c;
}

}  // namespace

namespace {

// HMAC-SHA256 with precomputed pads (RFC 2104): H((K ^ opad) || H((K ^ ipad)
// || m)). After one 64-byte block, a SHA-256 state is fully described by its
// chaining value h[8] and the length processed (512 bits), so only the two
// chaining values are kept per key and each hash resumes from one. The
// low-level SHA256_CTX API is the only OpenSSL interface that exposes that
// state without a heap object per key.
constexpr size_t kChainSize = 32;  // sizeof(SHA256_CTX::h)
static_assert(sizeof(SHA256_CTX::h) == kChainSize);

void PrecomputeHmacStates(std::span<const uint8_t, kKeySize> key,
                          std::span<uint8_t, 2 * kChainSize> states) {
  uint8_t pad[64];
  SHA256_CTX c;
  for (int half = 0; half < 2; ++half) {
    const uint8_t x = half == 0 ? 0x36 : 0x5c;  // ipad, opad
    for (size_t i = 0; i < sizeof pad; ++i) pad[i] = (i < key.size() ? key[i] : 0) ^ x;
    SHA256_Init(&c);
    SHA256_Update(&c, pad, sizeof pad);  // exactly one block: c.num == 0
    std::memcpy(states.data() + half * kChainSize, c.h, kChainSize);
  }
  Zeroize(pad, sizeof pad);
  Zeroize(&c, sizeof c);
}

// Hashes `message` continuing from a chaining value saved after one block.
void ResumeSha256(const uint8_t* chain, std::span<const uint8_t> message, uint8_t out[32]) {
  SHA256_CTX c;
  SHA256_Init(&c);
  std::memcpy(c.h, chain, kChainSize);
  c.Nl = 512;  // bits already hashed; Nh (high word) stays 0
  SHA256_Update(&c, message.data(), message.size());
  SHA256_Final(out, &c);
  Zeroize(&c, sizeof c);  // Final wipes only the block buffer, not h
}

void HmacWithStates(std::span<const uint8_t, 2 * kChainSize> states,
                    std::span<const uint8_t> message, uint8_t out[32]) {
  uint8_t inner[32];
  ResumeSha256(states.data(), message, inner);
  ResumeSha256(states.data() + kChainSize, inner, out);
  Zeroize(inner, sizeof inner);
}

}  // namespace

SecretKey::SecretKey(KeyType type, std::span<const uint8_t, kKeySize> key)
    : key_(key), type_(static_cast<uint8_t>(type)) {
  if (type == KeyType::kAES256) PrecomputeHmacStates(key_.span(), hmac_states_.span());
}

void SecretKey::DeriveSubkey(KeyType algorithm, std::span<const uint8_t, kIVSize> iv,
                             SecretBytes& subkey) const {
  if (algorithm == KeyType::kChaCha20) {
    auto k = HChaCha20(key_.span(), iv);
    std::memcpy(subkey.data(), k.data(), k.size());
    Zeroize(k.data(), k.size());
    return;
  }
  if (type() == KeyType::kAES256) {
    HmacWithStates(hmac_states_.span(), iv, subkey.data());
    return;
  }
  auto k = HmacSha256(key_.span(), iv);
  std::memcpy(subkey.data(), k.data(), k.size());
  Zeroize(k.data(), k.size());
}

std::string_view KeyTypeName(KeyType type) {
  return type == KeyType::kAES256 ? "AES256" : "ChaCha20";
}

std::optional<KeyType> ParseKeyType(std::string_view name) {
  if (name == "AES256" || name == "AES256-GCM_SHA256") return KeyType::kAES256;
  if (name == "ChaCha20" || name == "XCHACHA20-POLY1305") return KeyType::kChaCha20;
  return std::nullopt;
}

KeyType DefaultKeyType() {
  static const KeyType type = HasAesGcmHardware() ? KeyType::kAES256 : KeyType::kChaCha20;
  return type;
}

Result<SecretKey> SecretKey::Make(KeyType type, std::span<const uint8_t> bytes) {
  if (type != KeyType::kAES256 && type != KeyType::kChaCha20) {
    return Status::Invalid("crypto: invalid secret key type '" +
                           std::to_string(static_cast<uint32_t>(type)) + "'");
  }
  if (bytes.size() != kKeySize) {
    return Status::Invalid("crypto: invalid secret key length '" + std::to_string(bytes.size()) +
                           "'");
  }
  return SecretKey(type, bytes.first<kKeySize>());
}

Result<SecretKey> SecretKey::Generate(KeyType type) {
  SecretArray<kKeySize> key;
  KES_TRY(RandomBytes(key.span()));
  return Make(type, key.span());
}

SecretKey SecretKey::Clone() const {
  SecretKey k(type(), key_.span());
  k.untyped_ = untyped_;
  return k;
}

Result<std::vector<uint8_t>> SecretKey::Encrypt(std::span<const uint8_t> plaintext,
                                                std::span<const uint8_t> context) const {
  std::array<uint8_t, kIVSize + kNonceSize> random;
  KES_TRY(RandomBytes(random));
  return EncryptWith(std::span<const uint8_t, kIVSize>(random.data(), kIVSize),
                     std::span<const uint8_t, kNonceSize>(random.data() + kIVSize, kNonceSize),
                     plaintext, context);
}

Result<std::vector<uint8_t>> SecretKey::EncryptWith(std::span<const uint8_t, kIVSize> iv,
                                                    std::span<const uint8_t, kNonceSize> nonce,
                                                    std::span<const uint8_t> plaintext,
                                                    std::span<const uint8_t> context) const {
  if (plaintext.size() > (size_t{1} << 31) - kCiphertextOverhead) {
    return Status::Invalid("crypto: plaintext is too large");
  }
  SecretBytes subkey(kKeySize);
  DeriveSubkey(type(), iv, subkey);
  std::vector<uint8_t> out(plaintext.size() + kCiphertextOverhead);
  if (!Seal(type(), subkey.span(), nonce, plaintext, context, out.data())) {
    return Status::Internal("crypto: failed to encrypt plaintext");
  }
  uint8_t* tail = out.data() + plaintext.size() + kTagSize;
  std::memcpy(tail, iv.data(), kIVSize);
  std::memcpy(tail + kIVSize, nonce.data(), kNonceSize);
  return out;
}

Result<DataKey> SecretKey::GenerateDataKey(std::span<const uint8_t> context) const {
  // One draw: DEK || iv || nonce. SecretBytes zeroizes all of it on return.
  SecretBytes random(kKeySize + kIVSize + kNonceSize);
  KES_TRY(RandomBytes(random.span()));
  const uint8_t* p = random.data();
  DataKey key{SecretBytes(std::span<const uint8_t>(p, kKeySize)), {}};
  KES_ASSIGN_OR_RETURN(
      key.ciphertext,
      EncryptWith(std::span<const uint8_t, kIVSize>(p + kKeySize, kIVSize),
                  std::span<const uint8_t, kNonceSize>(p + kKeySize + kIVSize, kNonceSize),
                  key.plaintext.span(), context));
  return key;
}

Result<SecretBytes> SecretKey::Decrypt(std::span<const uint8_t> ciphertext,
                                       std::span<const uint8_t> context) const {
  std::optional<LegacyCiphertext> legacy;
  if (!ciphertext.empty() && ciphertext[0] == 0x95) {
    legacy = ParseMsgpack(ciphertext);
  } else if (!ciphertext.empty() && ciphertext[0] == '{') {
    legacy = ParseJson(ciphertext);
  }

  if (!legacy) return DecryptRaw(ciphertext, context);
  // §6.5: only keys stored without an algorithm follow the recorded one.
  const KeyType algorithm = untyped_ ? legacy->algorithm : type();
  return OpenSealed(algorithm, legacy->sealed, legacy->iv, legacy->nonce, context);
}

Result<SecretBytes> SecretKey::DecryptRaw(std::span<const uint8_t> ciphertext,
                                          std::span<const uint8_t> context) const {
  if (ciphertext.size() <= kIVSize + kNonceSize) return Status::NotAuthentic();
  const size_t n = ciphertext.size() - kIVSize - kNonceSize;
  return OpenSealed(type(), ciphertext.first(n), ciphertext.subspan(n, kIVSize),
                    ciphertext.subspan(n + kIVSize, kNonceSize), context);
}

Result<SecretBytes> SecretKey::OpenSealed(KeyType algorithm, std::span<const uint8_t> sealed,
                                          std::span<const uint8_t> iv,
                                          std::span<const uint8_t> nonce,
                                          std::span<const uint8_t> context) const {
  if (sealed.size() < kTagSize || sealed.size() > (size_t{1} << 31)) {
    return Status::NotAuthentic();
  }

  SecretBytes subkey(kKeySize);
  DeriveSubkey(algorithm, std::span<const uint8_t, kIVSize>(iv.data(), kIVSize), subkey);
  SecretBytes plaintext(sealed.size() - kTagSize);
  if (!Open(algorithm, subkey.span(), nonce, sealed, context, plaintext.data())) {
    return Status::NotAuthentic();
  }
  return plaintext;
}

std::array<uint8_t, 32> HChaCha20(std::span<const uint8_t, 32> key,
                                  std::span<const uint8_t, 16> input) {
  uint32_t s[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  for (size_t i = 0; i < 8; ++i) s[4 + i] = LoadLe32(key.data() + 4 * i);
  for (size_t i = 0; i < 4; ++i) s[12 + i] = LoadLe32(input.data() + 4 * i);
  for (int round = 0; round < 10; ++round) {
    QuarterRound(s[0], s[4], s[8], s[12]);
    QuarterRound(s[1], s[5], s[9], s[13]);
    QuarterRound(s[2], s[6], s[10], s[14]);
    QuarterRound(s[3], s[7], s[11], s[15]);
    QuarterRound(s[0], s[5], s[10], s[15]);
    QuarterRound(s[1], s[6], s[11], s[12]);
    QuarterRound(s[2], s[7], s[8], s[13]);
    QuarterRound(s[3], s[4], s[9], s[14]);
  }
  std::array<uint8_t, 32> out;
  for (size_t i = 0; i < 4; ++i) StoreLe32(out.data() + 4 * i, s[i]);
  for (size_t i = 0; i < 4; ++i) StoreLe32(out.data() + 16 + 4 * i, s[12 + i]);
  Zeroize(s, sizeof s);
  return out;
}

}  // namespace kes::crypto
