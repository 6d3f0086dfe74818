#include "acme/jws.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/json_document.hpp"
#include "crypto/encoding.hpp"
#include "crypto/jwk.hpp"
#include "crypto/sign.hpp"

namespace acme_sidecar::acme {

using nlohmann::json;
using core::Error;
using core::ErrorKind;

namespace {

std::string flattened(const std::string& protected_json, std::string_view payload, const crypto::Bytes& sig,
                      bool payload_is_empty) {
  json out;
  out["protected"] = crypto::base64url_encode(protected_json);
  out["payload"] = payload_is_empty ? std::string() : crypto::base64url_encode(payload);
  out["signature"] = crypto::base64url_encode(crypto::ByteView(sig));
  return out.dump();
}

std::string str_member(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string b64_to_string(std::string_view s, const char* what) {
  try {
    auto b = crypto::base64url_decode(s);
    return std::string(b.begin(), b.end());
  } catch (const Error&) {
    throw Error(ErrorKind::Parse, std::string("JWS: ") + what + " is not base64url");
  }
}

}  // namespace

std::string jws_sign(const crypto::PrivateKey& key, std::string_view kid, std::string_view nonce, std::string_view url,
                     std::string_view payload) {
  // The protected header, written directly in nlohmann's (sorted) member order: alg, jwk|kid, nonce, url.
  std::string header = R"({"alg":)";
  core::append_json_string(header, crypto::jws_alg(key));
  if (kid.empty()) {
    header += R"(,"jwk":)";
    header += crypto::jwk_json(key);  // already canonical JSON (RFC 7638 member order)
  } else {
    header += R"(,"kid":)";
    core::append_json_string(header, kid);
  }
  if (!nonce.empty()) {
    header += R"(,"nonce":)";
    core::append_json_string(header, nonce);
  }
  header += R"(,"url":)";
  core::append_json_string(header, url);
  header += '}';
  std::string protected_b64 = crypto::base64url_encode(header);
  std::string payload_b64 = payload.empty() ? std::string() : crypto::base64url_encode(payload);
  std::string signing_input;
  signing_input.reserve(protected_b64.size() + 1 + payload_b64.size());
  signing_input.append(protected_b64).append(1, '.').append(payload_b64);
  crypto::Bytes sig = crypto::sign(key, signing_input);
  // Flattened JSON serialization (RFC 7515 §7.2.2), written directly: the parts are base64url, so
  // nothing needs escaping.
  std::string sig_b64 = crypto::base64url_encode(crypto::ByteView(sig));
  std::string out;
  out.reserve(protected_b64.size() + payload_b64.size() + sig_b64.size() + 48);
  out.append(R"({"payload":")").append(payload_b64).append(R"(","protected":")").append(protected_b64);
  out.append(R"(","signature":")").append(sig_b64).append(R"("})");
  return out;
}

std::string eab_jws(const crypto::PublicKey& account_key, std::string_view eab_kid, std::string_view hmac_key_b64url,
                    std::string_view url) {
  crypto::Bytes mac_key;
  try {
    mac_key = crypto::base64url_decode(hmac_key_b64url);
  } catch (const Error&) {
    // Some CAs hand out padded or standard base64; accept that too rather than fail obscurely.
    std::string s(hmac_key_b64url);
    while (!s.empty() && s.back() == '=') s.pop_back();
    for (char& c : s) {
      if (c == '+') c = '-';
      if (c == '/') c = '_';
    }
    try {
      mac_key = crypto::base64url_decode(s);
    } catch (const Error&) {
      throw Error(ErrorKind::Config, "EAB HMAC key is not base64url");
    }
  }
  if (mac_key.empty()) throw Error(ErrorKind::Config, "EAB HMAC key is empty");
  if (eab_kid.empty()) throw Error(ErrorKind::Config, "EAB key id is empty");
  json header;
  header["alg"] = "HS256";
  header["kid"] = std::string(eab_kid);
  header["url"] = std::string(url);
  std::string payload = crypto::jwk_json(account_key);
  std::string protected_b64 = crypto::base64url_encode(header.dump());
  std::string payload_b64 = crypto::base64url_encode(payload);
  crypto::Bytes mac = crypto::hmac_sha256(crypto::ByteView(mac_key), protected_b64 + "." + payload_b64);
  return flattened(header.dump(), payload, mac, false);
}

JwsMessage parse_jws(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorKind::Parse, "JWS is not a JSON object");
  auto p = j.find("protected"), pl = j.find("payload"), s = j.find("signature");
  if (p == j.end() || !p->is_string() || pl == j.end() || !pl->is_string() || s == j.end() || !s->is_string())
    throw Error(ErrorKind::Parse, "JWS lacks protected/payload/signature strings");
  JwsMessage m;
  m.protected_json = b64_to_string(p->get<std::string>(), "protected header");
  m.payload = b64_to_string(pl->get<std::string>(), "payload");
  m.signature = b64_to_string(s->get<std::string>(), "signature");
  m.signing_input = p->get<std::string>() + "." + pl->get<std::string>();
  json h = json::parse(m.protected_json, nullptr, false);
  if (h.is_discarded() || !h.is_object()) throw Error(ErrorKind::Parse, "JWS protected header is not a JSON object");
  m.alg = str_member(h, "alg");
  m.kid = str_member(h, "kid");
  m.nonce = str_member(h, "nonce");
  m.url = str_member(h, "url");
  if (auto k = h.find("jwk"); k != h.end() && k->is_object()) {
    std::string kty = str_member(*k, "kty");
    if (kty == "EC") {
      m.jwk = crypto::ec_public_key_from_jwk(str_member(*k, "crv"), str_member(*k, "x"), str_member(*k, "y"));
    } else if (kty == "RSA") {
      m.jwk = crypto::rsa_public_key_from_jwk(str_member(*k, "n"), str_member(*k, "e"));
    } else {
      throw Error(ErrorKind::Parse, "JWS jwk has unsupported kty");
    }
  }
  return m;
}

bool verify_jws(const JwsMessage& m, const crypto::PublicKey& key) {
  if (m.alg != crypto::jws_alg(key)) return false;
  return crypto::verify(key, m.signing_input, crypto::as_bytes(m.signature));
}

std::string verify_eab_jws(std::string_view eab_json, std::string_view hmac_key_b64url, std::string& eab_kid_out) {
  JwsMessage m = parse_jws(eab_json);
  if (m.alg != "HS256") throw Error(ErrorKind::Invalid, "EAB JWS alg is not HS256");
  auto key = crypto::base64url_decode(hmac_key_b64url);
  auto mac = crypto::hmac_sha256(crypto::ByteView(key), m.signing_input);
  if (mac.size() != m.signature.size() ||
      !std::equal(mac.begin(), mac.end(), reinterpret_cast<const std::uint8_t*>(m.signature.data())))
    throw Error(ErrorKind::Unauthorized, "EAB JWS MAC does not verify");
  eab_kid_out = m.kid;
  return m.payload;
}

}  // namespace acme_sidecar::acme
