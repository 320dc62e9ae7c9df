#pragma once
// The live dashboard (DESIGN.md "Observability"): lb/admin/dashboard.html, compiled into
// the binary by cmake/embed.cmake and served by the admin listener at GET /. The page holds
// no data (it polls /status with the token from its URL fragment), so it is served without
// the admin token, under a Content-Security-Policy that allows only its own inline script
// and style (by hash) and requests to the admin listener itself.
#include <string>
#include <string_view>

#include "lb/net/http_server.h"

namespace lb::admin {

struct DashboardPage {
  std::string_view html;
  std::string csp;  // the Content-Security-Policy header value for `html`
};

// The embedded page and its policy, computed once on first use.
const DashboardPage& dashboard_page();

// The Content-Security-Policy for a page whose only scripts and styles are the inline
// <script> and <style> elements of `html`: each allowed by the SHA-256 of its text (CSP
// Level 3 §2.3.1 hash-source), everything else from nowhere but this origin's /status.
std::string dashboard_csp(std::string_view html);

// Whether `req` asks for the page: GET or HEAD of / or /index.html (any query string).
bool is_dashboard_request(const net::ServerRequest& req);

// Answers with the page: 200, text/html, no-store, nosniff, its CSP, no referrer.
void serve_dashboard(net::Responder& res);

}  // namespace lb::admin
