// Differential fuzz target: core::JsonDocument must accept exactly what nlohmann-json accepts (below
// the nesting limit) and read the same values; any disagreement aborts.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/json_document.hpp"
#include "tests/fuzz/core/to_nlohmann.hpp"

using acme_sidecar::core::JsonDocument;
using acme_sidecar::testing::to_nlohmann;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // nlohmann has no depth limit (it recurses); stay well inside ours and the stack.
  std::size_t depth = 0, max_depth = 0;
  for (char c : text) {
    if (c == '[' || c == '{') max_depth = std::max(max_depth, ++depth);
    if ((c == ']' || c == '}') && depth > 0) --depth;
  }
  if (max_depth > 200) return 0;
  auto ours = JsonDocument::parse(text);
  auto theirs = nlohmann::json::parse(text, nullptr, false);
  if (!ours.ok() && !theirs.is_discarded()) {
    // nlohmann ends the input at a NUL byte where a token would start ("1\0junk" parses as 1); RFC 8259
    // and JsonDocument do not. Then the text before that NUL must read the same.
    const auto nul = text.find('\0');
    if (nul == std::string_view::npos) std::abort();
    auto prefix = JsonDocument::parse(text.substr(0, nul));
    if (!prefix.ok() || to_nlohmann(prefix.root()) != theirs) std::abort();
    return 0;
  }
  if (ours.ok() != !theirs.is_discarded()) std::abort();
  if (ours.ok() && to_nlohmann(ours.root()) != theirs) std::abort();
  return 0;
}
