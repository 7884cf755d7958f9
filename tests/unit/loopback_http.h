// Test helpers for in-process HTTP/1.1 servers on 127.0.0.1: a listening
// socket on an ephemeral port, and reading one request (head and
// Content-Length body) from a connection. Used by net_test and aws_test.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <string>

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

}  // namespace kes::testing
