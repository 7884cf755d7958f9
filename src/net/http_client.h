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
// the environment (https_proxy, no_proxy) except for those local hosts, unless
// the caller names one (`proxy`). HTTP/2 is negotiated over TLS (ALPN) when
// the server offers it, as Go's clients do; HTTP/1.1 otherwise.
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

// Why a call got no HTTP answer, for callers that word transport failures
// like another client does (the KES CLI words them like Go).
struct TransportError {
  enum class Kind {
    kOther,
    kConnect,            // connection refused / unreachable (os_errno)
    kResolve,            // the host name did not resolve
    kTimeout,            // connect or request timeout
    kCertificate,        // the server certificate failed verification (verify_result)
    kClientCertificate,  // our certificate or key was refused locally
    kHandshake,          // any other TLS handshake failure
    kEmptyReply,         // the connection closed before any answer
    kSendReceive,        // the connection broke mid-exchange (os_errno)
  };
  Kind kind = Kind::kOther;
  int os_errno = 0;
  long verify_result = 0;  // X509_V_* of the failed verification
  std::string detail;      // libcurl's own text

  // Whether sending again may pass: a timeout, a reset or a connection closed
  // early (Go's "temporary" errors and io.EOF) may; a refused connection, a
  // DNS or a TLS failure will not.
  bool temporary() const {
    return kind == Kind::kTimeout || kind == Kind::kEmptyReply || kind == Kind::kSendReceive;
  }
};

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
  // Filled in when Do() returns a transport failure (kUnreachable).
  TransportError* error = nullptr;
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
  // Whole-call limit; 0: none (only a request's timeout or deadline).
  std::chrono::milliseconds request_timeout{10000};
  std::string ca_file;  // CA bundle (PEM) instead of the system's; empty: system trust store
  std::string ca_dir;   // hashed CA directory (c_rehash) instead of the system's
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
  // Proxy for every request, loopback hosts included, whatever the
  // environment says (VAULT_HTTP_PROXY); empty: the environment's.
  std::string proxy;
  // Connects to this Unix socket instead of the URL's host (Vault's
  // unix:// address); the URL then only names the Host header and path.
  std::string unix_socket_path;
  // Name sent as SNI and verified against the server certificate instead of
  // the URL's host, which is still the one connected to and the Host header
  // (VAULT_TLS_SERVER_NAME).
  std::string tls_server_name;
  // Redirects (301, 302, 307, 308 with a Location) followed per call, each
  // re-sending the method, headers and body; https -> http is refused. 0:
  // a redirect is returned as the response.
  int max_redirects = 0;
};

// A transport failure (DNS, connect, TLS, timeout, reset) is returned as
// Code::kUnreachable; any HTTP answer, whatever its status, is a response.
class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse> Do(const HttpRequest& request);

  // Checks the transport policy for `url` without sending anything.
  Status CheckUrl(const Url& url) const;

  const HttpClientOptions& options() const { return options_; }

 private:
  class Pool;
  Result<HttpResponse> Once(const HttpRequest& request, const Url& url);
  HttpClientOptions options_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace kes::net
