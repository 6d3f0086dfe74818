#pragma once
// Private helpers shared by CSR and certificate minting (not part of the module's API).
#include <string>
#include <vector>

#include "crypto/ossl_ptr.hpp"

namespace acme_sidecar::crypto::detail {

// RFC 5280 ub-common-name.
inline constexpr std::size_t kMaxCommonNameBytes = 64;

// Throws core::Error(Invalid) for an empty name, or one with bytes outside printable ASCII
// (IDNs must arrive as A-labels), spaces, or more than 253 characters.
void check_dns_name(const std::string& name);
// GENERAL_NAMES of dNSName entries followed by iPAddress entries (text form; Invalid when unparsable).
GeneralNamesPtr dns_general_names(const std::vector<std::string>& dns, const std::vector<std::string>& ips);

}  // namespace acme_sidecar::crypto::detail
