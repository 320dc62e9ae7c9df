#pragma once
// Session key extraction: an ordered list of extractors; the first that yields a key wins
// (DESIGN.md "Pinning"). Pure: works on views of a parsed request.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/header_view.h"
#include "lb/core/session_key.h"

namespace lb {

struct ExtractorSpec {
  KeySource from = KeySource::client_ip;
  // path: the prefix (e.g. "/s/"); cookie and header: the name; unused otherwise.
  std::string arg;
  bool operator==(const ExtractorSpec&) const = default;
};

struct RequestView {
  std::string_view method;
  std::string_view target;  // origin-form: path[?query]
  std::span<const HeaderView> headers;
  // Client address bytes: 4 (IPv4) or 16 (IPv6); empty when unknown (e.g. unix socket).
  std::span<const uint8_t> client_ip;
};

struct Extraction {
  bool found = false;
  KeySource source = KeySource::client_ip;
  SessionKey key;  // make_session_key(source, material)
  // The target to route and forward: `target` with a path-token prefix (/s/<token>)
  // removed when a path extractor is configured and matches, whichever extractor won.
  std::string_view forward_target;
  // True when forward_target must be prefixed with "/" (the token was the last segment).
  bool forward_needs_slash = false;
};

// Runs the extractors in order over the request.
Extraction extract_key(std::span<const ExtractorSpec> extractors, const RequestView& req);

}  // namespace lb
