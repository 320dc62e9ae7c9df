#include "lb/http/response_framing.h"

namespace lb::http {

ResponseFraming frame_response(const ResponseFacts& r) {
  ResponseFraming f;
  if (r.version_major != 1) {
    f.error = "response with an unsupported HTTP version";
    return f;
  }
  if (r.status < 100 || r.status > 599) {
    // llhttp 8.1 takes "HTTP/1.1 20 OK" as status 20; RFC 9110 §15 says three digits.
    f.error = "response status outside 100-599";
    return f;
  }
  int te = 0;
  for (const HeaderView& h : r.headers) {
    if (!iequals(h.name, "transfer-encoding")) continue;
    if (++te > 1 || !iequals(trim_ows(h.value), "chunked")) {
      f.error = "response Transfer-Encoding other than chunked";
      return f;
    }
  }
  if (r.status == 101) {
    if (!r.upgrade_requested) {
      f.error = "101 to a request that asked for no upgrade";
      return f;
    }
    f.body = BodyFraming::none;
    f.reusable = false;  // the connection now speaks another protocol
    return f;
  }
  bool bodiless =
      r.head_request || (r.status >= 100 && r.status < 200) || r.status == 204 || r.status == 304;
  if (bodiless) {
    f.body = BodyFraming::none;
    f.interim = r.status >= 100 && r.status < 200;
    // A head that announces a body the status forbids: the backend may send it, and it
    // must never be read as the next response. (A HEAD response's Content-Length is the
    // size of the body a GET would get, so it is no such sign.)
    bool announces = te > 0 || (r.has_content_length && r.content_length > 0);
    if (announces && !r.head_request) f.reusable = false;
    return f;
  }
  if (te > 0) {
    f.body = BodyFraming::chunked;
  } else if (r.has_content_length) {
    f.body = BodyFraming::content_length;
  } else {
    f.body = BodyFraming::until_close;
    f.reusable = false;
  }
  return f;
}

}  // namespace lb::http
