// The filesystem keystore (keystores.md §5, crypto.md §4.4): one regular
// file per key directly in one directory, file name = key name, content =
// the stored value exactly. A directory written by upstream KES is served
// as is, and vice versa.
//
// Durability: a key is written to a hidden temporary file, fsync'd, then
// linked to its name (link() never replaces an existing file, so of many
// concurrent creates of one name exactly one wins) and the directory is
// fsync'd. Hidden files are never keys: List ignores them.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "keystore/keystore.h"

namespace kes::keystore::fs {

// Upstream's file-name guard: non-empty and none of '/', '\\', '.'.
bool IsValidName(std::string_view name);

// Opens (and creates, mode 0700, with parents) the directory `path`. Stale
// temporaries (older than 10 minutes, left by a crash) are removed by a
// background thread a few seconds later, so neither opening nor the first
// requests wait for a read of the whole directory.
// Display name "Filesystem: <path>". Fails if `path` exists and is not a
// directory: "fs: '<path>' is not a directory".
Result<std::unique_ptr<KeyStore>> Open(const std::string& path);

// Starts the background removal of stale temporaries now if it is still
// waiting, and blocks until it has finished. No-op for a store that Open
// did not return, or once the store is closed.
void WaitForStartupCleanup(KeyStore& store);

}  // namespace kes::keystore::fs
