#include "net/srv_lookup.h"

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>

#include <array>
#include <cstring>

namespace kes::net {
namespace {

// RFC 2782 RDATA: priority, weight, port (16 bits each), then the target.
constexpr size_t kSrvFixedBytes = 6;

// One SRV answer record parsed with the ns_* API; nullopt when malformed.
std::optional<std::pair<uint16_t, SrvTarget>> ParseSrv(ns_msg& msg, const ns_rr& rr) {
  if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in) return std::nullopt;
  if (ns_rr_rdlen(rr) < kSrvFixedBytes) return std::nullopt;
  const unsigned char* rdata = ns_rr_rdata(rr);
  const uint16_t priority = ns_get16(rdata);
  const uint16_t port = ns_get16(rdata + 4);
  std::array<char, NS_MAXDNAME> target{};
  if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rdata + kSrvFixedBytes, target.data(),
                static_cast<int>(target.size())) < 0) {
    return std::nullopt;
  }
  std::string host(target.data());
  while (!host.empty() && host.back() == '.') host.pop_back();
  // Target "." means "service not available here" (RFC 2782).
  if (host.empty() || port == 0) return std::nullopt;
  return std::make_pair(priority, SrvTarget{std::move(host), port});
}

}  // namespace

std::optional<SrvTarget> LookupSrv(std::string_view service, std::string_view proto,
                                   std::string_view name) {
  const std::string query =
      "_" + std::string(service) + "._" + std::string(proto) + "." + std::string(name);
  struct __res_state state;
  std::memset(&state, 0, sizeof(state));
  if (res_ninit(&state) != 0) return std::nullopt;
  // Bounded: 2 s per try, 2 tries per server, whatever resolv.conf says.
  state.retrans = 2;
  state.retry = 2;
  std::array<unsigned char, 4096> answer{};
  const int len = res_nquery(&state, query.c_str(), ns_c_in, ns_t_srv, answer.data(),
                             static_cast<int>(answer.size()));
  res_nclose(&state);
  if (len <= 0) return std::nullopt;

  ns_msg msg;
  if (ns_initparse(answer.data(), len, &msg) != 0) return std::nullopt;
  std::optional<std::pair<uint16_t, SrvTarget>> best;
  for (int i = 0; i < ns_msg_count(msg, ns_s_an); ++i) {
    ns_rr rr;
    if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) return std::nullopt;
    auto srv = ParseSrv(msg, rr);
    if (srv && (!best || srv->first < best->first)) best = std::move(srv);
  }
  if (!best) return std::nullopt;
  return std::move(best->second);
}

}  // namespace kes::net
