#include "config/config.h"

namespace kes::config {

keystore::CacheOptions CacheConfig::ToCacheOptions() const {
  keystore::CacheOptions o;
  o.expiry_any = any;
  o.expiry_unused = unused;
  o.expiry_offline = offline;
  return o;
}

}  // namespace kes::config
