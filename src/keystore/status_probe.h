// The status probe of the HTTP keystores (keystores-cloud.md §0): the
// backend's answer to one request, any HTTP status, means it is up.
#pragma once

#include <chrono>

#include "common/deadline.h"
#include "common/status.h"
#include "keystore/keystore.h"
#include "net/http_client.h"

namespace kes::keystore {

// The error a status probe reports when its request got no HTTP answer: a
// transport failure or the expired deadline means the keystore is
// unreachable; any other error is returned as it is.
kes::Status ProbeFailure(const kes::Status& error, Deadline deadline);

// The state a status probe reports for `resp`, sent at `start`: any HTTP
// answer means up, with the latency since `start`; else ProbeFailure.
Result<KeyStoreState> ProbeState(const Result<net::HttpResponse>& resp,
                                 std::chrono::steady_clock::time_point start, Deadline deadline);

}  // namespace kes::keystore
