#pragma once
// RAII for libcurl handles: one alias per handle type, freed by its own cleanup function.
#include <curl/curl.h>

#include <memory>

namespace acme_sidecar::http {

struct CurlEasyDeleter {
  void operator()(CURL* h) const noexcept { curl_easy_cleanup(h); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
struct CurlShareDeleter {
  void operator()(CURLSH* s) const noexcept { curl_share_cleanup(s); }
};

using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlSlistPtr = std::unique_ptr<curl_slist, CurlSlistDeleter>;
using CurlSharePtr = std::unique_ptr<CURLSH, CurlShareDeleter>;

}  // namespace acme_sidecar::http
