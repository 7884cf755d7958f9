// HttpClient: blocking outbound HTTP(S) on libcurl, safe to call from many
// threads at once.
//
// Connections are reused: each client keeps a pool of curl easy handles (each
// with its own keep-alive connection cache) plus a shared DNS and TLS-session
// cache, so a steady stream of calls to one endpoint does not pay a TCP and
// TLS handshake per call.
//
// Transport policy (why): production traffic to AWS must be TLS 1.2+ with
// certificate and host-name verification, always. Plain http:// is refused
// unless the host is loopback (local test endpoints), the one host an
// operator configured with an explicit http:// endpoint (`plain_http_host`,
// e.g. LocalStack in a container, as upstream accepts), or, when
// `allow_metadata_http` is set, one of the fixed link-local credential
// endpoints of ECS/EKS/EC2 (which only speak plain HTTP). Proxies come from
// the environment (https_proxy, no_proxy) except for those local hosts.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/deadline.h"
#include "common/status.h"
#include "net/url.h"

namespace kes::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  Url url;
  Headers headers;  // sent as given, in order; "Host" overrides curl's own
  std::string body;
  // Overrides the client's request timeout for this call when > 0.
  std::chrono::milliseconds timeout{0};
  // The call returns by then (DeadlineExceeded if it cannot start).
  Deadline deadline = kNoDeadline;
  // Streaming (a watch, a log): when set, the body is handed over chunk by
  // chunk as it arrives instead of being collected (no size limit); return
  // false to end the call. A streamed call without `timeout` or `deadline`
  // runs until the peer closes it or `cancel` becomes true (checked about
  // once a second).
  std::function<bool(std::string_view chunk)> on_body;
  const std::atomic<bool>* cancel = nullptr;
};

struct HttpResponse {
  int status = 0;
  Headers headers;  // names lower-cased, in arrival order
  std::string body;

  // First value of the header `name` (lower case), or empty.
  std::string Header(std::string_view name) const;
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{3000};
  std::chrono::milliseconds request_timeout{10000};
  std::string ca_file;  // extra CA bundle (PEM); empty: system trust store
  // In-memory PEM bundle that replaces the system trust store (Vault's
  // tls.ca file or directory, read at start-up); wins over ca_file.
  std::string ca_pem;
  // Client certificate chain and private key (PEM), presented on every
  // handshake when both are set.
  std::string client_cert_pem;
  std::string client_key_pem;
  // Turns certificate and host-name verification off (VAULT_SKIP_VERIFY).
  bool insecure_skip_verify = false;
  bool allow_metadata_http = false;
  // A host configured as http://host: plain HTTP to it is allowed. The
  // configuring code warns once that its traffic is unencrypted.
  std::string plain_http_host;
  size_t max_response_bytes = 4 << 20;
};

// Whether a transport failure may pass if the request is sent again: a
// timeout, a reset or a connection closed early (Go's "temporary" errors and
// io.EOF) may; a refused connection, a DNS or a TLS failure will not.
enum class TransportFailure { kNone, kTemporary, kPermanent };

// A transport failure (DNS, connect, TLS, timeout, reset) is returned as
// Code::kUnreachable; any HTTP answer, whatever its status, is a response.
class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> Do(const HttpRequest& request);
  // Same, and says which kind of transport failure ended the call (kNone when
  // there was an answer or the request never left). For retry loops.
  Result<HttpResponse> Do(const HttpRequest& request, TransportFailure* failure);

  // Checks the transport policy for `url` without sending anything.
  Status CheckUrl(const Url& url) const;

  const HttpClientOptions& options() const { return options_; }

 private:
  class Pool;
  HttpClientOptions options_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace kes::net
