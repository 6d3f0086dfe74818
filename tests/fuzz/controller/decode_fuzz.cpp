// Fuzz target: untrusted Kubernetes JSON → decoders → the pure decisions. Must never crash, hang or
// throw (decoders record problems; decisions accept any view).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "controller/decode.hpp"
#include "core/desired.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace acme_sidecar;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ingress = controller::decode_ingress_text(text);
  auto secret = controller::decode_secret_text(text);
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (!j.is_discarded()) (void)controller::decode_ingress_class(j);
  if (ingress.usable) {
    core::DesiredConfig config;
    config.classes.watch_without_class = true;
    auto state = core::desired_certificates({ingress.value, ingress.value}, config);
    for (const auto& [key, cert] : state.certificates) {
      if (!core::split_key(key)) __builtin_trap();  // keys built from decoded names must split back
      (void)cert.fingerprint();
    }
    (void)core::certificate_keys(ingress.value);
  }
  if (secret.usable) (void)controller::encode_secret(secret.value).dump();
  return 0;
}
