#include "net/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace kes::net {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

Result<Url> Url::Parse(std::string_view text, std::string_view default_scheme) {
  Url url;
  std::string_view rest = text;
  if (auto p = rest.find("://"); p != std::string_view::npos) {
    url.scheme = Lower(rest.substr(0, p));
    rest.remove_prefix(p + 3);
  } else if (!default_scheme.empty()) {
    url.scheme = Lower(default_scheme);
  } else {
    return Status::Invalid("invalid URL '" + std::string(text) + "': no scheme");
  }
  if (url.scheme != "http" && url.scheme != "https") {
    return Status::Invalid("invalid URL '" + std::string(text) + "': scheme must be http or https");
  }
  if (rest.find_first_of(" \t\r\n@#") != std::string_view::npos) {
    return Status::Invalid("invalid URL '" + std::string(text) + "'");
  }
  std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  rest.remove_prefix(authority.size());
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return Status::Invalid("invalid URL '" + std::string(text) + "'");
    url.host = Lower(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Status::Invalid("invalid URL '" + std::string(text) + "'");
      port_text = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    url.host = Lower(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) return Status::Invalid("invalid URL '" + std::string(text) + "': no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return Status::Invalid("invalid URL '" + std::string(text) + "': bad port");
    }
    url.port = static_cast<uint16_t>(port);
  } else {
    url.port = url.scheme == "https" ? 443 : 80;
  }
  auto q = rest.find('?');
  url.path = std::string(rest.substr(0, q));
  if (q != std::string_view::npos) url.query = std::string(rest.substr(q + 1));
  if (url.path.empty()) url.path = "/";
  return url;
}

std::string Url::HostHeader() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (!IsDefaultPort()) h += ":" + std::to_string(port);
  return h;
}

std::string Url::Origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return scheme + "://" + h + ":" + std::to_string(port);
}

std::string Url::ToString() const {
  std::string s = Origin() + path;
  if (!query.empty()) s += "?" + query;
  return s;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

}  // namespace kes::net
