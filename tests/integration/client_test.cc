// The C++ client (src/client) against the real `kes server --dev` binary on
// loopback: every route, SDK error values, fail-over and certificate checks.
#include "client/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <regex>
#include <string>
#include <thread>

#include "identity/api_key.h"

namespace kes::client {
namespace {

// `kes server --dev --addr 127.0.0.1:0`; port and admin API key from the banner.
class DevServer {
 public:
  DevServer() {
    const char* bin = std::getenv("KES_BIN");
    if (bin == nullptr) return;
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      execl(bin, bin, "server", "--dev", "--addr", "127.0.0.1:0", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    std::string text;
    char buf[4096];
    std::regex port_re(R"(https://127\.0\.0\.1:(\d+))"), key_re(R"((kes:v1:[A-Za-z0-9+/=]+))");
    while (text.find("Server is up and running") == std::string::npos) {
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    out_fd_ = out[0];
    std::smatch m;
    if (std::regex_search(text, m, port_re)) port_ = std::stoi(m[1]);
    if (std::regex_search(text, m, key_re)) api_key_ = m[1];
  }
  ~DevServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status;
      waitpid(pid_, &status, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
  }
  bool ok() const { return port_ > 0 && !api_key_.empty(); }
  int port() const { return port_; }
  const std::string& api_key() const { return api_key_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::string api_key_;
};

int FreePort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(s);
  return port;
}

class ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new DevServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_->ok()) GTEST_SKIP() << "KES_BIN not set or dev server did not start";
  }

  std::unique_ptr<Client> Make(std::string endpoints = {}, bool insecure = true) {
    auto key = identity::APIKey::Parse(server_->api_key());
    EXPECT_TRUE(key.ok());
    Config c;
    c.endpoints = NormalizeEndpoints(
        endpoints.empty() ? "127.0.0.1:" + std::to_string(server_->port()) : endpoints);
    c.certificate = std::move(*key->GenerateCertificate());
    EVP_PKEY_up_ref(key->private_key());
    c.private_key = identity::PrivateKeyPtr(key->private_key());
    c.insecure = insecure;
    auto client = Client::New(std::move(c));
    EXPECT_TRUE(client.ok());
    return std::move(*client);
  }

  static DevServer* server_;
};

DevServer* ClientTest::server_ = nullptr;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST_F(ClientTest, KeyLifecycleAndSdkErrors) {
  auto c = Make();
  ASSERT_TRUE(c->CreateKey("cpp-key").ok());
  EXPECT_EQ(c->CreateKey("cpp-key"), Status::KeyExists());
  auto info = c->DescribeKey("cpp-key");
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->name, "cpp-key");
  auto dek = c->GenerateKey("cpp-key", Bytes("ctx"));
  ASSERT_TRUE(dek.ok());
  EXPECT_EQ(dek->plaintext.size(), 32u);
  auto pt = c->Decrypt("cpp-key", dek->ciphertext, Bytes("ctx"));
  ASSERT_TRUE(pt.ok());
  EXPECT_TRUE(crypto::ConstantTimeEqual(pt->span(), dek->plaintext.span()));
  EXPECT_EQ(c->Decrypt("cpp-key", dek->ciphertext, Bytes("other")).status(),
            Status::NotAuthentic());
  auto ct = c->Encrypt("cpp-key", Bytes("hello"), {});
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ(ct->version, "");  // a key with one version names none (rotation.md I1)
  auto back = c->Decrypt("cpp-key", ct->ciphertext, {});
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::string(back->span().begin(), back->span().end()), "hello");
  auto mac1 = c->HMAC("cpp-key", Bytes("m"));
  auto mac2 = c->HMAC("cpp-key", Bytes("m"));
  ASSERT_TRUE(mac1.ok() && mac2.ok());
  EXPECT_EQ(*mac1, *mac2);
  EXPECT_EQ(mac1->size(), 32u);
  ASSERT_TRUE(c->DeleteKey("cpp-key").ok());
  EXPECT_EQ(c->DescribeKey("cpp-key").status(), Status::KeyNotFound());
}

TEST_F(ClientTest, ImportAndList) {
  auto c = Make();
  std::vector<uint8_t> key(32, 7);
  ASSERT_TRUE(c->ImportKey("cpp-list-b", key, "AES256").ok());
  ASSERT_TRUE(c->CreateKey("cpp-list-a").ok());
  Status bad = c->ImportKey("cpp-list-c", std::vector<uint8_t>(5, 1), "AES256");
  EXPECT_EQ(bad.http_status(), 406);
  EXPECT_EQ(bad.message(), "invalid key size for 'AES256'");
  auto names = c->ListKeys("cpp-list");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"cpp-list-a", "cpp-list-b"}));
  auto all = c->ListKeys("");  // empty prefix: the SDK's redirected path
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_GE(all->size(), 2u);
}

TEST_F(ClientTest, ServerInformation) {
  auto c = Make();
  auto v = c->Version();
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v->empty());
  EXPECT_TRUE(c->Ready().ok());
  auto s = c->GetStatus();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->os, "linux");
  EXPECT_GE(s->num_cpu, 1);
  auto apis = c->APIs();
  ASSERT_TRUE(apis.ok());
  EXPECT_EQ(apis->size(), 26u);  // upstream's 22 + kes-cpp's 4 key-version routes
  auto m = c->GetMetrics();
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_GE(m->cpus, 1u);
  auto self = c->DescribeSelf();
  ASSERT_TRUE(self.ok());
  EXPECT_TRUE(self->info.is_admin);
  auto ids = c->ListIdentities("");
  ASSERT_TRUE(ids.ok());
  EXPECT_NE(std::find(ids->begin(), ids->end(), self->info.identity), ids->end());
  EXPECT_EQ(c->GetPolicy("nope").status().message(), "policy does not exist");
}

TEST_F(ClientTest, AuditLogStreamsEvents) {
  std::atomic<bool> got{false};
  std::thread reader([&] {
    auto c = Make();
    Status s = c->AuditLog([&](std::string_view line) {
      if (line.find("/v1/key/create/cpp-audit") != std::string_view::npos) {
        got = true;
        return false;  // stop reading
      }
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.message();
  });
  auto c = Make();
  for (int i = 0; i < 200 && !got; ++i) {
    ASSERT_TRUE(c->CreateKey("cpp-audit-" + std::to_string(i)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  reader.join();
  EXPECT_TRUE(got);
}

TEST_F(ClientTest, FailsOverFromADeadEndpoint) {
  auto c = Make("127.0.0.1:" + std::to_string(FreePort()) +
                ",127.0.0.1:" + std::to_string(server_->port()));
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(c->CreateKey("cpp-failover-" + std::to_string(i)).ok());
  }
}

TEST_F(ClientTest, DeadServerIsATransportError) {
  auto c = Make("127.0.0.1:" + std::to_string(FreePort()));
  Status s = c->CreateKey("x");
  EXPECT_EQ(s.code(), Code::kUnreachable);
  EXPECT_EQ(s.http_status(), 0);
  EXPECT_NE(s.message().find("connection refused"), std::string::npos) << s.message();
}

TEST_F(ClientTest, UntrustedServerCertificateIsReported) {
  unsetenv("SSL_CERT_FILE");
  auto c = Make({}, /*insecure=*/false);
  Status s = c->CreateKey("x");
  EXPECT_TRUE(IsCertificateVerifyError(s)) << s.message();
}

}  // namespace
}  // namespace kes::client
