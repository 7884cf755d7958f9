// Key versions (rotation.md): the ciphertext header codec (§5.1), the
// version-entry and configuration-record codecs with the spec's examples
// (§4.2, §4.3), and ring loading / rotation over the in-memory keystore
// (§4.4-§4.7).
#include "keystore/key_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <numeric>

#include "crypto/encoding.h"
#include "crypto/versioned_ciphertext.h"
#include "keystore/memory/memory_keystore.h"

namespace kes::keystore {
namespace {

// The §4.2 example: crypto.md §4.1's material as version 2.
constexpr std::string_view kVersion2Entry =
    "CiQKIMiHG7XrN94FuwblJJor4f7f6rbqAl7DwsLaiIoyz0D2EAESJAognLXl4yqa4cjZTcSbsU6sNnN8kP9ARWkXwa20Y"
    "QZa9HgQARoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc1MzM2NWE0Njc2MGFlNm"
    "I1Nzg2OThhOTdjNTlmZDIyKAIyEJVBRbS084bn+MQUL9pkno4=";
constexpr std::string_view kConfig1 =
    "CAEQAhoMCNithK0GEID67qYDIkAzZWNmY2RmMzhmY2JlMTQxYWUyNmExMDMwZjgxZTk2Yjc1MzM2NWE0Njc2MGFlNmI1N"
    "zg2OThhOTdjNTlmZDIyKhCVQUW0tPOG5/jEFC/aZJ6O";
constexpr std::string_view kGenesisHex = "954145b4b4f386e7f8c4142fda649e8e";

std::string Hex(const Genesis& g) { return crypto::HexEncode(g); }

TEST(VersionHeader, SpecLayoutExample) {
  // crypto.md §5.3's vector encrypted as version 2 gives §5.1's example.
  auto key_bytes = crypto::Base64Decode("yIcbtes33gW7BuUkmivh/t/qtuoCXsPCwtqIijLPQPY=");
  ASSERT_TRUE(key_bytes);
  auto key = crypto::SecretKey::Make(crypto::KeyType::kAES256, *key_bytes);
  ASSERT_TRUE(key.ok());
  std::array<uint8_t, 16> iv;
  std::array<uint8_t, 12> nonce;
  std::vector<uint8_t> plaintext(32);
  std::iota(iv.begin(), iv.end(), 0);
  std::iota(nonce.begin(), nonce.end(), 0x10);
  std::iota(plaintext.begin(), plaintext.end(), 0);
  const std::string_view ctx = R"({"bucket":"my-bucket"})";
  const std::span<const uint8_t> context(reinterpret_cast<const uint8_t*>(ctx.data()), ctx.size());
  auto ct = key->EncryptWith(iv, nonce, plaintext, context);
  ASSERT_TRUE(ct.ok());
  crypto::AddVersionHeader(2, *ct);
  EXPECT_EQ(crypto::Base64Encode(*ct),
            "a2VzdgAAAAJTkiMuIRPOwTtxur+ilNiS4nmczNWsOoZVFCVXVeiqpTmWnZlyCgQ0ynN8/l5NvTIAAQIDBAUGBw"
            "gJCgsMDQ4PEBESExQVFhcYGRob");
  auto header = crypto::ParseVersionHeader(*ct);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->version, 2u);
  auto pt = key->DecryptRaw(header->body, context);
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ(std::vector<uint8_t>(pt->span().begin(), pt->span().end()), plaintext);
}

TEST(VersionHeader, RejectsWhatIsNotAHeader) {
  std::vector<uint8_t> ct(44, 0xab);
  crypto::AddVersionHeader(7, ct);
  ASSERT_EQ(ct.size(), 52u);
  EXPECT_EQ(crypto::ParseVersionHeader(ct)->version, 7u);
  // Too short for a header plus an empty raw ciphertext.
  EXPECT_FALSE(crypto::ParseVersionHeader(std::span(ct).first(51)));
  // Versions 0 and 1 never carry a header.
  for (uint8_t v : {0, 1}) {
    std::vector<uint8_t> low = ct;
    low[4] = low[5] = low[6] = 0;
    low[7] = v;
    EXPECT_FALSE(crypto::ParseVersionHeader(low));
  }
  std::vector<uint8_t> other = ct;
  other[0] = 'K';
  EXPECT_FALSE(crypto::ParseVersionHeader(other));
  std::vector<uint8_t> big(44);
  crypto::AddVersionHeader(0xfffffffe, big);
  EXPECT_EQ(crypto::ParseVersionHeader(big)->version, 0xfffffffeu);
}

TEST(VersionNumber, WireForm) {
  EXPECT_EQ(ParseVersionNumber("1"), 1u);
  EXPECT_EQ(ParseVersionNumber("4294967295"), 4294967295u);
  for (std::string_view bad : {"", "0", "01", "-1", "+1", "1.0", "abc", "4294967296", " 1"}) {
    EXPECT_FALSE(ParseVersionNumber(bad)) << bad;
  }
}

TEST(EntryNames, OwnerAndShape) {
  EXPECT_EQ(VersionEntryName("my-key", 12), "my-key-v12-");
  EXPECT_EQ(ConfigEntryName("my-key", 1), "my-key-c1-");
  EXPECT_EQ(InternalEntryOwner("my-key-v12-"), "my-key");
  EXPECT_EQ(InternalEntryOwner("a-c1-"), "a");
  EXPECT_FALSE(InternalEntryOwner("my-key"));
  EXPECT_FALSE(InternalEntryOwner("my-key-x2-"));
  EXPECT_FALSE(InternalEntryOwner("my-key-v02-"));
  EXPECT_FALSE(InternalEntryOwner("-v2-"));
}

TEST(VersionEntry, SpecExampleRoundTrips) {
  auto e = ParseVersionEntry(kVersion2Entry);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->number, 2u);
  EXPECT_EQ(Hex(e->genesis), kGenesisHex);
  // The example reuses version 1's material, so its genesis is its own.
  EXPECT_EQ(Hex(RingGenesis(e->key)), kGenesisHex);
  auto encoded = EncodeVersionEntry(e->key, 2, e->genesis);
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(*encoded, kVersion2Entry);
  // The version-1 parser reads the same value (fields 5 and 6 are unknown to it).
  EXPECT_TRUE(crypto::ParseKeyVersion(kVersion2Entry).ok());
}

TEST(KeyConfigRecord, SpecExampleRoundTrips) {
  auto c = ParseKeyConfig(kConfig1);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->sequence, 1u);
  EXPECT_EQ(c->min_decryption_version, 2u);
  EXPECT_EQ(Hex(c->genesis), kGenesisHex);
  auto encoded = EncodeKeyConfig(*c);
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(*encoded, kConfig1);
}

// §11 item 5: a version-1 raw ciphertext that happens to start with a valid
// header naming an existing version 2 still decrypts, through candidate (b).
// AES-GCM encrypts by XOR with a keystream fixed by key, iv and nonce, so
// the plaintext that makes the first 8 bytes "kesv" 00 00 00 02 is chosen
// from an encryption of zeros under the same iv and nonce.
TEST(RingDecrypt, HeaderCollisionFallsBackToVersionOne) {
  auto v1 = crypto::NewKeyVersion(crypto::KeyType::kAES256, "creator");
  auto v2 = crypto::NewKeyVersion(crypto::KeyType::kAES256, "creator");
  ASSERT_TRUE(v1.ok() && v2.ok());
  std::array<uint8_t, 16> iv;
  std::array<uint8_t, 12> nonce;
  std::iota(iv.begin(), iv.end(), 0);
  std::iota(nonce.begin(), nonce.end(), 0x10);
  const std::vector<uint8_t> context = {'c', 't', 'x'};
  auto keystream = v1->key.EncryptWith(iv, nonce, std::vector<uint8_t>(16, 0), context);
  ASSERT_TRUE(keystream.ok());
  const std::array<uint8_t, 8> header = {'k', 'e', 's', 'v', 0, 0, 0, 2};
  std::vector<uint8_t> plaintext(16, 0x5a);
  for (size_t i = 0; i < header.size(); ++i) plaintext[i] = (*keystream)[i] ^ header[i];
  auto ct = v1->key.EncryptWith(iv, nonce, plaintext, context);
  ASSERT_TRUE(ct.ok());
  ASSERT_TRUE(std::equal(header.begin(), header.end(), ct->begin()));
  auto candidate = crypto::ParseVersionHeader(*ct);
  ASSERT_TRUE(candidate);
  EXPECT_EQ(candidate->version, 2u);

  KeyRing ring;
  ring.versions.push_back(std::move(*v1));
  ring.versions.push_back(std::move(*v2));
  auto pt = DecryptWithRing(ring, *ct, context);
  ASSERT_TRUE(pt.ok()) << pt.status().message();
  EXPECT_EQ(pt->version, 1u);
  EXPECT_EQ(std::vector<uint8_t>(pt->plaintext.span().begin(), pt->plaintext.span().end()),
            plaintext);
  // With version 1 disabled the same input is authentic but refused.
  ring.min_decryption_version = 2;
  EXPECT_EQ(DecryptWithRing(ring, *ct, context).status(), BelowMinimumDecryption());
}

class RingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto v1 = crypto::NewKeyVersion(crypto::KeyType::kAES256, "creator");
    ASSERT_TRUE(v1.ok());
    auto encoded = crypto::EncodeKeyVersion(*v1);
    ASSERT_TRUE(encoded.ok());
    ASSERT_TRUE(store_->Create("k", *encoded, kNoDeadline).ok());
  }
  std::unique_ptr<KeyStore> store_ = NewMemoryKeyStore();
};

TEST_F(RingTest, NeverRotatedKeyIsOneVersion) {
  auto ring = LoadKeyRing(*store_, "k", kNoDeadline);
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(ring->latest(), 1u);
  EXPECT_FALSE(ring->rotated());
  EXPECT_EQ(ring->min_decryption_version, 1u);
  EXPECT_EQ(LoadKeyRing(*store_, "missing", kNoDeadline).status().code(), Code::kNotFound);
}

TEST_F(RingTest, RotationsAndConfigurationsLoad) {
  for (uint32_t want = 2; want <= 5; ++want) {
    auto r = RotateKeyRing(*store_, "k", "me", kNoDeadline);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->number, want);
  }
  ASSERT_TRUE(ConfigureKeyRing(*store_, "k", 3, "me", kNoDeadline).ok());
  ASSERT_TRUE(ConfigureKeyRing(*store_, "k", 4, "me", kNoDeadline).ok());
  ASSERT_TRUE(ConfigureKeyRing(*store_, "k", 2, "me", kNoDeadline).ok());
  auto bad = ConfigureKeyRing(*store_, "k", 6, "me", kNoDeadline);
  EXPECT_EQ(bad.status().message(), "minimum decryption version must be between 1 and 5");
  auto ring = LoadKeyRing(*store_, "k", kNoDeadline);
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(ring->latest(), 5u);
  EXPECT_EQ(ring->min_decryption_version, 2u);
  EXPECT_EQ(ring->config_sequence, 3u);
  EXPECT_EQ(ring->version(5)->created_by, "me");

  // Ciphertexts of every version open; the latest carries its header.
  const std::vector<uint8_t> msg = {1, 2, 3};
  for (uint32_t v = 2; v <= 5; ++v) {
    auto ct = EncryptWithRing(*ring, v, msg, {});
    ASSERT_TRUE(ct.ok());
    EXPECT_EQ((*ct)[7], v);
    auto pt = DecryptWithRing(*ring, *ct, {});
    ASSERT_TRUE(pt.ok());
    EXPECT_EQ(pt->version, v);
  }
  auto v1 = EncryptWithRing(*ring, 1, msg, {});
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->size(), msg.size() + 44);
  EXPECT_EQ(DecryptWithRing(*ring, *v1, {}).status().message(),
            "decryption failed: key version is below the minimum decryption version");
}

TEST_F(RingTest, OrphansAreIgnoredAndCorruptEntriesFail) {
  // An entry of another incarnation (other genesis) is absent to this ring.
  auto other = crypto::NewKeyVersion(crypto::KeyType::kAES256, "x");
  ASSERT_TRUE(other.ok());
  Genesis foreign{};
  foreign[0] = 1;
  auto orphan = EncodeVersionEntry(*other, 2, foreign);
  ASSERT_TRUE(orphan.ok());
  ASSERT_TRUE(store_->Create("k-v2-", *orphan, kNoDeadline).ok());
  auto ring = LoadKeyRing(*store_, "k", kNoDeadline);
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(ring->latest(), 1u);
  // A rotation replaces it.
  auto r = RotateKeyRing(*store_, "k", "me", kNoDeadline);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->number, 2u);

  // Right genesis, wrong number: corrupt.
  auto genesis = LoadKeyRing(*store_, "k", kNoDeadline)->genesis;
  auto misnumbered = EncodeVersionEntry(*other, 4, genesis);
  ASSERT_TRUE(store_->Create("k-v3-", *misnumbered, kNoDeadline).ok());
  EXPECT_EQ(LoadKeyRing(*store_, "k", kNoDeadline).status().code(), Code::kUnavailable);
  ASSERT_TRUE(store_->Delete("k-v3-", kNoDeadline).ok());
  ASSERT_TRUE(store_->Create("k-v3-", "garbage", kNoDeadline).ok());
  EXPECT_EQ(LoadKeyRing(*store_, "k", kNoDeadline).status().code(), Code::kUnavailable);
  ASSERT_TRUE(store_->Delete("k-v3-", kNoDeadline).ok());

  // Deleting sweeps every internal entry.
  ASSERT_TRUE(store_->Delete("k", kNoDeadline).ok());
  RemoveInternalEntries(*store_, "k", std::nullopt, kNoDeadline);
  auto left = store_->List("", 0, kNoDeadline);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->names.empty());
}

// A keystore whose create is check-then-write (Vault K/V v1, §4.8): another
// node writes the same internal entry just after this one's create.
class OverwrittenStore : public KeyStore {
 public:
  explicit OverwrittenStore(KeyStore& inner) : inner_(inner) {}
  std::string DisplayName() const override { return "overwritten"; }
  Result<KeyStoreState> Status(Deadline d) override { return inner_.Status(d); }
  kes::Status Create(std::string_view name, std::string_view value, Deadline d) override {
    KES_TRY(inner_.Create(name, value, d));
    if (!IsInternalEntryName(name)) return kes::Status::Ok();
    KES_TRY(inner_.Delete(name, d));
    return inner_.Create(name, std::string(value) + "x", d);  // the other node's value
  }
  Result<std::string> Get(std::string_view name, Deadline d) override {
    return inner_.Get(name, d);
  }
  kes::Status Delete(std::string_view name, Deadline d) override { return inner_.Delete(name, d); }
  Result<ListPage> List(std::string_view prefix, int limit, Deadline d) override {
    return inner_.List(prefix, limit, d);
  }

 private:
  KeyStore& inner_;
};

TEST_F(RingTest, AnOverwrittenEntryIsAConflict) {
  OverwrittenStore racy(*store_);
  EXPECT_EQ(RotateKeyRing(racy, "k", "me", kNoDeadline).status(), KeyVersionConflict());
  ASSERT_TRUE(store_->Delete("k-v2-", kNoDeadline).ok());  // the fake's unparsable value
  EXPECT_EQ(ConfigureKeyRing(racy, "k", 1, "me", kNoDeadline).status(), KeyVersionConflict());
  ASSERT_TRUE(store_->Delete("k-c1-", kNoDeadline).ok());
  // Where the create is atomic the read-back agrees.
  EXPECT_TRUE(RotateKeyRing(*store_, "k", "me", kNoDeadline).ok());
  EXPECT_TRUE(ConfigureKeyRing(*store_, "k", 2, "me", kNoDeadline).ok());
}

}  // namespace
}  // namespace kes::keystore
