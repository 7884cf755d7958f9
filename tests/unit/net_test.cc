// Unit tests of the net module: URL parsing, the plain-HTTP policy, and the
// curl client against a tiny in-process loopback listener (connection reuse,
// headers as sent, transport errors as kUnreachable).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "loopback_http.h"
#include "net/http_client.h"
#include "net/url.h"

namespace kes::net {
namespace {

TEST(Url, Parse) {
  auto u = Url::Parse("secretsmanager.us-east-1.amazonaws.com", "https");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "secretsmanager.us-east-1.amazonaws.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->path, "/");
  EXPECT_EQ(u->HostHeader(), "secretsmanager.us-east-1.amazonaws.com");

  u = Url::Parse("http://127.0.0.1:4566");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->HostHeader(), "127.0.0.1:4566");
  EXPECT_EQ(u->ToString(), "http://127.0.0.1:4566/");

  u = Url::Parse("HTTP://[::1]:8080/v2/credentials/x?a=b");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme, "http");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->HostHeader(), "[::1]:8080");
  EXPECT_EQ(u->path, "/v2/credentials/x");
  EXPECT_EQ(u->query, "a=b");

  u = Url::Parse("https://kms.eu-west-1.amazonaws.com:443");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->HostHeader(), "kms.eu-west-1.amazonaws.com");  // default port not shown

  EXPECT_FALSE(Url::Parse("ftp://x").ok());
  EXPECT_FALSE(Url::Parse("no-scheme-no-default").ok());
  EXPECT_FALSE(Url::Parse("http://host:99999").ok());
  EXPECT_FALSE(Url::Parse("http://user@host/").ok());
  EXPECT_FALSE(Url::Parse("http://").ok());
}

TEST(Url, Loopback) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_TRUE(IsLoopbackHost("127.8.9.10"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_FALSE(IsLoopbackHost("128.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("169.254.169.254"));
  EXPECT_FALSE(IsLoopbackHost("localhost.example.com"));
}

TEST(HttpClient, PlainHttpOnlyToLoopbackOrMetadata) {
  HttpClient strict;
  EXPECT_TRUE(strict.CheckUrl(*Url::Parse("http://127.0.0.1:1")).ok());
  EXPECT_TRUE(strict.CheckUrl(*Url::Parse("https://example.com")).ok());
  EXPECT_FALSE(strict.CheckUrl(*Url::Parse("http://example.com")).ok());
  EXPECT_FALSE(strict.CheckUrl(*Url::Parse("http://169.254.169.254")).ok());
  HttpClientOptions o;
  o.allow_metadata_http = true;
  HttpClient metadata(o);
  EXPECT_TRUE(metadata.CheckUrl(*Url::Parse("http://169.254.169.254")).ok());
  EXPECT_TRUE(metadata.CheckUrl(*Url::Parse("http://169.254.170.2/v2/credentials")).ok());
  EXPECT_FALSE(metadata.CheckUrl(*Url::Parse("http://10.0.0.1")).ok());
  // Refused before anything is sent.
  HttpRequest req;
  req.url = *Url::Parse("http://example.com/");
  EXPECT_EQ(strict.Do(req).status().code(), Code::kInvalidArgument);
}

// A minimal HTTP/1.1 listener on 127.0.0.1:<ephemeral>: answers every request
// with 200 and a body echoing the request head; keeps connections open.
class EchoServer {
 public:
  EchoServer() {
    thread_ = std::thread([this] { Run(); });
  }
  ~EchoServer() {
    stop_ = true;
    listener_.Close();
    thread_.join();
    // Connection threads end when their client hangs up (clients are
    // destroyed first); wait so none outlives this object.
    while (active_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int port() const { return listener_.port(); }
  int connections() const { return connections_; }
  std::vector<std::string> heads() {
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  void Run() {
    while (!stop_) {
      int c = listener_.Accept();
      if (c < 0) return;
      ++connections_;
      ++active_;
      std::thread([this, c] {
        Serve(c);
        --active_;
      }).detach();
    }
  }
  void Serve(int c) {
    std::string buf;
    while (auto req = testing::ReadHttpRequest(c, buf)) {
      {
        std::lock_guard lock(mu_);
        heads_.push_back(req->head);
      }
      std::string body = req->head + "\n--\n" + req->body;
      std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nX-Test: yes\r\n\r\n" + body;
      // GET|POST /redirect...: a standby's 307 to /target on the same server.
      if (req->head.find(" /redirect") != std::string::npos &&
          req->head.find(" /redirect") < req->head.find("\r\n")) {
        resp =
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: /target?x=1\r\n"
            "Content-Length: 0\r\n\r\n";
      }
      if (write(c, resp.data(), resp.size()) < 0) break;
    }
    close(c);
  }

  testing::LoopbackListener listener_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> active_{0};
  std::mutex mu_;
  std::vector<std::string> heads_;
  std::thread thread_;
};

// An operator's explicit http:// endpoint (LocalStack in a container) is
// allowed for that host only.
TEST(HttpClient, PlainHttpToTheConfiguredHost) {
  HttpClientOptions o;
  o.plain_http_host = "localstack";
  HttpClient client(o);
  EXPECT_TRUE(client.CheckUrl(*Url::Parse("http://localstack:4566")).ok());
  EXPECT_FALSE(client.CheckUrl(*Url::Parse("http://other:4566")).ok());
  EXPECT_FALSE(client.CheckUrl(*Url::Parse("http://169.254.169.254")).ok());
  EXPECT_TRUE(client.CheckUrl(*Url::Parse("https://other")).ok());
}

TEST(HttpClient, SendsHeadersAsGivenAndReusesConnections) {
  EchoServer server;
  HttpClient client;
  HttpRequest req;
  req.method = "POST";
  req.url = *Url::Parse("http://127.0.0.1:" + std::to_string(server.port()) + "/");
  req.headers = {{"Host", "signed-host:1234"},
                 {"X-Amz-Target", "secretsmanager.ListSecrets"},
                 {"Content-Type", "application/x-amz-json-1.1"}};
  req.body = "{}";
  for (int i = 0; i < 3; ++i) {
    auto resp = client.Do(req);
    ASSERT_TRUE(resp.ok()) << resp.status().message();
    EXPECT_EQ(resp->status, 200);
    EXPECT_EQ(resp->Header("x-test"), "yes");
    EXPECT_NE(resp->body.find("POST / HTTP/1.1"), std::string::npos);
    EXPECT_NE(resp->body.find("Host: signed-host:1234"), std::string::npos);
    EXPECT_NE(resp->body.find("X-Amz-Target: secretsmanager.ListSecrets"), std::string::npos);
    EXPECT_EQ(resp->body.find("Expect:"), std::string::npos);
    EXPECT_EQ(resp->body.substr(resp->body.size() - 2), "{}");
  }
  EXPECT_EQ(server.connections(), 1);  // keep-alive: one TCP connection for all three
}

TEST(HttpClient, ProxyFromEnvironmentExceptForLoopback) {
  EchoServer proxy;
  EchoServer direct;
  const std::string proxy_url = "http://127.0.0.1:" + std::to_string(proxy.port());
  setenv("https_proxy", proxy_url.c_str(), 1);
  setenv("http_proxy", proxy_url.c_str(), 1);
  HttpClientOptions o;
  o.request_timeout = std::chrono::milliseconds(1500);
  {
    HttpClient client(o);
    // A remote https host goes through the proxy (CONNECT); the handshake
    // then fails against the echo "proxy", which is fine here.
    HttpRequest remote;
    remote.url = *Url::Parse("https://kes-proxy-test.invalid/");
    EXPECT_FALSE(client.Do(remote).ok());
    // Loopback is always direct.
    HttpRequest local;
    local.url = *Url::Parse("http://127.0.0.1:" + std::to_string(direct.port()) + "/x");
    auto resp = client.Do(local);
    ASSERT_TRUE(resp.ok()) << resp.status().message();
    EXPECT_NE(resp->body.find("GET /x HTTP/1.1"), std::string::npos);
  }
  unsetenv("https_proxy");
  unsetenv("http_proxy");
  auto heads = proxy.heads();
  ASSERT_FALSE(heads.empty());
  EXPECT_TRUE(heads[0].starts_with("CONNECT kes-proxy-test.invalid:443")) << heads[0];
  for (const auto& h : heads)
    EXPECT_EQ(h.find("127.0.0.1:" + std::to_string(direct.port())), std::string::npos);
}

TEST(HttpClient, TransportFailureIsUnreachable) {
  // Bind then close a socket to find a port nobody listens on.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  HttpClient client;
  HttpRequest req;
  req.url = *Url::Parse("http://127.0.0.1:" + std::to_string(port) + "/");
  TransportError error;
  req.error = &error;
  auto resp = client.Do(req);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().code(), Code::kUnreachable);
  EXPECT_EQ(error.kind, TransportError::Kind::kConnect);
  EXPECT_EQ(error.os_errno, ECONNREFUSED);
}

TEST(HttpClient, FollowsRedirectsUpToTheLimitResendingBodyAndHeaders) {
  EchoServer server;
  HttpClientOptions o;
  o.max_redirects = 1;
  HttpClient client(o);
  HttpRequest req;
  req.method = "PUT";
  req.url = *Url::Parse("http://127.0.0.1:" + std::to_string(server.port()) + "/redirect");
  req.headers = {{"X-Vault-Token", "t"}};
  req.body = R"({"a":1})";
  auto resp = client.Do(req);
  ASSERT_TRUE(resp.ok()) << resp.status().message();
  EXPECT_EQ(resp->status, 200);
  EXPECT_NE(resp->body.find("PUT /target?x=1 HTTP/1.1"), std::string::npos) << resp->body;
  EXPECT_NE(resp->body.find("X-Vault-Token: t"), std::string::npos);
  EXPECT_EQ(resp->body.substr(resp->body.size() - 7), R"({"a":1})");

  HttpClient no_follow;  // max_redirects 0: the 307 is the answer
  resp = no_follow.Do(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 307);
  EXPECT_EQ(resp->Header("location"), "/target?x=1");
}

TEST(HttpClient, RejectsHeaderInjection) {
  HttpClient client;
  HttpRequest req;
  req.url = *Url::Parse("http://127.0.0.1:1/");
  req.headers = {{"Authorization", "x\r\nEvil: 1"}};
  EXPECT_EQ(client.Do(req).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace kes::net
