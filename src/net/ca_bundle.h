// ReadCaBundle: the custom CA option (`tls.ca`) of the Thales, Fortanix and
// Entrust keystores (keystores-cloud.md §0), as one PEM bundle for
// HttpClientOptions::ca_pem.
#pragma once

#include <string>

#include "common/status.h"

namespace kes::net {

// `path` is a PEM file, or a directory whose regular files are each read
// (sorted by name; sub-directories skipped). Every file must hold at least
// one X.509 certificate and nothing else, else the error reads
// "'<file>' does not contain a valid X.509 PEM-encoded certificate".
// With `with_system_roots` the system trust store's certificates come first
// (Entrust trusts both; Thales and Fortanix trust only the given CAs).
Result<std::string> ReadCaBundle(const std::string& path, bool with_system_roots = false);

}  // namespace kes::net
