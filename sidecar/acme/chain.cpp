#include "acme/chain.hpp"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/error.hpp"

namespace acme_sidecar::acme {

using core::Error;
using core::ErrorKind;

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& n : s) out += (out.empty() ? "" : ",") + n;
  return out.size() > 300 ? out.substr(0, 300) + "..." : out;
}
}  // namespace

std::vector<crypto::Certificate> check_chain(std::string_view pem, const std::vector<std::string>& names,
                                             const crypto::PublicKey& key,
                                             const std::vector<std::string>& trusted_roots, core::TimePoint now) {
  if (pem.find("PRIVATE KEY") != std::string_view::npos)
    throw Error(ErrorKind::Crypto, "certificate chain from the CA contains a private key block");
  std::vector<crypto::Certificate> chain = crypto::parse_pem_chain(pem);
  if (chain.empty()) throw Error(ErrorKind::Parse, "certificate chain from the CA is empty");
  const auto& leaf = chain.front();
  if (!(leaf.public_key() == key))
    throw Error(ErrorKind::Crypto, "certificate from the CA does not match the CSR key");
  std::set<std::string> want, got;
  for (const auto& n : names) want.insert(lower(n));
  for (const auto& n : leaf.dns_names()) got.insert(lower(n));
  if (want != got)
    throw Error(ErrorKind::Crypto, "certificate from the CA is for other names",
                {{"requested", join(want)}, {"issued", join(got)}});
  if (chain.size() == 1 && !crypto::self_issued(leaf))
    throw Error(ErrorKind::Crypto, "certificate chain from the CA is truncated: the leaf comes without its issuer",
                {{"issuer", leaf.issuer_cn()}});
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
    if (!crypto::issued_by(chain[i], chain[i + 1]))
      throw Error(ErrorKind::Crypto, "certificate chain from the CA is broken: certificate " + std::to_string(i) +
                                         " is not signed by certificate " + std::to_string(i + 1));
  }
  if (!trusted_roots.empty()) {
    auto r = crypto::verify_chain(chain, trusted_roots, now);
    if (!r) throw Error(ErrorKind::Crypto, "certificate chain does not verify against the trusted roots: " + r.error);
  }
  return chain;
}

std::string chain_root_name(const std::vector<crypto::Certificate>& chain) {
  return chain.empty() ? std::string() : chain.back().issuer_cn();
}

bool chain_matches_preferred(const std::vector<crypto::Certificate>& chain, std::string_view name) {
  for (std::size_t i = 0; i < chain.size(); ++i) {
    if (chain[i].issuer_cn() == name) return true;
    if (i > 0 && chain[i].subject_cn() == name) return true;
  }
  return false;
}

std::string ari_cert_id(crypto::ByteView aki, crypto::ByteView serial) {
  if (aki.empty()) throw Error(ErrorKind::Crypto, "certificate has no authority key identifier (needed for ARI)");
  if (serial.empty()) throw Error(ErrorKind::Crypto, "certificate has an empty serial");
  return crypto::base64url_encode(aki) + "." + crypto::base64url_encode(serial);
}


}  // namespace acme_sidecar::acme
