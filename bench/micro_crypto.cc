// Micro-benchmarks of the per-request crypto path: sealing and opening a
// data encryption key (what /v1/key/generate and /v1/key/decrypt do), the
// HMAC of /v1/key/hmac, and base64 of the JSON bodies.
#include <benchmark/benchmark.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "crypto/hmac_key.h"
#include "crypto/key_version.h"
#include "crypto/random.h"
#include "crypto/secret_key.h"

namespace kes::crypto {
namespace {

SecretKey MakeKey(KeyType type) {
  std::array<uint8_t, 32> bytes{};
  for (size_t i = 0; i < bytes.size(); i++) bytes[i] = static_cast<uint8_t>(i);
  return std::move(SecretKey::Make(type, bytes).value());
}

// The context MinIO sends: a small JSON object naming bucket and object.
const std::vector<uint8_t> kContext = [] {
  std::string_view s = R"({"bucket":"photos","object":"2024/holiday/IMG_0001.jpg"})";
  return std::vector<uint8_t>(s.begin(), s.end());
}();

void BM_SealDEK(benchmark::State& state) {
  SecretKey key = MakeKey(static_cast<KeyType>(state.range(0)));
  std::array<uint8_t, 32> dek{};
  for (auto _ : state) {
    auto ct = key.Encrypt(dek, kContext);
    benchmark::DoNotOptimize(ct);
  }
  state.SetLabel(std::string(KeyTypeName(key.type())));
}
BENCHMARK(BM_SealDEK)
    ->Arg(static_cast<int>(KeyType::kAES256))
    ->Arg(static_cast<int>(KeyType::kChaCha20));

void BM_OpenDEK(benchmark::State& state) {
  SecretKey key = MakeKey(static_cast<KeyType>(state.range(0)));
  std::array<uint8_t, 32> dek{};
  std::vector<uint8_t> ct = key.Encrypt(dek, kContext).value();
  for (auto _ : state) {
    auto pt = key.Decrypt(ct, kContext);
    benchmark::DoNotOptimize(pt);
  }
  state.SetLabel(std::string(KeyTypeName(key.type())));
}
BENCHMARK(BM_OpenDEK)
    ->Arg(static_cast<int>(KeyType::kAES256))
    ->Arg(static_cast<int>(KeyType::kChaCha20));

// generate = 32 random bytes + seal.
void BM_GenerateDEK(benchmark::State& state) {
  SecretKey key = MakeKey(KeyType::kAES256);
  for (auto _ : state) {
    std::array<uint8_t, 32> dek;
    (void)RandomBytes(dek);
    auto ct = key.Encrypt(dek, kContext);
    benchmark::DoNotOptimize(ct);
  }
}
BENCHMARK(BM_GenerateDEK);

// generate as one call: DEK, iv and nonce from a single RandomBytes draw.
void BM_GenerateDataKey(benchmark::State& state) {
  SecretKey key = MakeKey(KeyType::kAES256);
  for (auto _ : state) {
    auto dk = key.GenerateDataKey(kContext);
    benchmark::DoNotOptimize(dk);
  }
}
BENCHMARK(BM_GenerateDataKey);

void BM_RandomBytes32(benchmark::State& state) {
  std::array<uint8_t, 32> buf;
  for (auto _ : state) {
    (void)RandomBytes(buf);
    benchmark::DoNotOptimize(buf);
  }
}
BENCHMARK(BM_RandomBytes32);

void BM_HMAC(benchmark::State& state) {
  std::array<uint8_t, 32> raw{};
  HMACKey key = std::move(HMACKey::Make(raw).value());
  std::vector<uint8_t> msg(static_cast<size_t>(state.range(0)), 'm');
  for (auto _ : state) {
    auto sum = key.Sum(msg);
    benchmark::DoNotOptimize(sum);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_HMAC)->Arg(16)->Arg(1024);

// Reference points for docs/performance.md ("What limits it now"), not
// project code paths: HMAC-SHA256 of a 16-byte IV (the AES subkey
// derivation) through OpenSSL's one-shot HMAC(), which looks the MAC and
// digest up by name under a global lock on every call, versus an EVP_MAC
// fetched once with a reused context.
void BM_Reference_OneShotHMAC(benchmark::State& state) {
  std::array<uint8_t, 32> key{};
  std::array<uint8_t, 16> iv{};
  std::array<uint8_t, 32> out;
  unsigned int len = 0;
  for (auto _ : state) {
    HMAC(EVP_sha256(), key.data(), key.size(), iv.data(), iv.size(), out.data(), &len);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_Reference_OneShotHMAC);

void BM_Reference_ReusedMacCtx(benchmark::State& state) {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  EVP_MAC_CTX_set_params(ctx, params);
  std::array<uint8_t, 32> key{};
  std::array<uint8_t, 16> iv{};
  std::array<uint8_t, 32> out;
  for (auto _ : state) {
    size_t len = 0;
    EVP_MAC_init(ctx, key.data(), key.size(), nullptr);  // a new key each time
    EVP_MAC_update(ctx, iv.data(), iv.size());
    EVP_MAC_final(ctx, out.data(), &len, out.size());
    benchmark::DoNotOptimize(out);
  }
  EVP_MAC_CTX_free(ctx);
}
BENCHMARK(BM_Reference_ReusedMacCtx);

void BM_Base64Encode(benchmark::State& state) {
  std::vector<uint8_t> data(static_cast<size_t>(state.range(0)), 0xa5);
  for (auto _ : state) {
    auto s = Base64Encode(data);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Base64Encode)->Arg(32)->Arg(76);

void BM_Base64Decode(benchmark::State& state) {
  std::vector<uint8_t> data(static_cast<size_t>(state.range(0)), 0xa5);
  std::string text = Base64Encode(data);
  for (auto _ : state) {
    auto d = Base64Decode(text);
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Base64Decode)->Arg(32)->Arg(76);

// A cache miss after the backend read: decoding a stored key (base64
// protobuf, as this server and upstream write it) into a KeyVersion,
// including the per-key HMAC precomputation.
void BM_ParseKeyVersion(benchmark::State& state) {
  const std::string stored =
      EncodeKeyVersion(NewKeyVersion(KeyType::kAES256, std::string(64, 'c')).value()).value();
  for (auto _ : state) {
    auto kv = ParseKeyVersion(stored);
    benchmark::DoNotOptimize(kv);
  }
}
BENCHMARK(BM_ParseKeyVersion);

}  // namespace
}  // namespace kes::crypto
