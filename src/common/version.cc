#include "common/version.h"

#ifndef KES_VERSION
#define KES_VERSION "<unknown>"
#endif
#ifndef KES_COMMIT
#define KES_COMMIT "<unknown>"
#endif

namespace kes {

std::string_view BuildVersion() { return KES_VERSION; }
std::string_view BuildCommit() { return KES_COMMIT; }

}  // namespace kes
