// Crypto module: every vector of the secret-key, stored-key and derived
// groups, plus malformed-input cases.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/time.h"
#include "crypto/encoding.h"
#include "crypto/hmac_key.h"
#include "crypto/key_version.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "crypto/secret_key.h"
#include "kes.pb.h"
#include "vectors.h"

namespace kes::crypto {
namespace {

using kes::testing::VectorGroup;
using Json = nlohmann::json;

std::vector<uint8_t> B64(const Json& v) {
  if (v.is_null()) return {};
  auto d = Base64Decode(v.get<std::string>());
  EXPECT_TRUE(d.has_value()) << v;
  return d.value_or(std::vector<uint8_t>{});
}

std::vector<uint8_t> Hex(const Json& v) {
  auto d = HexDecode(v.get<std::string>());
  EXPECT_TRUE(d.has_value()) << v;
  return d.value_or(std::vector<uint8_t>{});
}

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> ToVec(std::span<const uint8_t> s) { return {s.begin(), s.end()}; }

KeyType TypeOf(const Json& v) {
  auto t = ParseKeyType(v.get<std::string>());
  EXPECT_TRUE(t.has_value()) << v;
  return t.value_or(KeyType::kAES256);
}

SecretKey KeyOf(const Json& input) {
  auto key = SecretKey::Make(TypeOf(input.at("key_type")), B64(input.at("key_b64")));
  EXPECT_TRUE(key.ok()) << key.status().message();
  return std::move(key).value();
}

SecretKey ZeroKey(KeyType type) {
  std::vector<uint8_t> zero(32, 0);
  return std::move(SecretKey::Make(type, zero)).value();
}

// ---- vectors ---------------------------------------------------------------

TEST(CryptoVectors, SecretKeyDecrypt) {
  int run = 0;
  for (const auto& v : VectorGroup("secret_key_decrypt")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    const auto& in = v.at("input");
    const SecretKey key = KeyOf(in);
    const auto ciphertext = B64(in.at("ciphertext_b64"));
    const auto context = B64(in.at("context_b64"));
    auto plain = key.Decrypt(ciphertext, context);
    if (v.at("expected").at("should_fail").get<bool>()) {
      ASSERT_FALSE(plain.ok());
      EXPECT_EQ(plain.status(), Status::NotAuthentic());
    } else {
      ASSERT_TRUE(plain.ok()) << plain.status().message();
      EXPECT_EQ(ToVec(plain->span()), B64(v.at("expected").at("plaintext_b64")));
    }
    if (v.contains("derived") && v.at("derived").contains("raw_form_b64")) {
      const auto& d = v.at("derived");
      // The container's raw form decrypts to the same plaintext.
      auto raw = key.Decrypt(B64(d.at("raw_form_b64")), context);
      ASSERT_TRUE(raw.ok());
      EXPECT_EQ(ToVec(raw->span()), B64(v.at("expected").at("plaintext_b64")));
      // The per-message subkey is derived as documented.
      const auto iv = B64(d.at("iv_b64"));
      ASSERT_EQ(iv.size(), kIVSize);
      std::array<uint8_t, 32> subkey;
      if (key.type() == KeyType::kAES256) {
        subkey = HmacSha256(key.bytes(), iv);
      } else {
        subkey = HChaCha20(std::span<const uint8_t, 32>(key.bytes().data(), 32),
                           std::span<const uint8_t, 16>(iv.data(), 16));
      }
      EXPECT_EQ(HexEncode(subkey), d.at("aead_subkey_hex").get<std::string>());
    }
    ++run;
  }
  EXPECT_GT(run, 0);
  RecordProperty("vectors_run", run);
}

TEST(CryptoVectors, SecretKeyEncryptRoundtrip) {
  int run = 0;
  for (const auto& v : VectorGroup("secret_key_encrypt_roundtrip")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    const auto& in = v.at("input");
    const SecretKey key = KeyOf(in);
    const auto plaintext = B64(in.at("plaintext_b64"));
    const auto context = B64(in.at("context_b64"));
    auto ct = key.Encrypt(plaintext, context);
    ASSERT_TRUE(ct.ok());
    EXPECT_EQ(ct->size(), v.at("expected").at("ciphertext_length").get<size_t>());
    auto pt = key.Decrypt(*ct, context);
    ASSERT_TRUE(pt.ok());
    EXPECT_EQ(ToVec(pt->span()), plaintext);
    // Fresh randomness: a second encryption differs.
    auto ct2 = key.Encrypt(plaintext, context);
    ASSERT_TRUE(ct2.ok());
    EXPECT_NE(*ct, *ct2);
    ++run;
  }
  EXPECT_GT(run, 0);
}

TEST(CryptoVectors, KeyVersionParse) {
  int run = 0;
  for (const auto& v : VectorGroup("key_version_parse")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    const auto& exp = v.at("expected");
    auto kv = ParseKeyVersion(v.at("input").at("stored_value_text").get<std::string>());
    ++run;
    if (exp.at("should_fail").get<bool>()) {
      EXPECT_FALSE(kv.ok());
      continue;
    }
    ASSERT_TRUE(kv.ok()) << kv.status().message();
    EXPECT_EQ(KeyTypeName(kv->key.type()), exp.at("key_type").get<std::string>());
    EXPECT_EQ(ToVec(kv->key.bytes()), B64(exp.at("key_b64")));
    EXPECT_EQ(kv->created_by, exp.at("created_by").get<std::string>());
    EXPECT_EQ(kv->hmac.has_value(), exp.at("has_hmac_key").get<bool>());
    if (exp.contains("hmac_key_b64")) {
      ASSERT_TRUE(kv->hmac.has_value());
      EXPECT_EQ(ToVec(kv->hmac->bytes()), B64(exp.at("hmac_key_b64")));
    }
    const auto created = exp.at("created_at").get<std::string>();
    if (created.rfind("zero time", 0) == 0) {
      EXPECT_EQ(kv->created_at, Timestamp::GoZero());
      EXPECT_EQ(kv->created_at.ToRfc3339(), "0001-01-01T00:00:00Z");
    } else {
      auto want = Timestamp::ParseRfc3339(created);
      ASSERT_TRUE(want.has_value());
      EXPECT_EQ(kv->created_at.seconds, want->seconds);  // same instant
      EXPECT_EQ(kv->created_at.nanos, want->nanos);
    }
    if (v.contains("derived") && v.at("derived").contains("created_at_utc")) {
      EXPECT_EQ(kv->created_at.ToRfc3339(),
                v.at("derived").at("created_at_utc").get<std::string>());
    }
    // Legacy keys stay untyped only when they carry no algorithm.
    const bool legacy_json = v.at("input").at("stored_value_text").get<std::string>()[0] == '{';
    const bool has_alg =
        v.at("input").at("stored_value_text").get<std::string>().find("algorithm") !=
        std::string::npos;
    EXPECT_EQ(kv->key.untyped(), legacy_json && !has_alg);
  }
  EXPECT_GT(run, 0);
}

TEST(CryptoVectors, KeyVersionEncode) {
  int run = 0;
  for (const auto& v : VectorGroup("key_version_encode")) {
    SCOPED_TRACE(v.at("id").get<std::string>());
    const auto& in = v.at("input");
    const bool should_fail = v.at("expected").at("should_fail").get<bool>();
    ++run;
    // A missing secret key cannot even be constructed.
    auto key =
        SecretKey::Make(in.contains("key_type") ? TypeOf(in.at("key_type")) : KeyType::kAES256,
                        B64(in.at("key_b64")));
    if (!key.ok()) {
      EXPECT_TRUE(should_fail);
      continue;
    }
    std::optional<HMACKey> hmac;
    if (!in.at("hmac_key_b64").is_null()) {
      auto h = HMACKey::Make(B64(in.at("hmac_key_b64")));
      ASSERT_TRUE(h.ok());
      hmac = std::move(*h);
    }
    auto created = Timestamp::ParseRfc3339(in.at("created_at").get<std::string>());
    ASSERT_TRUE(created.has_value());
    KeyVersion kv{std::move(*key), std::move(hmac), *created,
                  in.at("created_by").get<std::string>()};
    auto encoded = EncodeKeyVersion(kv);
    if (should_fail) {
      EXPECT_FALSE(encoded.ok());
      continue;
    }
    ASSERT_TRUE(encoded.ok()) << encoded.status().message();
    EXPECT_EQ(*encoded, v.at("derived").at("stored_value_text").get<std::string>());
    auto back = ParseKeyVersion(*encoded);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->key.type(), kv.key.type());
    EXPECT_EQ(ToVec(back->key.bytes()), ToVec(kv.key.bytes()));
    ASSERT_TRUE(back->hmac.has_value());
    EXPECT_EQ(ToVec(back->hmac->bytes()), ToVec(kv.hmac->bytes()));
    EXPECT_EQ(back->created_at.seconds, kv.created_at.seconds);
    EXPECT_EQ(back->created_at.nanos, kv.created_at.nanos);
    EXPECT_EQ(back->created_by, kv.created_by);
  }
  EXPECT_GT(run, 0);
}

TEST(CryptoVectors, DerivedEndToEnd) {
  int run = 0;
  for (const auto& v : VectorGroup("derived_end_to_end")) {
    const std::string id = v.at("id").get<std::string>();
    SCOPED_TRACE(id);
    const auto& in = v.at("input");
    const auto& d = v.at("derived");
    ++run;
    if (id.rfind("derived-encrypt-", 0) == 0) {
      SecretKey key = KeyOf(in);
      if (in.contains("stored_value_text")) {
        auto kv = ParseKeyVersion(in.at("stored_value_text").get<std::string>());
        ASSERT_TRUE(kv.ok());
        EXPECT_EQ(ToVec(kv->key.bytes()), ToVec(key.bytes()));
      }
      const auto iv = Hex(in.at("iv_hex"));
      const auto nonce = Hex(in.at("nonce_hex"));
      const auto plaintext = B64(in.at("plaintext_b64"));
      const auto context = B64(in.at("context_b64"));
      auto ct = key.EncryptWith(std::span<const uint8_t, 16>(iv.data(), 16),
                                std::span<const uint8_t, 12>(nonce.data(), 12), plaintext, context);
      ASSERT_TRUE(ct.ok());
      EXPECT_EQ(Base64Encode(*ct), d.at("ciphertext_b64").get<std::string>());
      if (d.contains("ciphertext_len")) {
        EXPECT_EQ(ct->size(), d.at("ciphertext_len").get<size_t>());
      }
      if (in.contains("context_text")) {
        EXPECT_EQ(Bytes(in.at("context_text").get<std::string>()), context);
      }
      if (d.contains("aead_subkey_hex")) {
        auto subkey = key.type() == KeyType::kAES256
                          ? HmacSha256(key.bytes(), iv)
                          : HChaCha20(std::span<const uint8_t, 32>(key.bytes().data(), 32),
                                      std::span<const uint8_t, 16>(iv.data(), 16));
        EXPECT_EQ(HexEncode(subkey), d.at("aead_subkey_hex").get<std::string>());
      }
      auto pt = key.Decrypt(*ct, context);
      ASSERT_TRUE(pt.ok());
      EXPECT_EQ(ToVec(pt->span()), plaintext);
    } else if (id.rfind("derived-hmac-", 0) == 0) {
      auto kv = ParseKeyVersion(in.at("stored_value_text").get<std::string>());
      ASSERT_TRUE(kv.ok());
      ASSERT_TRUE(kv->hmac.has_value());
      EXPECT_EQ(ToVec(kv->hmac->bytes()), B64(in.at("hmac_key_b64")));
      const auto& messages = in.at("messages");
      ASSERT_EQ(messages.size(), d.at("hmac_b64").size());
      for (size_t i = 0; i < messages.size(); ++i) {
        const auto sum = kv->hmac->Sum(Bytes(messages[i].get<std::string>()));
        EXPECT_EQ(Base64Encode(sum), d.at("hmac_b64")[i].get<std::string>());
        EXPECT_EQ(HexEncode(sum), d.at("hmac_hex")[i].get<std::string>());
      }
    } else if (id.rfind("derived-hchacha20-", 0) == 0) {
      const auto key = Hex(in.at("key_hex"));
      const auto nonce = Hex(in.at("nonce16_hex"));
      ASSERT_EQ(key.size(), 32u);
      ASSERT_EQ(nonce.size(), 16u);
      EXPECT_EQ(HexEncode(HChaCha20(std::span<const uint8_t, 32>(key.data(), 32),
                                    std::span<const uint8_t, 16>(nonce.data(), 16))),
                d.at("subkey_hex").get<std::string>());
    } else if (id.rfind("derived-legacy-key-id-", 0) == 0) {
      const auto sum = Sha256(B64(in.at("key_b64")));
      EXPECT_EQ(HexEncode(std::span<const uint8_t>(sum).first(16)),
                d.at("key_id").get<std::string>());
    } else {
      ADD_FAILURE() << "unknown derived vector " << id;
    }
  }
  EXPECT_GT(run, 0);
}

// ---- ciphertext edge cases ---------------------------------------------------

class DecryptBadInput : public ::testing::TestWithParam<KeyType> {};

TEST_P(DecryptBadInput, TruncatedCiphertexts) {
  const SecretKey key = ZeroKey(GetParam());
  const auto plaintext = Bytes("attack at dawn");
  auto ct = key.Encrypt(plaintext, {});
  ASSERT_TRUE(ct.ok());
  for (size_t n = 0; n < ct->size(); ++n) {
    SCOPED_TRACE(n);
    std::vector<uint8_t> cut(ct->begin(), ct->begin() + static_cast<long>(n));
    EXPECT_EQ(key.Decrypt(cut, {}).status(), Status::NotAuthentic());
  }
  // Dropping bytes from the front also fails.
  std::vector<uint8_t> tail(ct->begin() + 1, ct->end());
  EXPECT_EQ(key.Decrypt(tail, {}).status(), Status::NotAuthentic());
}

TEST_P(DecryptBadInput, OversizedCiphertexts) {
  const SecretKey key = ZeroKey(GetParam());
  auto ct = key.Encrypt(Bytes("data"), {});
  ASSERT_TRUE(ct.ok());
  auto longer = *ct;
  longer.push_back(0);
  EXPECT_EQ(key.Decrypt(longer, {}).status(), Status::NotAuthentic());
  std::vector<uint8_t> big(1 << 20, 0xab);
  EXPECT_EQ(key.Decrypt(big, {}).status(), Status::NotAuthentic());
  big[0] = 0x95;  // looks like MessagePack, is not
  EXPECT_EQ(key.Decrypt(big, {}).status(), Status::NotAuthentic());
  big[0] = '{';  // looks like JSON, is not
  EXPECT_EQ(key.Decrypt(big, {}).status(), Status::NotAuthentic());
}

TEST_P(DecryptBadInput, EveryBitFlipFails) {
  const SecretKey key = ZeroKey(GetParam());
  auto ct = key.Encrypt(Bytes("0123456789"), Bytes("ctx"));
  ASSERT_TRUE(ct.ok());
  for (size_t i = 0; i < ct->size(); ++i) {
    auto bad = *ct;
    bad[i] ^= 0x01;
    EXPECT_EQ(key.Decrypt(bad, Bytes("ctx")).status(), Status::NotAuthentic()) << i;
  }
}

TEST_P(DecryptBadInput, WrongContextAndWrongKey) {
  const SecretKey key = ZeroKey(GetParam());
  auto ct = key.Encrypt(Bytes("secret"), Bytes(R"({"bucket":"a/b"})"));
  ASSERT_TRUE(ct.ok());
  EXPECT_TRUE(key.Decrypt(*ct, Bytes(R"({"bucket":"a/b"})")).ok());
  EXPECT_EQ(key.Decrypt(*ct, Bytes(R"({"bucket":"a/c"})")).status(), Status::NotAuthentic());
  EXPECT_EQ(key.Decrypt(*ct, {}).status(), Status::NotAuthentic());
  auto other = SecretKey::Generate(GetParam());
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->Decrypt(*ct, Bytes(R"({"bucket":"a/b"})")).status(), Status::NotAuthentic());
  // Same key bytes, other algorithm.
  const SecretKey swapped =
      ZeroKey(GetParam() == KeyType::kAES256 ? KeyType::kChaCha20 : KeyType::kAES256);
  EXPECT_EQ(swapped.Decrypt(*ct, Bytes(R"({"bucket":"a/b"})")).status(), Status::NotAuthentic());
}

TEST_P(DecryptBadInput, EmptyPlaintextAndEmptyContextEqualAbsent) {
  const SecretKey key = ZeroKey(GetParam());
  auto ct = key.Encrypt({}, {});
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(ct->size(), kCiphertextOverhead);
  auto pt = key.Decrypt(*ct, std::span<const uint8_t>());
  ASSERT_TRUE(pt.ok());
  EXPECT_TRUE(pt->empty());
}

INSTANTIATE_TEST_SUITE_P(BothTypes, DecryptBadInput,
                         ::testing::Values(KeyType::kAES256, KeyType::kChaCha20),
                         [](const auto& info) { return std::string(KeyTypeName(info.param)); });

// One key shared by many threads (the server's cache does this): the
// precomputed HMAC state and the per-thread cipher contexts must not race.
TEST(SecretKeyThreads, SharedKeyAcrossThreads) {
  for (KeyType type : {KeyType::kAES256, KeyType::kChaCha20}) {
    auto key = SecretKey::Generate(type);
    ASSERT_TRUE(key.ok());
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        const std::vector<uint8_t> plaintext(16 + t, static_cast<uint8_t>(t));
        const auto context = Bytes("thread-" + std::to_string(t));
        for (int i = 0; i < 500; ++i) {
          auto ct = key->Encrypt(plaintext, context);
          if (!ct.ok()) {
            ++failures;
            continue;
          }
          auto pt = key->Decrypt(*ct, context);
          if (!pt.ok() || ToVec(pt->span()) != plaintext) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0) << KeyTypeName(type);
  }
}

// ---- HMAC-SHA256 (reused per-thread EVP_MAC context) -----------------------

std::string HexSum(std::span<const uint8_t> key, std::string_view message) {
  return HexEncode(HmacSha256(key, Bytes(message)));
}

// RFC 4231 test cases 1, 2 and 6 (a key longer than the block size), and the
// empty key with the empty message.
TEST(HmacSha256Test, Rfc4231AndEmptyInputs) {
  EXPECT_EQ(HexSum(std::vector<uint8_t>(20, 0x0b), "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HexSum(Bytes("Jefe"), "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(HexSum(std::vector<uint8_t>(131, 0xaa),
                   "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(HexSum({}, ""), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

// The context is reused across calls: each call must use its own key, never
// the previous one (including after an empty key).
TEST(HmacSha256Test, AlternatingKeysOnOneThreadMatchOneShotHmac) {
  for (int i = 0; i < 64; ++i) {
    std::vector<uint8_t> key(static_cast<size_t>(i % 3 == 0 ? 0 : 32 + i));
    std::vector<uint8_t> msg(static_cast<size_t>(i * 7));
    ASSERT_TRUE(RandomBytes(key).ok());
    ASSERT_TRUE(RandomBytes(msg).ok());
    std::array<uint8_t, 32> want{};
    unsigned int len = 0;
    const uint8_t empty = 0;
    ASSERT_NE(HMAC(EVP_sha256(), key.empty() ? &empty : key.data(), static_cast<int>(key.size()),
                   msg.empty() ? &empty : msg.data(), msg.size(), want.data(), &len),
              nullptr);
    EXPECT_EQ(HmacSha256(key, msg), want) << i;
    if (key.size() == 32) {
      auto hk = HMACKey::Make(key);
      ASSERT_TRUE(hk.ok());
      EXPECT_EQ(hk->Sum(msg), want) << i;
    }
  }
}

// The AES256 subkey comes from per-key precomputed HMAC states (resumed
// SHA-256 chaining values): the ciphertext must be exactly what the plain
// construction gives, subkey = HMAC-SHA256(key, iv), for many random keys.
TEST(HmacSha256Test, PrecomputedSubkeyDerivationMatchesPlainHmac) {
  for (int i = 0; i < 32; ++i) {
    std::array<uint8_t, 32> raw{};
    std::array<uint8_t, kIVSize> iv{};
    std::array<uint8_t, kNonceSize> nonce{};
    std::vector<uint8_t> plaintext(static_cast<size_t>(i * 3)), aad(static_cast<size_t>(i));
    ASSERT_TRUE(RandomBytes(raw).ok());
    ASSERT_TRUE(RandomBytes(iv).ok());
    ASSERT_TRUE(RandomBytes(nonce).ok());
    ASSERT_TRUE(RandomBytes(plaintext).ok());
    ASSERT_TRUE(RandomBytes(aad).ok());
    auto key = SecretKey::Make(KeyType::kAES256, raw);
    ASSERT_TRUE(key.ok());
    auto got = key->EncryptWith(iv, nonce, plaintext, aad);
    ASSERT_TRUE(got.ok());

    const std::array<uint8_t, 32> subkey = HmacSha256(raw, iv);
    std::vector<uint8_t> want(plaintext.size() + kTagSize);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    int len = 0;
    ASSERT_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, subkey.data(), nonce.data()), 1);
    if (!aad.empty()) {
      ASSERT_EQ(EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size())), 1);
    }
    if (!plaintext.empty()) {
      ASSERT_EQ(EVP_EncryptUpdate(ctx, want.data(), &len, plaintext.data(),
                                  static_cast<int>(plaintext.size())),
                1);
    }
    ASSERT_EQ(EVP_EncryptFinal_ex(ctx, want.data() + plaintext.size(), &len), 1);
    ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize),
                                  want.data() + plaintext.size()),
              1);
    EVP_CIPHER_CTX_free(ctx);
    want.insert(want.end(), iv.begin(), iv.end());
    want.insert(want.end(), nonce.begin(), nonce.end());
    EXPECT_EQ(*got, want) << i;

    // A moved-to and a cloned key derive the same subkeys.
    SecretKey moved = std::move(*key);
    EXPECT_EQ(moved.EncryptWith(iv, nonce, plaintext, aad).value(), want) << i;
    EXPECT_EQ(moved.Clone().EncryptWith(iv, nonce, plaintext, aad).value(), want) << i;
  }
}

TEST(HmacSha256Test, ThreadsWithDistinctKeysAgree) {
  std::vector<std::array<uint8_t, 32>> want(4);
  std::vector<HMACKey> keys;
  const auto msg = Bytes("message");
  for (int t = 0; t < 4; ++t) {
    auto k = HMACKey::Generate();
    ASSERT_TRUE(k.ok());
    want[static_cast<size_t>(t)] = k->Sum(msg);
    keys.push_back(std::move(*k));
  }
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const size_t k = static_cast<size_t>((t + i) % 4);
        if (keys[k].Sum(msg) != want[k]) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- Data keys (/v1/key/generate, crypto.md §7) -----------------------------

class GenerateDataKeyTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(GenerateDataKeyTest, SealsA32ByteKeyWithContextAsAad) {
  auto key = SecretKey::Generate(GetParam());
  ASSERT_TRUE(key.ok());
  const auto context = Bytes(R"({"bucket":"b","object":"o"})");
  for (const auto& ctx : {context, std::vector<uint8_t>{}}) {
    auto dk = key->GenerateDataKey(ctx);
    ASSERT_TRUE(dk.ok()) << dk.status().message();
    EXPECT_EQ(dk->plaintext.size(), 32u);
    EXPECT_EQ(dk->ciphertext.size(), 76u);
    auto pt = key->Decrypt(dk->ciphertext, ctx);
    ASSERT_TRUE(pt.ok());
    EXPECT_TRUE(ConstantTimeEqual(pt->span(), dk->plaintext.span()));
  }
  auto dk = key->GenerateDataKey(context);
  ASSERT_TRUE(dk.ok());
  EXPECT_FALSE(key->Decrypt(dk->ciphertext, Bytes(R"({"bucket":"b","object":"x"})")).ok());
  EXPECT_FALSE(key->Decrypt(dk->ciphertext, {}).ok());
  auto other = SecretKey::Generate(GetParam());
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->Decrypt(dk->ciphertext, context).ok());
}

TEST_P(GenerateDataKeyTest, EveryCallIsFresh) {
  auto key = SecretKey::Generate(GetParam());
  ASSERT_TRUE(key.ok());
  auto a = key->GenerateDataKey({});
  auto b = key->GenerateDataKey({});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(ToVec(a->plaintext.span()), ToVec(b->plaintext.span()));
  EXPECT_NE(a->ciphertext, b->ciphertext);
  // The key, iv and nonce are distinct parts of the one random draw.
  const std::vector<uint8_t> iv(a->ciphertext.begin() + 48, a->ciphertext.begin() + 64);
  const std::vector<uint8_t> nonce(a->ciphertext.begin() + 64, a->ciphertext.end());
  EXPECT_NE(iv, std::vector<uint8_t>(b->ciphertext.begin() + 48, b->ciphertext.begin() + 64));
  EXPECT_NE(nonce, std::vector<uint8_t>(b->ciphertext.begin() + 64, b->ciphertext.end()));
  EXPECT_NE(ToVec(a->plaintext.span().first(16)), iv);
}

INSTANTIATE_TEST_SUITE_P(BothTypes, GenerateDataKeyTest,
                         ::testing::Values(KeyType::kAES256, KeyType::kChaCha20),
                         [](const auto& info) { return std::string(KeyTypeName(info.param)); });

// Builds a MessagePack ciphertext from the parts of a raw one.
struct MsgpackParts {
  std::string alg = "AES256-GCM_SHA256";
  std::string id;
  std::vector<uint8_t> iv, nonce, bytes;
  bool iv_as_str = false;
  bool alg_as_bin = false;
};

void PutHeader(std::vector<uint8_t>& out, uint8_t kind8, size_t n) {
  out.push_back(kind8);
  out.push_back(static_cast<uint8_t>(n));
}

std::vector<uint8_t> Msgpack(const MsgpackParts& p) {
  std::vector<uint8_t> out = {0x95};
  auto put_str = [&](const std::string& s, bool as_bin) {
    PutHeader(out, as_bin ? 0xc4 : 0xd9, s.size());
    out.insert(out.end(), s.begin(), s.end());
  };
  auto put_bin = [&](const std::vector<uint8_t>& b, bool as_str) {
    PutHeader(out, as_str ? 0xd9 : 0xc4, b.size());
    out.insert(out.end(), b.begin(), b.end());
  };
  put_str(p.alg, p.alg_as_bin);
  put_str(p.id, false);
  put_bin(p.iv, p.iv_as_str);
  put_bin(p.nonce, false);
  put_bin(p.bytes, false);
  return out;
}

MsgpackParts PartsOf(const std::vector<uint8_t>& raw) {
  MsgpackParts p;
  const size_t n = raw.size() - 28;
  p.bytes.assign(raw.begin(), raw.begin() + static_cast<long>(n));
  p.iv.assign(raw.begin() + static_cast<long>(n), raw.begin() + static_cast<long>(n + 16));
  p.nonce.assign(raw.begin() + static_cast<long>(n + 16), raw.end());
  return p;
}

TEST(DecryptMsgpack, WellFormedDecrypts) {
  const SecretKey key = ZeroKey(KeyType::kAES256);
  auto raw = key.Encrypt(Bytes("hello"), {});
  ASSERT_TRUE(raw.ok());
  auto parts = PartsOf(*raw);
  auto pt = key.Decrypt(Msgpack(parts), {});
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ(ToVec(pt->span()), Bytes("hello"));
  parts.alg = "AES256";  // the API name is accepted too
  EXPECT_TRUE(key.Decrypt(Msgpack(parts), {}).ok());
}

TEST(DecryptMsgpack, MalformedFails) {
  const SecretKey key = ZeroKey(KeyType::kAES256);
  auto raw = key.Encrypt(Bytes("hello"), {});
  ASSERT_TRUE(raw.ok());
  const auto good = PartsOf(*raw);
  std::vector<std::pair<std::string, std::vector<uint8_t>>> cases;
  {
    auto p = good;
    p.alg = "AES-256-GCM";
    cases.emplace_back("unknown algorithm", Msgpack(p));
  }
  {
    auto p = good;
    p.iv_as_str = true;
    cases.emplace_back("iv as str", Msgpack(p));
  }
  {
    auto p = good;
    p.alg_as_bin = true;
    cases.emplace_back("algorithm as bin", Msgpack(p));
  }
  {
    auto p = good;
    p.iv.pop_back();
    cases.emplace_back("short iv", Msgpack(p));
  }
  {
    auto p = good;
    p.nonce.push_back(0);
    cases.emplace_back("long nonce", Msgpack(p));
  }
  {
    auto m = Msgpack(good);
    m.push_back(0xc0);
    cases.emplace_back("trailing byte", m);
  }
  {
    auto m = Msgpack(good);
    m.resize(m.size() - 5);
    cases.emplace_back("truncated", m);
  }
  {
    auto m = Msgpack(good);
    m[m.size() - good.bytes.size() - 1] = 0xff;  // bytes length beyond the end
    cases.emplace_back("length overflow", m);
  }
  cases.emplace_back("lone header", std::vector<uint8_t>{0x95});
  for (const auto& [name, ct] : cases) {
    SCOPED_TRACE(name);
    EXPECT_EQ(key.Decrypt(ct, {}).status(), Status::NotAuthentic());
  }
}

TEST(DecryptJson, GoLikeFieldNamesAndMalformedInput) {
  const SecretKey key = ZeroKey(KeyType::kAES256);
  auto raw = key.Encrypt(Bytes("hello"), {});
  ASSERT_TRUE(raw.ok());
  const auto p = PartsOf(*raw);
  const std::string iv = Base64Encode(p.iv), nonce = Base64Encode(p.nonce),
                    bytes = Base64Encode(p.bytes);
  auto json = [&](const std::string& s) { return Bytes(s); };
  // Case-insensitive names, unknown fields ignored.
  auto ok =
      key.Decrypt(json(R"({"AEAD":"AES-256-GCM-HMAC-SHA-256","Iv":")" + iv + R"(","NONCE":")" +
                       nonce + R"(","Bytes":")" + bytes + R"(","extra":1})"),
                  {});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ToVec(ok->span()), Bytes("hello"));

  const std::vector<std::string> bad = {
      R"({"aead":"AES-256-GCM-HMAC-SHA-256","iv":")" + iv + R"(","nonce":")" + nonce +
          R"(","bytes":")" + bytes + R"(")",
      R"({"aead":"AES-256-GCM-HMAC-SHA-256","iv":")" + iv + R"(","nonce":")" + nonce +
          R"(","bytes":"!!!"})",
      R"({"aead":"AES-256-GCM-HMAC-SHA-256","iv":1,"nonce":")" + nonce + R"(","bytes":")" + bytes +
          R"("})",
      R"({"aead":"AES-256-GCM-HMAC-SHA-256","nonce":")" + nonce + R"(","bytes":")" + bytes +
          R"("})",
      R"({"aead":"aes-256-gcm-hmac-sha-256","iv":")" + iv + R"(","nonce":")" + nonce +
          R"(","bytes":")" + bytes + R"("})",
      "{}",
      "{",
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(b);
    EXPECT_EQ(key.Decrypt(json(b), {}).status(), Status::NotAuthentic());
  }
}

// crypto.md §6.5: a key stored without "algorithm" follows the algorithm a
// legacy ciphertext names; a typed key uses its own type.
TEST(DecryptLegacy, UntypedKeyFollowsRecordedAlgorithm) {
  const Json* chacha_json = nullptr;
  for (const auto& v : VectorGroup("secret_key_decrypt")) {
    if (v.at("id") == "secret-key-decrypt-1") chacha_json = &v;
  }
  ASSERT_NE(chacha_json, nullptr);
  const auto ct = B64(chacha_json->at("input").at("ciphertext_b64"));
  const std::string key_b64 = chacha_json->at("input").at("key_b64").get<std::string>();

  auto untyped = ParseKeyVersion(R"({"bytes":")" + key_b64 + R"("})");
  ASSERT_TRUE(untyped.ok());
  EXPECT_TRUE(untyped->key.untyped());
  EXPECT_EQ(untyped->key.type(), KeyType::kAES256);
  auto pt = untyped->key.Decrypt(ct, {});
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ(ToVec(pt->span()), B64(chacha_json->at("expected").at("plaintext_b64")));

  auto typed = ParseKeyVersion(R"({"bytes":")" + key_b64 + R"(","algorithm":"AES256-GCM_SHA256"})");
  ASSERT_TRUE(typed.ok());
  EXPECT_FALSE(typed->key.untyped());
  EXPECT_EQ(typed->key.Decrypt(ct, {}).status(), Status::NotAuthentic());
  // New ciphertexts from an untyped key are AES256 ones.
  auto fresh = untyped->key.Encrypt(Bytes("x"), {});
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(typed->key.Decrypt(*fresh, {}).ok());
  EXPECT_TRUE(untyped->key.Clone().untyped());
}

// ---- stored keys --------------------------------------------------------------

TEST(KeyVersionCodec, NewKeyVersionRoundTrips) {
  for (KeyType type : {KeyType::kAES256, KeyType::kChaCha20}) {
    auto kv =
        NewKeyVersion(type, "3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22");
    ASSERT_TRUE(kv.ok());
    ASSERT_TRUE(kv->hmac.has_value());
    EXPECT_EQ(kv->created_at.utc_offset, 0);
    auto text = EncodeKeyVersion(*kv);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(text->front(), 'C');
    auto back = ParseKeyVersion(*text);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->key.type(), type);
    EXPECT_EQ(ToVec(back->key.bytes()), ToVec(kv->key.bytes()));
    EXPECT_EQ(back->created_at, kv->created_at);
    // Go's decoder tolerates a trailing newline; so do we.
    EXPECT_TRUE(ParseKeyVersion(*text + "\n").ok());
    EXPECT_TRUE(ParseKeyVersion(text->substr(0, 10) + "\r\n" + text->substr(10)).ok());
  }
}

TEST(KeyVersionCodec, EncodingOmitsZeroScalars) {
  // keystores.md §2.1 worked example: zero nanos and the creator "disabled".
  std::vector<uint8_t> key(32), hmac(32);
  for (int i = 0; i < 32; ++i) {
    key[i] = static_cast<uint8_t>(i);
    hmac[i] = static_cast<uint8_t>(0x20 + i);
  }
  auto created = Timestamp::ParseRfc3339("2024-01-01T00:00:00Z");
  ASSERT_TRUE(created.has_value());
  KeyVersion kv{std::move(*SecretKey::Make(KeyType::kAES256, key)), std::move(*HMACKey::Make(hmac)),
                *created, "disabled"};
  auto text = EncodeKeyVersion(kv);
  ASSERT_TRUE(text.ok());
  auto raw = Base64Decode(*text);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 94u);
  EXPECT_EQ(HexEncode(*raw), "0a240a20" + HexEncode(key) + "100112240a20" + HexEncode(hmac) +
                                 "10011a06088081c8ac06220864697361626c6564");
  kv.created_by.clear();
  kv.created_at = Timestamp{};
  auto minimal = EncodeKeyVersion(kv);
  ASSERT_TRUE(minimal.ok());
  auto min_raw = Base64Decode(*minimal);
  ASSERT_TRUE(min_raw.has_value());
  // Empty Timestamp message still present ("1a 00"), no CreatedBy.
  EXPECT_EQ(HexEncode(*min_raw).substr(HexEncode(*min_raw).size() - 4), "1a00");
}

std::string EncodePb(const miniohq::kms::KeyVersion& pb) {
  std::string raw;
  pb.SerializeToString(&raw);
  return Base64Encode(raw);
}

miniohq::kms::KeyVersion ValidPb() {
  miniohq::kms::KeyVersion pb;
  pb.mutable_key()->set_key(std::string(32, 'k'));
  pb.mutable_key()->set_type(1);
  pb.mutable_hmackey()->set_key(std::string(32, 'h'));
  pb.mutable_hmackey()->set_hash(1);
  return pb;
}

TEST(KeyVersionCodec, CorruptProtobufKeysAreRejected) {
  EXPECT_TRUE(ParseKeyVersion(EncodePb(ValidPb())).ok());
  {
    auto pb = ValidPb();
    pb.mutable_key()->set_type(3);  // unknown key type
    auto kv = ParseKeyVersion(EncodePb(pb));
    ASSERT_FALSE(kv.ok());
    EXPECT_EQ(kv.status().message(), "crypto: invalid secret key type '3'");
  }
  {
    auto pb = ValidPb();
    pb.mutable_key()->set_type(0);
    EXPECT_FALSE(ParseKeyVersion(EncodePb(pb)).ok());
  }
  {
    auto pb = ValidPb();
    pb.mutable_key()->set_key(std::string(31, 'k'));
    auto kv = ParseKeyVersion(EncodePb(pb));
    ASSERT_FALSE(kv.ok());
    EXPECT_EQ(kv.status().message(), "crypto: invalid secret key length '31'");
  }
  {
    auto pb = ValidPb();
    pb.mutable_hmackey()->set_hash(2);
    auto kv = ParseKeyVersion(EncodePb(pb));
    ASSERT_FALSE(kv.ok());
    EXPECT_EQ(kv.status().message(), "crypto: invalid HMAC key hash '2'");
  }
  {
    auto pb = ValidPb();
    pb.mutable_hmackey()->set_key(std::string(33, 'h'));
    auto kv = ParseKeyVersion(EncodePb(pb));
    ASSERT_FALSE(kv.ok());
    EXPECT_EQ(kv.status().message(), "crypto: invalid HMAC key length '33'");
  }
  {
    auto pb = ValidPb();
    pb.clear_hmackey();
    EXPECT_FALSE(ParseKeyVersion(EncodePb(pb)).ok());
  }
  {
    auto pb = ValidPb();
    pb.clear_key();
    EXPECT_FALSE(ParseKeyVersion(EncodePb(pb)).ok());
  }
  {
    auto pb = ValidPb();  // missing CreatedAt reads as the Unix epoch
    auto kv = ParseKeyVersion(EncodePb(pb));
    ASSERT_TRUE(kv.ok());
    EXPECT_EQ(kv->created_at.ToRfc3339(), "1970-01-01T00:00:00Z");
  }
  {
    // proto3 strings must be UTF-8 (Go's decoder refuses them as well).
    std::string raw;
    ASSERT_TRUE(ValidPb().SerializeToString(&raw));
    EXPECT_TRUE(ParseKeyVersion(Base64Encode(raw + "\x22\x02me")).ok());
    EXPECT_FALSE(ParseKeyVersion(Base64Encode(raw + "\x22\x01\xff")).ok());
    // Unknown fields are skipped; the last value of a field wins.
    auto kv = ParseKeyVersion(Base64Encode(raw + "\x2a\x01x" +
                                           "\x22\x01"
                                           "a"
                                           "\x22\x01"
                                           "b"));
    ASSERT_TRUE(kv.ok());
    EXPECT_EQ(kv->created_by, "b");
  }
  // Bad base64 and bad wire format.
  EXPECT_FALSE(ParseKeyVersion("CiQKI!!!").ok());
  EXPECT_FALSE(ParseKeyVersion("CiQ=").ok());
  EXPECT_FALSE(ParseKeyVersion("").ok());
  const std::string good = EncodePb(ValidPb());
  EXPECT_FALSE(ParseKeyVersion(good.substr(0, good.size() - 8)).ok());
}

// Values starting with 'C' skip the JSON attempt (no JSON text starts so);
// any other start still decides by trying JSON first (§4.2).
TEST(KeyVersionCodec, ProtobufDetectionByFirstByte) {
  auto kv = NewKeyVersion(KeyType::kAES256, "me");
  ASSERT_TRUE(kv.ok());
  auto encoded = EncodeKeyVersion(*kv);
  ASSERT_TRUE(encoded.ok());
  ASSERT_EQ(encoded->front(), 'C');
  auto parsed = ParseKeyVersion(*encoded);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(ToVec(parsed->key.bytes()), ToVec(kv->key.bytes()));
  auto newline_first = ParseKeyVersion("\r\n" + *encoded + "\n");  // Go base64 skips CR/LF
  ASSERT_TRUE(newline_first.ok()) << newline_first.status().message();
  EXPECT_EQ(newline_first->created_by, "me");
  EXPECT_FALSE(ParseKeyVersion("C").ok());
  EXPECT_FALSE(
      ParseKeyVersion(R"(C{"bytes":"J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E="})").ok());

  // Only text that can start a JSON value (after JSON whitespace) goes to the
  // legacy parser; everything else is base64 protobuf.
  const std::string b = "J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=";
  auto spaced = ParseKeyVersion(" \t\r\n{\"bytes\":\"" + b + "\"}\n");
  ASSERT_TRUE(spaced.ok()) << spaced.status().message();
  EXPECT_TRUE(spaced->key.untyped());
  auto number = ParseKeyVersion("12");
  ASSERT_FALSE(number.ok());
  EXPECT_EQ(number.status().message(),
            "json: cannot unmarshal number into Go value of type crypto.KeyVersion");
  auto null = ParseKeyVersion("null");
  ASSERT_FALSE(null.ok());
  EXPECT_EQ(null.status().message(), "crypto: invalid key length '0' for 'AES256'");
  // Protobuf with only the HMAC key (field 2, tag 0x12: base64 starts 'E').
  miniohq::kms::KeyVersion pb;
  pb.mutable_hmackey()->set_key(std::string(32, 'h'));
  pb.mutable_hmackey()->set_hash(1);
  const std::string only_hmac = Base64Encode(pb.SerializeAsString());
  ASSERT_EQ(only_hmac.front(), 'E');
  auto no_key = ParseKeyVersion(only_hmac);
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.status().message(), "crypto: stored key has no secret key");
}

TEST(KeyVersionCodec, LegacyJsonRules) {
  const std::string b = "J8qmOyEV2ce2yoAC+5t0Y7CSP/hTMppL7XHpAnyc+0E=";
  {
    auto kv = ParseKeyVersion(R"({"bytes":")" + b + R"(","algorithm":"undefined"})");
    ASSERT_FALSE(kv.ok());
    EXPECT_EQ(kv.status().message(), "crypto: secret key type 'undefined' is not supported");
  }
  {
    auto kv = ParseKeyVersion(R"({"bytes":"AAAA"})");
    ASSERT_FALSE(kv.ok());
    EXPECT_EQ(kv.status().message(), "crypto: invalid key length '3' for 'AES256'");
  }
  EXPECT_FALSE(ParseKeyVersion(R"({"bytes":"not base64"})").ok());
  EXPECT_FALSE(ParseKeyVersion(R"({"bytes":42})").ok());
  EXPECT_FALSE(ParseKeyVersion(R"({})").ok());
  EXPECT_FALSE(ParseKeyVersion(R"([1,2])").ok());
  EXPECT_FALSE(ParseKeyVersion(R"("text")").ok());
  EXPECT_FALSE(ParseKeyVersion(R"({"bytes":")" + b + R"(","created_at":"yesterday"})").ok());
  {
    // Go applies members in document order: the last spelling wins.
    auto kv =
        ParseKeyVersion(R"({"Algorithm":"ChaCha20","algorithm":"AES256","bytes":")" + b + R"("})");
    ASSERT_TRUE(kv.ok());
    EXPECT_EQ(kv->key.type(), KeyType::kAES256);
    kv = ParseKeyVersion(R"({"algorithm":"AES256","ALGORITHM":"ChaCha20","bytes":")" + b + R"("})");
    ASSERT_TRUE(kv.ok());
    EXPECT_EQ(kv->key.type(), KeyType::kChaCha20);
  }
  {
    // Case-insensitive names, surrounding whitespace, unknown fields, offset kept.
    auto kv = ParseKeyVersion(
        "  \n{\"Version\":\"v1\",\"BYTES\":\"" + b +
        "\",\"Algorithm\":\"ChaCha20\",\"Created_At\":\"2023-05-06T07:08:09.5-07:00\","
        "\"created_by\":\"me\"}\n");
    ASSERT_TRUE(kv.ok()) << kv.status().message();
    EXPECT_EQ(kv->key.type(), KeyType::kChaCha20);
    EXPECT_EQ(kv->created_at.ToRfc3339(), "2023-05-06T07:08:09.5-07:00");
    EXPECT_EQ(kv->created_by, "me");
    EXPECT_FALSE(kv->hmac.has_value());
    EXPECT_FALSE(EncodeKeyVersion(*kv).ok());  // legacy keys are never re-encoded
  }
}

// ---- key types ------------------------------------------------------------------

TEST(KeyTypes, NamesAndParsing) {
  EXPECT_EQ(ParseKeyType("AES256"), KeyType::kAES256);
  EXPECT_EQ(ParseKeyType("AES256-GCM_SHA256"), KeyType::kAES256);
  EXPECT_EQ(ParseKeyType("ChaCha20"), KeyType::kChaCha20);
  EXPECT_EQ(ParseKeyType("XCHACHA20-POLY1305"), KeyType::kChaCha20);
  for (const char* bad :
       {"", "aes256", "CHACHA20", "AES-256-GCM", "ChaCha20Poly1305", "undefined"}) {
    EXPECT_FALSE(ParseKeyType(bad).has_value()) << bad;
  }
  EXPECT_EQ(KeyTypeName(KeyType::kAES256), "AES256");
  EXPECT_EQ(KeyTypeName(KeyType::kChaCha20), "ChaCha20");
  EXPECT_FALSE(SecretKey::Make(static_cast<KeyType>(3), std::vector<uint8_t>(32)).ok());
  EXPECT_FALSE(SecretKey::Make(KeyType::kAES256, std::vector<uint8_t>(16)).ok());
}

TEST(KeyTypes, DefaultFollowsCpuFeatures) {
#if defined(__x86_64__)
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  bool aes = false, pclmul = false;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    aes = line.find(" aes ") != std::string::npos || line.ends_with(" aes");
    pclmul = line.find(" pclmulqdq") != std::string::npos;
    break;
  }
  EXPECT_EQ(DefaultKeyType(), aes && pclmul ? KeyType::kAES256 : KeyType::kChaCha20);
#else
  const KeyType t = DefaultKeyType();
  EXPECT_TRUE(t == KeyType::kAES256 || t == KeyType::kChaCha20);
#endif
}

// ---- encodings, secrets, time ------------------------------------------------------

TEST(Base64, StandardWithPaddingLikeGo) {
  EXPECT_EQ(Base64Encode(std::string_view("")), "");
  EXPECT_EQ(Base64Encode(std::string_view("f")), "Zg==");
  EXPECT_EQ(Base64Encode(std::string_view("fo")), "Zm8=");
  EXPECT_EQ(Base64Encode(std::string_view("foo")), "Zm9v");
  EXPECT_EQ(Base64Encode(std::string_view("\xfb\xff")), "+/8=");
  EXPECT_EQ(Base64Decode("Zm9vYg=="), Bytes("foob"));
  EXPECT_EQ(Base64Decode("Zm9v\r\nYmFy\n"), Bytes("foobar"));
  EXPECT_EQ(Base64Decode(""), std::vector<uint8_t>{});
  EXPECT_EQ(Base64Decode("\n"), std::vector<uint8_t>{});
  for (const char* bad : {"Zm9vYg", "Zm9vYg=", "Zm9vY===", "Zm9v=Yg=", "Zm9vYg==Zg==", "Zm9v Yg==",
                          "Zm9-Yg==", "Zm9_", "Z", "Zm9vYg==\x01", "====", "Zg=a"}) {
    EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
  }
}

TEST(Base64, ErrorsNameTheOffsetLikeGo) {
  auto msg = [](std::string_view t) { return Base64DecodeWithError(t).status().message(); };
  EXPECT_EQ(msg("Zm9v!mFy"), "illegal base64 data at input byte 4");
  EXPECT_EQ(msg("Zm9vYg"), "illegal base64 data at input byte 4");
  EXPECT_EQ(msg("Z==="), "illegal base64 data at input byte 1");
  EXPECT_EQ(msg("Zg==Zg=="), "illegal base64 data at input byte 4");
  EXPECT_TRUE(Base64DecodeWithError("Zg==\r\n").ok());
}

TEST(Hex, LowercaseOutAnyCaseIn) {
  const std::vector<uint8_t> b = {0x00, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "00abff");
  EXPECT_EQ(HexDecode("00ABff"), b);
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
}

TEST(SecretBytesTest, MoveClearsSourceAndCompareIsExact) {
  SecretBytes a(std::vector<uint8_t>{1, 2, 3});
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.size(), 3u);
  SecretBytes c = b.Clone();
  EXPECT_TRUE(ConstantTimeEqual(b.span(), c.span()));
  c.data()[2] = 4;
  EXPECT_FALSE(ConstantTimeEqual(b.span(), c.span()));
  EXPECT_FALSE(ConstantTimeEqual(std::string_view("abc"), std::string_view("abcd")));
  EXPECT_TRUE(ConstantTimeEqual(std::string_view(""), std::string_view("")));
  c.Resize(8);
  EXPECT_EQ(ToVec(c.span()), std::vector<uint8_t>(8, 0));
  c.Clear();
  EXPECT_TRUE(c.empty());
}

TEST(SecretBytesTest, SecretArrayMoveZeroizesSourceAndCloneCopies) {
  const std::array<uint8_t, 4> raw{9, 8, 7, 6};
  SecretArray<4> a(raw);
  EXPECT_EQ(ToVec(a.span()), ToVec(raw));
  SecretArray<4> b = std::move(a);
  EXPECT_EQ(ToVec(a.span()), std::vector<uint8_t>(4, 0));  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(ToVec(b.span()), ToVec(raw));
  SecretArray<4> c = b.Clone();
  EXPECT_EQ(ToVec(c.span()), ToVec(raw));
  SecretArray<4> d;
  EXPECT_EQ(ToVec(d.span()), std::vector<uint8_t>(4, 0));
  d = std::move(c);
  EXPECT_EQ(ToVec(d.span()), ToVec(raw));
  EXPECT_EQ(ToVec(c.span()), std::vector<uint8_t>(4, 0));  // NOLINT(bugprone-use-after-move)
  static_assert(sizeof(SecretArray<32>) == 32);            // inline, no heap block
}

TEST(SharedStringTest, EqualTextIsSharedAndBehavesLikeAString) {
  const std::string creator(64, 'e');
  SharedString a(creator), b{std::string_view(creator)};
  EXPECT_EQ(a, creator);
  EXPECT_EQ(a.view().data(), b.view().data());  // one copy for both
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a.str(), creator);
  EXPECT_EQ(SharedString().str(), "");
  SharedString other("someone else");
  EXPECT_FALSE(other == creator);
  EXPECT_NE(other.view().data(), a.view().data());
  SharedString empty("");
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty, "");
  const std::string huge(4096, 'h');  // too long to intern: still correct
  SharedString h1(huge), h2(huge);
  EXPECT_EQ(h1, huge);
  EXPECT_EQ(h2, huge);
  a.clear();
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(b, creator);  // clearing one holder leaves the others
  // Parsed key versions share their creator.
  auto kv = NewKeyVersion(KeyType::kAES256, creator);
  ASSERT_TRUE(kv.ok());
  auto p1 = ParseKeyVersion(EncodeKeyVersion(*kv).value());
  auto p2 = ParseKeyVersion(EncodeKeyVersion(*kv).value());
  ASSERT_TRUE(p1.ok() && p2.ok());
  EXPECT_EQ(p1->created_by, creator);
  EXPECT_EQ(p1->created_by.view().data(), p2->created_by.view().data());
}

TEST(Random, ProducesDistinctOutput) {
  std::array<uint8_t, 32> a{}, b{};
  ASSERT_TRUE(RandomBytes(a).ok());
  ASSERT_TRUE(RandomBytes(b).ok());
  EXPECT_NE(a, b);
}

TEST(TimestampTest, FormatsLikeGoRfc3339Nano) {
  EXPECT_EQ(Timestamp::GoZero().ToRfc3339(), "0001-01-01T00:00:00Z");
  EXPECT_EQ(Timestamp{}.ToRfc3339(), "1970-01-01T00:00:00Z");
  EXPECT_EQ((Timestamp{1705055960, 886816000, 0}).ToRfc3339(), "2024-01-12T10:39:20.886816Z");
  EXPECT_EQ((Timestamp{1705055960, 886816000, 3600}).ToRfc3339(),
            "2024-01-12T11:39:20.886816+01:00");
  EXPECT_EQ((Timestamp{1705055960, 1, -19800}).ToRfc3339(), "2024-01-12T05:09:20.000000001-05:30");
  EXPECT_EQ((Timestamp{-1, 0, 0}).ToRfc3339(), "1969-12-31T23:59:59Z");
}

TEST(TimestampTest, ParsesRfc3339) {
  auto t = Timestamp::ParseRfc3339("2024-01-12T11:39:20.886816+01:00");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->seconds, 1705055960);
  EXPECT_EQ(t->nanos, 886816000);
  EXPECT_EQ(t->utc_offset, 3600);
  auto zero = Timestamp::ParseRfc3339("0001-01-01T00:00:00Z");
  ASSERT_TRUE(zero.has_value());
  EXPECT_EQ(*zero, Timestamp::GoZero());
  auto leap = Timestamp::ParseRfc3339("2024-02-29T23:59:59.999999999Z");
  ASSERT_TRUE(leap.has_value());
  EXPECT_EQ(leap->ToRfc3339(), "2024-02-29T23:59:59.999999999Z");
  for (const char* bad :
       {"", "2024-01-12", "2024-01-12T11:39:20", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
        "2024-01-12T24:00:00Z", "2024-01-12T11:39:20.Z", "2024-01-12T11:39:20+0100",
        "2024-01-12 11:39:20Z", "2024-01-12T11:39:20Zx"}) {
    EXPECT_FALSE(Timestamp::ParseRfc3339(bad).has_value()) << bad;
  }
  const auto now = Timestamp::Now();
  EXPECT_GE(now.nanos, 0);
  EXPECT_LT(now.nanos, 1'000'000'000);
}

}  // namespace
}  // namespace kes::crypto
