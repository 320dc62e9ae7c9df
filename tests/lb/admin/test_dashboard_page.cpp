#include <doctest.h>

#include <string>

#include "lb/admin/dashboard.h"

using lb::admin::dashboard_csp;
using lb::admin::dashboard_page;

TEST_CASE("dashboard csp: inline script and style allowed by their SHA-256, nothing else") {
  // Expected hashes computed independently (Python hashlib + base64).
  std::string csp = dashboard_csp("<html><style>a{}</style><script>x=1;</script></html>");
  CHECK(csp.find("default-src 'none'") != std::string::npos);
  CHECK(csp.find("script-src 'sha256-RzC/gtEPO0pMibFM2UIEE8qSNdoNsZxwwHmx0KeQQBQ=';") !=
        std::string::npos);
  CHECK(csp.find("style-src 'sha256-X1RutGBrXCt9KkSaXMK7tHftWiRscFHOhxsS8tv8hBk=';") !=
        std::string::npos);
  CHECK(csp.find("connect-src 'self'") != std::string::npos);
  CHECK(csp.find("unsafe-inline") == std::string::npos);
  CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
}

TEST_CASE("dashboard csp: a page without scripts allows none; one changed byte changes it") {
  CHECK(dashboard_csp("<p>hi</p>").find("script-src 'none'") != std::string::npos);
  CHECK(dashboard_csp("<script>x=1;</script>") != dashboard_csp("<script>x=2;</script>"));
}

TEST_CASE("dashboard page: the embedded file, whole, with one script and one style hashed") {
  const auto& page = dashboard_page();
  REQUIRE(page.html.size() > 1000);
  CHECK(page.html.starts_with("<!DOCTYPE html>"));
  CHECK(page.html.find("</html>") != std::string_view::npos);
  CHECK(page.html.find('\0') == std::string_view::npos);
  // Exactly one hash each: the page has one <script> and one <style> element.
  auto count = [&](std::string_view directive) {
    size_t at = page.csp.find(directive);
    REQUIRE(at != std::string::npos);
    std::string_view rest = std::string_view(page.csp).substr(at);
    rest = rest.substr(0, rest.find(';'));
    size_t n = 0;
    for (size_t i = 0; (i = rest.find("'sha256-", i)) != std::string_view::npos; ++i) ++n;
    return n;
  };
  CHECK(count("script-src") == 1);
  CHECK(count("style-src") == 1);
}

TEST_CASE("dashboard page: a cached pool gets a hit-ratio panel from /status's pool cache") {
  const std::string_view html = dashboard_page().html;
  CHECK(html.find("function cachePanel(c)") != std::string_view::npos);
  CHECK(html.find("panels.push(cachePanel(p.cache))") != std::string_view::npos);
  CHECK(html.find("fmtPct(ratio)") != std::string_view::npos);
  CHECK(html.find("'data-cache': 'true'") != std::string_view::npos);
}
