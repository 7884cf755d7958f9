// What one kes-loadgen run does: target, request, TLS identity, and the
// load model (closed loop at max rate, open loop at a fixed offered rate,
// or one full TLS handshake per request).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace kes::bench {

struct LoadConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 7373;
  std::string method = "GET";
  std::string path = "/version";
  // If > 0, "{n}" in the path is replaced by 0, 1, ... names-1, round robin
  // (to touch many keys).
  uint64_t names = 0;
  std::string body;
  std::vector<std::string> headers;  // extra "Name: value" lines

  std::string cert_file;  // client certificate chain (PEM)
  std::string key_file;   // its private key (PEM); may equal cert_file
  std::string api_key;    // "kes:v1:..." instead of cert/key files
  bool tls13_only = false;

  int connections = 16;
  int threads = 1;
  // Open loop: total offered requests per second over all connections
  // (latency measured from the intended send time, so a stalled server
  // cannot hide queueing). 0 = closed loop, as fast as responses come.
  double rate = 0;
  // Each request on a fresh TCP+TLS connection (full handshake), optionally
  // resuming the previous TLS session.
  bool new_connection = false;
  bool resume = false;
  // HTTP/2 (ALPN h2) instead of HTTP/1.1: each connection keeps `streams`
  // requests in flight at once, as a Go client multiplexes its requests.
  bool http2 = false;
  int streams = 1;

  std::chrono::duration<double> warmup{1.0};
  std::chrono::duration<double> duration{5.0};
  uint64_t max_requests = 0;  // 0 = no limit; stop early once reached
};

}  // namespace kes::bench
