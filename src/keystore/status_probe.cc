#include "keystore/status_probe.h"

namespace kes::keystore {

kes::Status ProbeFailure(const kes::Status& error, Deadline deadline) {
  if (error.code() == Code::kUnreachable || Expired(deadline)) {
    return kes::Status::Unreachable("kes: keystore unreachable: " + error.message());
  }
  return error;
}

Result<KeyStoreState> ProbeState(const Result<net::HttpResponse>& resp,
                                 std::chrono::steady_clock::time_point start, Deadline deadline) {
  if (!resp.ok()) return ProbeFailure(resp.status(), deadline);
  return KeyStoreState{std::chrono::steady_clock::now() - start};
}

}  // namespace kes::keystore
