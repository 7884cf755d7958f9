// Test helpers for in-process HTTP/1.1 servers on 127.0.0.1: a listening
// socket on an ephemeral port, reading one request (head and
// Content-Length body) from a connection, and a threaded server answering
// JSON from a handler (the fake Vault and Secret Manager). Used by net_test,
// aws_test, vault_test and gcp_test.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace kes::testing {

// Listens on 127.0.0.1:<ephemeral>; Close() makes a blocked Accept() return -1.
class LoopbackListener {
 public:
  LoopbackListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    listen(fd_, 8);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackListener() { Close(); }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  int port() const { return port_; }
  int Accept() { return accept(fd_, nullptr, nullptr); }
  void Close() {
    if (fd_ < 0) return;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

struct HttpRequestBytes {
  std::string head;  // up to, not including, the blank line
  std::string body;
};

// Reads the next request from connection `fd`; `buf` keeps bytes already
// read past it (pipelining). nullopt when the peer closes first.
inline std::optional<HttpRequestBytes> ReadHttpRequest(int fd, std::string& buf) {
  char tmp[4096];
  size_t end;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n <= 0) return std::nullopt;
    buf.append(tmp, static_cast<size_t>(n));
  }
  HttpRequestBytes req;
  req.head = buf.substr(0, end);
  std::string lower = req.head;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  size_t body_len = 0;
  if (auto p = lower.find("content-length: "); p != std::string::npos) {
    body_len = std::stoul(req.head.substr(p + 16));
  }
  while (buf.size() < end + 4 + body_len) {
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n <= 0) return std::nullopt;
    buf.append(tmp, static_cast<size_t>(n));
  }
  req.body = buf.substr(end + 4, body_len);
  buf.erase(0, end + 4 + body_len);
  return req;
}

// The value of header `name` (lower case) in a request head, or empty.
inline std::string HeaderValue(const std::string& head, const std::string& name) {
  std::string lower = head;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  size_t p = lower.find("\r\n" + name + ": ");
  if (p == std::string::npos) return "";
  p += name.size() + 4;
  return head.substr(p, head.find("\r\n", p) - p);
}

struct JsonReply {
  int status = 200;
  std::string body = "{}";
};

// Serves every connection on its own thread (keep-alive), answering each
// request with handler(head, body) as application/json.
class LoopbackJsonServer {
 public:
  using Handler = std::function<JsonReply(const std::string& head, const std::string& body)>;
  explicit LoopbackJsonServer(Handler handler) : handler_(std::move(handler)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~LoopbackJsonServer() {
    listener_.Close();
    thread_.join();
    std::lock_guard lock(mu_);
    for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : workers_) t.join();
  }
  LoopbackJsonServer(const LoopbackJsonServer&) = delete;
  LoopbackJsonServer& operator=(const LoopbackJsonServer&) = delete;

  int port() const { return listener_.port(); }

 private:
  void Run() {
    for (;;) {
      int c = listener_.Accept();
      if (c < 0) return;
      std::lock_guard lock(mu_);
      conns_.push_back(c);
      workers_.emplace_back([this, c] {
        std::string buf;
        while (auto req = ReadHttpRequest(c, buf)) {
          JsonReply r = handler_(req->head, req->body);
          std::string out = "HTTP/1.1 " + std::to_string(r.status) +
                            " X\r\nContent-Type: application/json\r\nContent-Length: " +
                            std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
          if (write(c, out.data(), out.size()) < 0) break;
        }
        ::close(c);
      });
    }
  }

  Handler handler_;
  LoopbackListener listener_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
};

}  // namespace kes::testing
