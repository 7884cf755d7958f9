#include "net/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <mutex>

namespace kes::net {
namespace {

// curl_global_init is not thread-safe; run it once before any handle exists.
void GlobalInit() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool IsMetadataHost(std::string_view host) {
  return host == "169.254.170.2" || host == "169.254.170.23" || host == "169.254.169.254" ||
         host == "fd00:ec2::23" || host == "fd00:ec2::254";
}

struct Sink {
  HttpResponse* response;
  size_t limit;
  const std::function<bool(std::string_view)>* stream;
  const std::atomic<bool>* cancel;
  bool overflow = false;
  bool stopped = false;  // the stream's consumer or `cancel` ended the call
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t len = size * n;
  if (*sink->stream) {
    // Only a 2xx body is a stream; an error answer is collected as usual.
    if (sink->response->status >= 200 && sink->response->status < 300) {
      if ((*sink->stream)(std::string_view(data, len))) return len;
      sink->stopped = true;
      return 0;
    }
  }
  if (sink->response->body.size() + len > sink->limit) {
    sink->overflow = true;
    return 0;  // aborts the transfer
  }
  sink->response->body.append(data, len);
  return len;
}

// Called about once a second while a transfer runs, idle or not.
int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* sink = static_cast<Sink*>(user);
  if (sink->cancel != nullptr && sink->cancel->load(std::memory_order_relaxed)) {
    sink->stopped = true;
    return 1;  // aborts the transfer
  }
  return 0;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t len = size * n;
  std::string_view line(data, len);
  if (line.starts_with("HTTP/")) {
    sink->response->headers.clear();  // a new response (after 100 or a redirect)
    // "HTTP/1.1 200 OK": the status, so that a streamed body knows its answer.
    const auto sp = line.find(' ');
    int status = 0;
    if (sp != std::string_view::npos && line.size() >= sp + 4) {
      std::from_chars(line.data() + sp + 1, line.data() + sp + 4, status);
    }
    sink->response->status = status;
    return len;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  sink->response->headers.emplace_back(Lower(line.substr(0, colon)), std::string(value));
  return len;
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

class HttpClient::Pool {
 public:
  Pool() {
    GlobalInit();
    share_ = curl_share_init();
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &Pool::Lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &Pool::Unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }
  ~Pool() {
    for (CURL* h : idle_) curl_easy_cleanup(h);
    curl_share_cleanup(share_);
  }

  CURL* Take() {
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        CURL* h = idle_.back();
        idle_.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }
  void Give(CURL* h) {
    std::lock_guard lock(mu_);
    if (idle_.size() < 32) {
      idle_.push_back(h);
      return;
    }
    curl_easy_cleanup(h);
  }
  CURLSH* share() { return share_; }

 private:
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Pool*>(user)->locks_[data % kLocks].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Pool*>(user)->locks_[data % kLocks].unlock();
  }
  static constexpr int kLocks = 8;
  std::mutex locks_[kLocks];
  std::mutex mu_;
  std::vector<CURL*> idle_;
  CURLSH* share_ = nullptr;
};

HttpClient::HttpClient(HttpClientOptions options)
    : options_(std::move(options)), pool_(std::make_unique<Pool>()) {}

HttpClient::~HttpClient() = default;

Status HttpClient::CheckUrl(const Url& url) const {
  if (url.scheme == "https") return Status::Ok();
  if (IsLoopbackHost(url.host)) return Status::Ok();
  if (!options_.plain_http_host.empty() && url.host == options_.plain_http_host) {
    return Status::Ok();
  }
  if (options_.allow_metadata_http && IsMetadataHost(url.host)) return Status::Ok();
  return Status::Invalid("refusing plain http:// to non-loopback host '" + url.host +
                         "': use https://");
}

namespace {

// Go's temporary network errors and (unexpected) EOF, in curl's terms.
TransportFailure Classify(CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return TransportFailure::kTemporary;
    default:
      return TransportFailure::kPermanent;
  }
}

}  // namespace

Result<HttpResponse> HttpClient::Do(const HttpRequest& request) { return Do(request, nullptr); }

Result<HttpResponse> HttpClient::Do(const HttpRequest& request, TransportFailure* failure) {
  if (failure != nullptr) *failure = TransportFailure::kNone;
  KES_TRY(CheckUrl(request.url));
  for (const auto& [k, v] : request.headers) {
    if (k.find_first_of("\r\n:") != std::string::npos ||
        v.find_first_of("\r\n") != std::string::npos) {
      return Status::Invalid("invalid HTTP header '" + k + "'");
    }
  }

  CURL* h = pool_->Take();
  if (h == nullptr) return Status::Internal("net: curl_easy_init failed");
  curl_easy_reset(h);  // keeps the connection cache, drops per-request options

  HttpResponse response;
  Sink sink{&response, options_.max_response_bytes, &request.on_body, request.cancel};
  std::string url = request.url.ToString();
  const bool unbounded_stream =
      request.on_body && request.timeout.count() == 0 && request.deadline == kNoDeadline;
  const auto timeout =
      unbounded_stream
          ? std::chrono::milliseconds(-1)
          : TimeLeft(request.deadline,
                     request.timeout.count() > 0 ? request.timeout : options_.request_timeout);
  if (timeout.count() == 0) {
    pool_->Give(h);
    return DeadlineExceeded();
  }

  curl_easy_setopt(h, CURLOPT_SHARE, pool_->share());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(timeout.count(), 0)));
  const bool verify = !options_.insecure_skip_verify;
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
  curl_easy_setopt(h, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!options_.ca_pem.empty()) {
    // curl copies blobs (CURL_BLOB_COPY).
    curl_blob ca{const_cast<char*>(options_.ca_pem.data()), options_.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
  } else if (!options_.ca_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
  }
  if (!options_.client_cert_pem.empty() && !options_.client_key_pem.empty()) {
    curl_blob cert{const_cast<char*>(options_.client_cert_pem.data()),
                   options_.client_cert_pem.size(), CURL_BLOB_COPY};
    curl_blob key{const_cast<char*>(options_.client_key_pem.data()), options_.client_key_pem.size(),
                  CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
  }
  if (request.cancel != nullptr) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &sink);
  }
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &sink);
  // Like upstream (Go's ProxyFromEnvironment), https_proxy / no_proxy from the
  // environment apply to remote hosts; loopback and the link-local credential
  // endpoints are always reached directly.
  if (IsLoopbackHost(request.url.host) || IsMetadataHost(request.url.host)) {
    curl_easy_setopt(h, CURLOPT_PROXY, "");
  }

  if (request.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }

  curl_slist* list = nullptr;
  for (const auto& [k, v] : request.headers) {
    std::string line = k;
    line += ": ";
    line += v;
    list = curl_slist_append(list, line.c_str());
  }
  // No "Expect: 100-continue" round trip and no default Accept.
  list = curl_slist_append(list, "Expect:");
  if (request.method != "GET" && request.method != "HEAD") {
    bool has_type = std::any_of(request.headers.begin(), request.headers.end(),
                                [](const auto& kv) { return Lower(kv.first) == "content-type"; });
    if (!has_type) list = curl_slist_append(list, "Content-Type:");
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);

  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(list);

  if (rc != CURLE_OK && sink.stopped) {
    curl_easy_cleanup(h);
    response.status = static_cast<int>(status);
    return response;  // the caller ended its stream
  }
  if (rc != CURLE_OK) {
    curl_easy_cleanup(h);  // the connection state is unknown: do not reuse
    if (sink.overflow)
      return Status::Unavailable("net: response from " + request.url.Origin() + " too large");
    if (failure != nullptr) *failure = Classify(rc);
    return Status::Unreachable("net: " + request.method + " " + request.url.Origin() + ": " +
                               curl_easy_strerror(rc));
  }
  pool_->Give(h);
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace kes::net
