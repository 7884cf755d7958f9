// The listing helper upstream applies in every backend that fetches all
// names at once (keystores.md §2.4). Semantics are upstream's, including its
// edge cases (a prefix walk may return one name more than the page size).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "keystore/keystore.h"

namespace kes::keystore {

// Upstream's page size when the caller does not ask for one.
inline constexpr size_t kDefaultListPage = 1024;

// Sorts `names` byte-wise and returns the names with `prefix` (empty = all),
// at most one page (n > 0: about n names; n <= 0: kDefaultListPage), plus
// the name to continue from.
ListPage ListNames(std::vector<std::string> names, std::string_view prefix, int n);

// What a backend returns for KeyStore::List: `limit` <= 0 means every name
// with the prefix in one page (keystore.h contract); otherwise ListNames.
ListPage ListAll(std::vector<std::string> names, std::string_view prefix, int limit);

}  // namespace kes::keystore
