// DoWithRetry: the retrying HTTP call the Thales, Fortanix and Entrust
// keystores make (keystores-cloud.md §0, upstream's xhttp.Retry).
//
// A request that fails with a temporary transport error (timeout, reset,
// connection closed early) or is answered with a status >= 500 is sent again,
// up to `retries` more times, after `base` + uniform[0, `jitter`) each time.
// A refused connection or a DNS/TLS failure is not retried: the next try
// would fail the same way. Unlike upstream, the whole loop is bounded by the
// request's deadline: no wait starts that would end after it.
#pragma once

#include <chrono>

#include "net/http_client.h"

namespace kes::net {

struct RetryPolicy {
  int retries = 2;
  std::chrono::milliseconds base{200};
  std::chrono::milliseconds jitter{800};
};

// The last answer (possibly a 5xx) or, when every try failed in transport,
// Unreachable; a temporary failure after the last try reads
// "http: temporary network error: <cause>".
Result<HttpResponse> DoWithRetry(HttpClient& client, const HttpRequest& request,
                                 const RetryPolicy& policy = {});

}  // namespace kes::net
