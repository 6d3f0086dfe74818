#include "crypto/names.hpp"

#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include "core/error.hpp"
#include "crypto/internal.hpp"

namespace acme_sidecar::crypto::detail {

using core::Error;
using core::ErrorKind;

void check_dns_name(const std::string& name) {
  if (name.empty()) throw Error(ErrorKind::Invalid, "empty DNS name");
  if (name.size() > 253) throw Error(ErrorKind::Invalid, "DNS name longer than 253 characters");
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f) {
      throw Error(ErrorKind::Invalid, "DNS name contains a control, space or non-ASCII byte (use A-labels)",
                  {{"name", name.substr(0, 64)}});  // printable check failed: show only a bounded prefix
    }
  }
}

GeneralNamesPtr dns_general_names(const std::vector<std::string>& dns, const std::vector<std::string>& ips) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) throw_openssl(ErrorKind::Internal, "sk_GENERAL_NAME_new_null failed");
  // Each element is owned by a unique_ptr until the stack takes it.
  auto push = [&](GeneralNamePtr gn) {
    if (sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) throw_openssl(ErrorKind::Internal, "sk_GENERAL_NAME_push");
    (void)gn.release();
  };
  for (const auto& name : dns) {
    check_dns_name(name);
    GeneralNamePtr gn(GENERAL_NAME_new());
    Asn1StringPtr ia5(ASN1_IA5STRING_new());
    if (!gn || !ia5 || ASN1_STRING_set(ia5.get(), name.data(), static_cast<int>(name.size())) != 1) {
      throw_openssl(ErrorKind::Internal, "GENERAL_NAME allocation failed");
    }
    GENERAL_NAME_set0_value(gn.get(), GEN_DNS, ia5.release());
    push(std::move(gn));
  }
  for (const auto& ip : ips) {
    Asn1StringPtr octets(a2i_IPADDRESS(ip.c_str()));
    if (!octets) {
      clear_openssl_errors();
      throw Error(ErrorKind::Invalid, "not an IP address", {{"ip", ip.substr(0, 64)}});
    }
    GeneralNamePtr gn(GENERAL_NAME_new());
    if (!gn) throw_openssl(ErrorKind::Internal, "GENERAL_NAME allocation failed");
    GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, octets.release());
    push(std::move(gn));
  }
  return names;
}

}  // namespace acme_sidecar::crypto::detail
