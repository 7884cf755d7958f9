// Url: the parts of an absolute http(s) URL that an outbound request needs.
// Only what the AWS and KES clients use: scheme, host, port, path and query.
// No user info, no fragments.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace kes::net {

struct Url {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // without brackets for IPv6 ("::1")
  uint16_t port = 0;   // explicit or the scheme's default
  std::string path;    // starts with '/'; "/" when the URL has none
  std::string query;   // without '?'; may be empty

  // Parses "scheme://host[:port][/path][?query]". With `default_scheme`
  // non-empty, a text without "://" is taken as a host (and optional port and
  // path) of that scheme, as KES does for endpoints like "secretsmanager.us-east-1.amazonaws.com".
  static Result<Url> Parse(std::string_view text, std::string_view default_scheme = {});

  bool IsDefaultPort() const { return port == (scheme == "https" ? 443 : 80); }
  // The value of the Host header: host, bracketed when IPv6, with ":port"
  // only when the port is not the scheme's default.
  std::string HostHeader() const;
  // scheme://host[:port] without path.
  std::string Origin() const;
  // Origin() + path (+ "?" + query).
  std::string ToString() const;
};

// True for names and addresses that never leave the machine: "localhost",
// 127.0.0.0/8 and ::1.
bool IsLoopbackHost(std::string_view host);

}  // namespace kes::net
