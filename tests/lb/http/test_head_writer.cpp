#include <doctest.h>

#include <vector>

#include "lb/http/head_writer.h"

using namespace lb;
using namespace lb::http;

TEST_CASE("request head: hop-by-hop dropped, XFF appended, secrets replaced") {
  std::vector<HeaderView> h = {{"Host", "example"},
                               {"Connection", "keep-alive, X-Trace"},
                               {"X-Trace", "1"},
                               {"Keep-Alive", "timeout=5"},
                               {"X-Forwarded-For", "10.0.0.1"},
                               {"project_id", "client-copy"},
                               {"Accept", "application/json"}};
  std::vector<InjectedHeader> inj = {{"project_id", "SECRET"}};
  RequestHead r;
  r.method = "GET";
  r.path = "/matches/x";
  r.headers = h;
  r.client_ip = "127.0.0.9";
  r.inject = inj;
  std::string out;
  write_request_head(out, r);
  CHECK(out.starts_with("GET /matches/x HTTP/1.1\r\n"));
  CHECK(out.find("Host: example\r\n") != std::string::npos);
  CHECK(out.find("Accept: application/json\r\n") != std::string::npos);
  CHECK(out.find("Connection") == std::string::npos);
  CHECK(out.find("Keep-Alive") == std::string::npos);
  CHECK(out.find("X-Trace") == std::string::npos);
  CHECK(out.find("client-copy") == std::string::npos);
  CHECK(out.find("project_id: SECRET\r\n") != std::string::npos);
  CHECK(out.find("X-Forwarded-For: 10.0.0.1, 127.0.0.9\r\n") != std::string::npos);
  CHECK(out.ends_with("\r\n\r\n"));
}

TEST_CASE("request head: needs_slash and HTTP/1.0") {
  RequestHead r;
  r.method = "HEAD";
  r.path = "?x=1";
  r.path_needs_slash = true;
  r.http10 = true;
  std::string out;
  write_request_head(out, r);
  CHECK(out == "HEAD /?x=1 HTTP/1.0\r\n\r\n");
}

TEST_CASE("response head: framing kept, connection per client") {
  std::vector<HeaderView> h = {{"Transfer-Encoding", "chunked"},
                               {"Connection", "close"},
                               {"X-Most-Recent-Checkpoint", "42"}};
  ResponseHead r;
  r.status = 200;
  r.reason = "OK";
  r.headers = h;
  std::string out;
  write_response_head(out, r);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Most-Recent-Checkpoint: 42\r\n\r\n");
  r.connection = ClientConnection::close;
  write_response_head(out, r);
  CHECK(out.find("Connection: close\r\n") != std::string::npos);
}

TEST_CASE("error responses carry a JSON reason and exact length") {
  std::string out;
  write_error_response(out, 503, "no \"backend\"", false, "Retry-After: 5\r\n");
  CHECK(out.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  CHECK(out.find("Retry-After: 5\r\n") != std::string::npos);
  size_t body = out.find("\r\n\r\n") + 4;
  std::string b = out.substr(body);
  CHECK(b == "{\"error\":\"no \\\"backend\\\"\",\"status\":503}\n");
  CHECK(out.find("Content-Length: " + std::to_string(b.size()) + "\r\n") != std::string::npos);
}

TEST_CASE("request head: every client copy of an injected header goes, in any case") {
  std::vector<HeaderView> h = {{"PROJECT_ID", "upper"},
                               {"Project_Id", "mixed"},
                               {"project_id", "lower"},
                               {"X-Debug", "1"},
                               {"x-keep", "yes"}};
  std::vector<InjectedHeader> inj = {{"project_id", "SECRET"}};
  std::vector<std::string> remove = {"x-DEBUG"};
  RequestHead r;
  r.method = "GET";
  r.path = "/";
  r.headers = h;
  r.inject = inj;
  r.remove = remove;
  std::string out;
  write_request_head(out, r);
  CHECK(out == "GET / HTTP/1.1\r\nx-keep: yes\r\nproject_id: SECRET\r\n\r\n");
}

TEST_CASE("response head: remove_headers.response dropped case-insensitively") {
  std::vector<HeaderView> h = {
      {"Content-Length", "2"}, {"server", "kupo"}, {"X-Powered-By", "x"}, {"ETag", "\"e\""}};
  std::vector<std::string> remove = {"Server", "x-powered-by"};
  ResponseHead r;
  r.status = 200;
  r.headers = h;
  r.remove = remove;
  std::string out;
  write_response_head(out, r);
  CHECK(out == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nETag: \"e\"\r\n\r\n");
}
