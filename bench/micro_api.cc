// Micro-benchmarks of the per-request API work around the crypto: decoding
// a request body, encoding a response, resolving the route and matching a
// policy.
#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <string_view>

#include "identity/policy.h"
#include "server/json.h"
#include "server/router.h"

namespace kes::server {
namespace {

void BM_JsonDecodeDecryptRequest(benchmark::State& state) {
  const std::string body =
      R"({"ciphertext":"bHCtpQy3yGBMc5oYDpkiqCq0UJQmk3uKv6tIz4yqWTX/QdbX8oVLspK4tw6vBy+jVzyzSN8Oh1QIHQWyLPFBx0Kk1xDCWsN3/TfVkN3gGyE=","context":"eyJidWNrZXQiOiJwaG90b3MiLCJvYmplY3QiOiIyMDI0L2hvbGlkYXkvSU1HXzAwMDEuanBnIn0="})";
  constexpr std::array<std::string_view, 3> kFields = {"ciphertext", "context", "version"};
  for (auto _ : state) {
    auto f = DecodeJsonFields(body, kFields);
    benchmark::DoNotOptimize(f);
  }
}
BENCHMARK(BM_JsonDecodeDecryptRequest);

void BM_JsonEncodeGenerateResponse(benchmark::State& state) {
  std::array<uint8_t, 32> plaintext{};
  std::array<uint8_t, 76> ciphertext{};
  std::string out;
  for (auto _ : state) {
    out.clear();
    JsonWriter(out)
        .BeginObject()
        .Key("plaintext")
        .Bytes(plaintext)
        .Key("ciphertext")
        .Bytes(ciphertext)
        .EndObject();
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_JsonEncodeGenerateResponse);

void BM_ResolveTarget(benchmark::State& state) {
  for (auto _ : state) {
    auto r = ResolveTarget("/v1/key/generate/minio-default-key");
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ResolveTarget);

void BM_PolicyVerify(benchmark::State& state) {
  identity::Policy policy;
  for (int i = 0; i < state.range(0); i++) {
    policy.allow.push_back("/v1/key/list/app-" + std::to_string(i) + "*");
  }
  policy.allow.push_back("/v1/key/generate/minio-*");
  policy.allow.push_back("/v1/key/decrypt/minio-*");
  policy.deny.push_back("/v1/key/delete/*");
  for (auto _ : state) {
    auto st = policy.Verify("/v1/key/decrypt/minio-default-key");
    benchmark::DoNotOptimize(st);
  }
}
BENCHMARK(BM_PolicyVerify)->Arg(0)->Arg(32);

}  // namespace
}  // namespace kes::server
