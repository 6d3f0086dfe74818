// libFuzzer entry points for every parser of CA responses. One source, one target per parser, chosen
// by ACME_FUZZ_<NAME> at compile time. Parsers must either return or throw core::Error: anything else
// (another exception type, a crash, a sanitizer report) is a finding.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "acme/chain.hpp"
#include "acme/headers.hpp"
#include "acme/problem.hpp"
#include "acme/resources.hpp"
#include "core/error.hpp"
#include "crypto/x509.hpp"

using namespace acme_sidecar;

namespace {

void run(std::string_view in) {
#if defined(ACME_FUZZ_DIRECTORY)
  auto d = acme::parse_directory(in);
  (void)d.meta.profiles.size();
#elif defined(ACME_FUZZ_ORDER)
  auto o = acme::parse_order(in);
  if (o.error) (void)o.error->describe();
#elif defined(ACME_FUZZ_AUTHORIZATION)
  // Authorizations and challenges share shapes; try both.
  try {
    auto a = acme::parse_authorization(in);
    (void)a.find("http-01");
  } catch (const core::Error&) {
  }
  (void)acme::parse_challenge(in);
#elif defined(ACME_FUZZ_PROBLEM)
  auto p = acme::parse_problem(in);
  (void)p.describe();
  (void)acme::response_error(400, "application/problem+json", in, std::nullopt, "fuzz");
  (void)acme::parse_renewal_info(in);
#elif defined(ACME_FUZZ_CHAIN)
  // Input: Link/Retry-After header values, one per line, a blank line, then the PEM chain body.
  auto split = in.find("\n\n");
  std::string_view headers = split == std::string_view::npos ? std::string_view() : in.substr(0, split);
  std::string_view body = split == std::string_view::npos ? in : in.substr(split + 2);
  std::vector<std::string> values;
  while (!headers.empty()) {
    auto nl = headers.find('\n');
    values.emplace_back(headers.substr(0, nl));
    headers = nl == std::string_view::npos ? std::string_view() : headers.substr(nl + 1);
  }
  auto links = acme::parse_links(values, "https://127.0.0.1:14000/certZ/1");
  (void)acme::links_with_rel(links, "alternate");
  for (const auto& v : values) (void)acme::parse_retry_after(v, core::TimePoint{});
  auto chain = crypto::parse_pem_chain(body);
  for (const auto& c : chain) (void)c.dns_names();
  // check_chain with the leaf's own key and names, so the links are what is left to decide: its
  // summary path must say what OpenSSL's issued_by says, and return OpenSSL's PEM and names.
  const crypto::PublicKey key = chain.front().public_key();
  bool links_ok = chain.size() > 1 || crypto::self_issued(chain.front());
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) links_ok = links_ok && crypto::issued_by(chain[i], chain[i + 1]);
  std::optional<acme::CheckedChain> checked;
  try {
    checked = acme::check_chain(body, chain.front().dns_names(), key, {}, core::TimePoint{});
  } catch (const core::Error&) {
  }
  if (checked.has_value() != links_ok) __builtin_trap();
  if (!checked) return;
  if (checked->pem != crypto::to_pem_chain(chain) || acme::chain_root_name(*checked) != chain.back().issuer_cn() ||
      checked->not_after != chain.front().not_after()) {
    __builtin_trap();
  }
  (void)acme::chain_matches_preferred(*checked, "Pebble Root CA");
#else
#error "define one ACME_FUZZ_<TARGET>"
#endif
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    run(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const core::Error&) {
    // Rejected cleanly: what we want for garbage.
  }
  return 0;
}
