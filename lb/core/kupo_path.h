#pragma once
// Kupo's view of a request path (src/Kupo/App/Http.hs): it routes on WAI's pathInfo and
// drops any number of leading "v1" segments before matching, so "/v1/v1/datums/x" is
// routed like "/datums/x". The router's write guard and the cache rules both use this,
// so they cannot disagree about which endpoint a path reaches. Pure; no allocation.
#include <string_view>

namespace lb {

// `path` (normalised, no query) without its leading "/"s and leading "v1" segments:
// "/v1/datums/ab" -> "datums/ab", "/v1" -> "", "/v1x/y" -> "v1x/y".
std::string_view kupo_route(std::string_view path);

// The first segment of kupo_route(path) ("datums" for "/v1/datums/ab"), and in `rest` what
// follows it after its "/" ("ab"; empty when there is none).
std::string_view kupo_endpoint(std::string_view path, std::string_view* rest = nullptr);

}  // namespace lb
