#include "keystore/list.h"

#include <algorithm>
#include <iterator>

namespace kes::keystore {
namespace {

ListPage Page(std::vector<std::string>::iterator begin, std::vector<std::string>::iterator end,
              std::string continue_at) {
  ListPage page;
  page.names.assign(std::make_move_iterator(begin), std::make_move_iterator(end));
  page.continue_at = std::move(continue_at);
  return page;
}

}  // namespace

ListPage ListNames(std::vector<std::string> names, std::string_view prefix, int n) {
  std::sort(names.begin(), names.end());
  auto first = names.begin();
  if (!prefix.empty()) {
    first = std::find_if(names.begin(), names.end(),
                         [&](const std::string& s) { return s.starts_with(prefix); });
    if (first == names.end()) return {};
    const size_t remaining = static_cast<size_t>(names.end() - first);
    for (size_t i = 0; i < remaining; ++i) {
      const auto at = first + static_cast<std::ptrdiff_t>(i);
      if (!at->starts_with(prefix)) return Page(first, at, "");
      if ((n > 0 && i > static_cast<size_t>(n)) || i == kDefaultListPage) {
        // The page limit falls on the very last name: return everything.
        if (i == remaining - 1) return Page(first, names.end(), "");
        std::string next = *at;
        return Page(first, at, std::move(next));
      }
    }
  }
  // Every name from `first` on matches (or there is no prefix).
  const size_t count = static_cast<size_t>(names.end() - first);
  const size_t limit = n > 0 ? static_cast<size_t>(n) : kDefaultListPage;
  if (count <= limit) return Page(first, names.end(), "");
  const auto cut = first + static_cast<std::ptrdiff_t>(limit);
  std::string next = *cut;
  return Page(first, cut, std::move(next));
}

ListPage ListAll(std::vector<std::string> names, std::string_view prefix, int limit) {
  if (limit > 0) return ListNames(std::move(names), prefix, limit);
  std::erase_if(names, [&](const std::string& s) { return !s.starts_with(prefix); });
  std::sort(names.begin(), names.end());
  ListPage page;
  page.names = std::move(names);
  return page;
}

}  // namespace kes::keystore
