// Unit tests of src/client: endpoint normalisation, SDK error decoding,
// metrics parsing, and answers of a scripted TLS server on loopback.
#include "client/client.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "client/metrics.h"
#include "identity/certificate.h"
#include "loopback_http.h"

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

// A TLS server on 127.0.0.1 that answers every request with `body` (JSON,
// 200) and closes the connection.
class ScriptedTlsServer {
 public:
  explicit ScriptedTlsServer(std::string body) : body_(std::move(body)) {
    auto cert = identity::GenerateDevServerCertificate({"127.0.0.1"});
    if (!cert.ok()) return;
    ctx_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(ctx_, cert->certificate.get());
    SSL_CTX_use_PrivateKey(ctx_, cert->key.get());
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedTlsServer() {
    listener_.Close();
    if (thread_.joinable()) thread_.join();
    SSL_CTX_free(ctx_);
  }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(listener_.port()); }

 private:
  void Run() {
    for (int c; (c = listener_.Accept()) >= 0; close(c)) {
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, c);
      if (SSL_accept(ssl) == 1) {
        std::string req;
        char buf[4096];
        while (req.find("\r\n\r\n") == std::string::npos) {
          const int n = SSL_read(ssl, buf, sizeof buf);
          if (n <= 0) break;
          req.append(buf, static_cast<size_t>(n));
        }
        const std::string resp =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            "Content-Length: " +
            std::to_string(body_.size()) + "\r\n\r\n" + body_;
        SSL_write(ssl, resp.data(), static_cast<int>(resp.size()));
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
    }
  }

  std::string body_;
  SSL_CTX* ctx_ = nullptr;
  testing::LoopbackListener listener_;
  std::thread thread_;
};

std::unique_ptr<Client> ClientOf(const ScriptedTlsServer& server) {
  Config config;
  config.endpoints = {server.url()};
  config.insecure = true;
  config.connect_timeout = std::chrono::seconds(10);
  config.request_timeout = std::chrono::seconds(30);
  auto c = Client::New(std::move(config));
  return c.ok() ? std::move(*c) : nullptr;
}

// A server's answer with members of unexpected types must not throw out of
// the client (nlohmann's value() does): they read as absent.
TEST(Client, MistypedMembersInAnswersDoNotThrow) {
  {
    ScriptedTlsServer server(
        R"({"identity":1,"policy":["p"],"admin":"yes","created_at":{},"allow":[]})");
    auto client = ClientOf(server);
    ASSERT_NE(client, nullptr);
    auto self = client->DescribeSelf();
    ASSERT_TRUE(self.ok()) << self.status().message();
    EXPECT_FALSE(self->info.is_admin);
    EXPECT_EQ(self->info.identity, "");
    auto id = client->DescribeIdentity("x");
    ASSERT_TRUE(id.ok()) << id.status().message();
    EXPECT_FALSE(id->is_admin);
  }
  {
    ScriptedTlsServer server(
        R"({"version":"v","uptime":"long","num_cpu":1e300,"keystore_unreachable":"no",)"
        R"("keystore_unavailable":0})");
    auto client = ClientOf(server);
    ASSERT_NE(client, nullptr);
    auto st = client->GetStatus();
    ASSERT_TRUE(st.ok()) << st.status().message();
    EXPECT_FALSE(st->keystore_unreachable);
    EXPECT_EQ(st->num_cpu, 0);
  }
  {
    ScriptedTlsServer server("[1]");  // not even an object
    auto client = ClientOf(server);
    ASSERT_NE(client, nullptr);
    EXPECT_TRUE(client->DescribeSelf().ok());
  }
}

}  // namespace
}  // namespace kes::client
