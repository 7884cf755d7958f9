// Unit tests of src/client: endpoint normalisation, SDK error decoding and
// metrics parsing (no network).
#include "client/client.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "client/metrics.h"

namespace kes::client {
namespace {

TEST(NormalizeEndpoints, AddsSchemeStripsHttpAndTrims) {
  EXPECT_EQ(NormalizeEndpoints("127.0.0.1:7373"),
            std::vector<std::string>{"https://127.0.0.1:7373"});
  EXPECT_EQ(NormalizeEndpoints(" http://h1:7373 ,https://h2:7373"),
            (std::vector<std::string>{"https://h1:7373", "https://h2:7373"}));
  // Upstream quirk kept: an empty value yields the broken endpoint "https://".
  EXPECT_EQ(NormalizeEndpoints(""), std::vector<std::string>{"https://"});
}

TEST(DecodeError, JsonMessageKeepsStatusAndText) {
  Status s = DecodeError(404, "application/json", "{\"message\":\"key does not exist\"\n}");
  EXPECT_EQ(s, Status::KeyNotFound());
  s = DecodeError(400, "application/json", "{\"message\":\"key already exists\"}");
  EXPECT_EQ(s, Status::KeyExists());
  s = DecodeError(400, "application/json; charset=utf-8",
                  "{\"message\":\"decryption failed: ciphertext is not authentic\"}");
  EXPECT_EQ(s, Status::NotAuthentic());
  s = DecodeError(406, "application/json", "{\"message\":\"invalid key size for 'AES256'\"}");
  EXPECT_EQ(s.http_status(), 406);
  EXPECT_EQ(s.message(), "invalid key size for 'AES256'");
}

TEST(DecodeError, ErrorFieldWinsOverMessage) {
  Status s = DecodeError(500, "application/json", "{\"message\":\"a\",\"error\":\"b\"}");
  EXPECT_EQ(s.message(), "b");
  EXPECT_EQ(s.http_status(), 500);
}

TEST(DecodeError, LegacyAliases) {
  EXPECT_EQ(DecodeError(400, "application/json", "{\"message\":\"key does already exist\"}"),
            Status::KeyExists());
  EXPECT_EQ(DecodeError(403, "application/json", "{\"message\":\"prohibited by policy\"}"),
            Status::NotAllowed());
}

TEST(DecodeError, NonJsonBodyIsTheMessage) {
  Status s = DecodeError(502, "text/plain", "bad gateway");
  EXPECT_EQ(s.http_status(), 502);
  EXPECT_EQ(s.message(), "bad gateway");
}

TEST(DecodeError, TrailingDataAfterTheErrorObjectIsIgnored) {
  Status s = DecodeError(502, "application/json",
                         "{\"message\":\"failed to list keys\"\n}\n{\"names\":null}\n");
  EXPECT_EQ(s.http_status(), 502);
  EXPECT_EQ(s.message(), "failed to list keys");
}

TEST(DecodeError, InvalidJsonIsADecodeError) {
  Status s = DecodeError(400, "application/json", "not json");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message(), "not json");
}

TEST(IsCertificateVerifyError, OnlyTransportVerifyFailures) {
  Status verify(Code::kUnreachable, 0,
                "POST \"https://h/v1/key/create/k\": tls: failed to verify certificate: x509: "
                "certificate signed by unknown authority");
  EXPECT_TRUE(IsCertificateVerifyError(verify));
  EXPECT_FALSE(IsCertificateVerifyError(Status::KeyExists()));
  EXPECT_FALSE(IsCertificateVerifyError(
      Status(Code::kUnreachable, 0, "dial tcp h: connect: connection refused")));
}

std::string ReadTranscriptBody(const std::string& name) {
  std::ifstream in(std::string(KES_SPEC_DIR) + "/transcripts/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  size_t body = text.find("\r\n\r\n");
  if (body == std::string::npos) body = text.find("\n\n", text.find("HTTP/1.1"));
  return body == std::string::npos ? std::string() : text.substr(body);
}

TEST(ParseMetrics, UpstreamTranscript) {
  std::string body = ReadTranscriptBody("26-metrics-admin.txt");
  ASSERT_FALSE(body.empty());
  auto m = ParseMetrics(body);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->request_ok, 13u);
  EXPECT_EQ(m->request_err, 6u);  // 4 + 2 summed over codes
  EXPECT_EQ(m->request_fail, 0u);
  EXPECT_EQ(m->request_active, 0u);
  EXPECT_EQ(m->heap_alloc, 3841344u);  // 3.841344e+06
  EXPECT_EQ(m->heap_objects, 28417u);
  EXPECT_EQ(m->stack_alloc, 557056u);
  EXPECT_EQ(m->cpus, 2u);
  EXPECT_EQ(m->usable_cpus, 2u);
  EXPECT_EQ(m->threads, 10u);
  EXPECT_EQ(m->uptime, std::chrono::milliseconds(27430));
  ASSERT_EQ(m->latency_histogram.size(), 10u);                 // +Inf ignored
  EXPECT_EQ(m->latency_histogram.begin()->first, 10'000'000);  // 0.01 s in ns
  EXPECT_EQ(m->latency_histogram.rbegin()->first, 10'000'000'000);
  EXPECT_EQ(m->latency_histogram.at(1'500'000'000), 19u);
}

TEST(ParseMetrics, RejectsMalformedKnownSample) {
  EXPECT_FALSE(ParseMetrics("kes_http_request_active abc\n").ok());
  EXPECT_TRUE(ParseMetrics("# only comments\nother_metric 1\n").ok());
}

TEST(Client, RejectsEmptyEndpointList) {
  Config config;
  EXPECT_FALSE(Client::New(std::move(config)).ok());
}

}  // namespace
}  // namespace kes::client
