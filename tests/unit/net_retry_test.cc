// Unit tests of net::DoWithRetry and net::ReadCaBundle (keystores-cloud.md §0):
// which failures are sent again and how often, that the deadline bounds the
// loop, and which CA files and directories make a bundle.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "identity/certificate.h"
#include "loopback_http.h"
#include "net/ca_bundle.h"
#include "net/retry.h"

namespace kes::net {
namespace {

// Answers each request by the next step of a script: an HTTP status, or 0 to
// close the connection without answering (a temporary transport failure).
class ScriptedServer {
 public:
  explicit ScriptedServer(std::vector<int> script) : script_(std::move(script)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedServer() {
    listener_.Close();
    thread_.join();
  }
  int port() const { return listener_.port(); }
  int requests() const { return requests_; }

 private:
  void Run() {
    for (int c; (c = listener_.Accept()) >= 0;) {
      std::string buf;
      while (testing::ReadHttpRequest(c, buf)) {
        const size_t i = requests_++;
        const int status = i < script_.size() ? script_[i] : 200;
        if (status == 0) break;
        const std::string resp =
            "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: 2\r\n\r\nok";
        if (write(c, resp.data(), resp.size()) < 0) break;
      }
      close(c);
    }
  }
  testing::LoopbackListener listener_;
  std::vector<int> script_;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

HttpRequest To(const ScriptedServer& s) {
  HttpRequest r;
  r.method = "POST";
  r.body = "{\"a\":1}";
  r.url = *Url::Parse("http://127.0.0.1:" + std::to_string(s.port()) + "/x");
  return r;
}

constexpr RetryPolicy kFast{2, std::chrono::milliseconds(1), std::chrono::milliseconds(5)};

TEST(DoWithRetry, ResendsAfter5xxAndEarlyClose) {
  ScriptedServer server({503, 0, 200});
  HttpClient client;
  auto resp = DoWithRetry(client, To(server), kFast);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(server.requests(), 3);
}

TEST(DoWithRetry, GivesUpAfterTwoRetriesWithTheLastAnswer) {
  ScriptedServer server({500, 502, 503, 200});
  HttpClient client;
  auto resp = DoWithRetry(client, To(server), kFast);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 503);
  EXPECT_EQ(server.requests(), 3);
}

TEST(DoWithRetry, TemporaryFailureAfterTheLastTryIsNamed) {
  ScriptedServer server({0, 0, 0, 200});
  HttpClient client;
  auto resp = DoWithRetry(client, To(server), kFast);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), Code::kUnreachable);
  EXPECT_TRUE(resp.status().message().starts_with("http: temporary network error: "))
      << resp.status().message();
  EXPECT_EQ(server.requests(), 3);
}

TEST(DoWithRetry, ClientErrorsAndRefusedConnectionsAreNotRetried) {
  ScriptedServer server({404, 200});
  HttpClient client;
  auto resp = DoWithRetry(client, To(server), kFast);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 404);
  EXPECT_EQ(server.requests(), 1);

  HttpRequest refused = To(server);
  {
    testing::LoopbackListener gone;  // a port nobody listens on once closed
    refused.url = *Url::Parse("http://127.0.0.1:" + std::to_string(gone.port()) + "/");
  }
  auto failed = DoWithRetry(client, refused, kFast);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Code::kUnreachable);
  EXPECT_FALSE(failed.status().message().starts_with("http: temporary"));
}

TEST(DoWithRetry, NoWaitOutlastsTheDeadline) {
  ScriptedServer server({503, 503, 503});
  HttpClient client;
  HttpRequest req = To(server);
  req.deadline = DeadlineIn(std::chrono::milliseconds(150));
  auto resp = DoWithRetry(client, req, RetryPolicy{});  // waits of 200 ms or more
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 503);
  EXPECT_EQ(server.requests(), 1);
}

class CaBundle : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kes-ca-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  static std::string CertificatePem() {
    auto key = identity::GenerateEcdsaP256Key();
    identity::CertificateOptions o;
    o.common_name = "test CA";
    auto cert = identity::CreateSelfSignedCertificate(key->get(), o);
    return *identity::CertificateToPem(cert->get());
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

size_t Count(const std::string& bundle) {
  size_t n = 0;
  for (size_t at = 0; (at = bundle.find("-----BEGIN CERTIFICATE-----", at)) != std::string::npos;
       ++at)
    ++n;
  return n;
}

TEST_F(CaBundle, FileOrEveryRegularFileOfADirectory) {
  const std::string one = Write("a.pem", CertificatePem());
  Write("b.crt", "comment before\n" + CertificatePem() + CertificatePem());
  ASSERT_EQ(mkdir((dir_ + "/sub").c_str(), 0700), 0);
  auto file = ReadCaBundle(one);
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(Count(*file), 1u);
  auto all = ReadCaBundle(dir_);
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(Count(*all), 3u);
}

TEST_F(CaBundle, AFileWithoutACertificateIsNamed) {
  Write("a.pem", CertificatePem());
  const std::string bad = Write("notes.txt", "not a certificate\n");
  auto r = ReadCaBundle(dir_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "'" + bad + "' does not contain a valid X.509 PEM-encoded certificate");
  auto missing = ReadCaBundle(dir_ + "/nope.pem");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no such file or directory"), std::string::npos);
}

TEST_F(CaBundle, SystemRootsComeFirstWhenAsked) {
  const std::string roots = Write("roots.pem", CertificatePem() + CertificatePem());
  const std::string ca = Write("ca.pem", CertificatePem());
  setenv("SSL_CERT_FILE", roots.c_str(), 1);
  auto with = ReadCaBundle(ca, /*with_system_roots=*/true);
  auto without = ReadCaBundle(ca);
  unsetenv("SSL_CERT_FILE");
  ASSERT_TRUE(with.ok() && without.ok());
  EXPECT_EQ(Count(*with), 3u);
  EXPECT_EQ(Count(*without), 1u);
}

}  // namespace
}  // namespace kes::net
