// listeners[].tls: {cert, key}: files relative to the config, read and checked at load;
// a missing file or a bad pair is a located error naming the file.
#include <doctest.h>

#include <string>

#include "config/loader.h"
#include "tests/config/loader_helpers.h"
#include "tests/lb/net/tls_certs.h"

using namespace loader_test;

namespace {

std::string config_with_tls(const std::string& tls) {
  return "listeners:\n"
         "  - name: public\n"
         "    listen: 127.0.0.1:8443\n"
         "    tls: " +
         tls +
         "\n"
         "    routes: [{prefix: /, pool: kupo}]\n"
         "pools:\n"
         "  kupo:\n"
         "    kind: kupo\n"
         "    backends: [{name: k, address: 127.0.0.1:1442}]\n";
}

config::LoadResult load_in(const lb::test::TlsCerts& certs, const std::string& tls) {
  std::string path = certs.file("corral.yaml");
  return config::load_file_text(path, config_with_tls(tls));
}

}  // namespace

TEST_CASE("listener tls: files relative to the config are read and kept") {
  lb::test::TlsCerts certs;
  REQUIRE(certs.ok);
  config::LoadResult r = load_in(certs, "{cert: server.pem, key: server.key}");
  INFO(dump(r));
  REQUIRE(r.config);
  const auto& tls = r.config->listeners[0].tls;
  REQUIRE(tls);
  CHECK(tls->cert == certs.file("server.pem"));
  CHECK(tls->key == certs.file("server.key"));
  CHECK(tls->cert_pem.find("BEGIN CERTIFICATE") != std::string::npos);
  CHECK(tls->key_pem.find("PRIVATE KEY") != std::string::npos);
}

TEST_CASE("listener tls: errors name the file, the line and the key") {
  lb::test::TlsCerts certs;
  REQUIRE(certs.ok);
  SUBCASE("a missing certificate") {
    config::LoadResult r = load_in(certs, "{cert: nope.pem, key: server.key}");
    INFO(dump(r));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "listeners[0].tls.cert");
    CHECK(r.errors[0].line == 4);
    CHECK(r.errors[0].message.find("nope.pem") != std::string::npos);
  }
  SUBCASE("a key that does not match the certificate") {
    config::LoadResult r = load_in(certs, "{cert: server.pem, key: server2.key}");
    INFO(dump(r));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "listeners[0].tls.key");
    CHECK(r.errors[0].message.find("server2.key") != std::string::npos);
    CHECK(r.errors[0].message.find("does not match") != std::string::npos);
  }
  SUBCASE("a certificate file that holds no certificate") {
    config::LoadResult r = load_in(certs, "{cert: san.ext, key: server.key}");
    INFO(dump(r));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "listeners[0].tls.cert");
    CHECK(r.errors[0].message.find("not a PEM certificate") != std::string::npos);
  }
  SUBCASE("the key is not a key") {
    config::LoadResult r = load_in(certs, "{cert: server.pem, key: server.pem}");
    INFO(dump(r));
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "listeners[0].tls.key");
    CHECK(r.errors[0].message.find("not a PEM private key") != std::string::npos);
  }
  SUBCASE("both keys are required, and nothing else") {
    config::LoadResult r = load_in(certs, "{cert: server.pem}");
    INFO(dump(r));
    CHECK_FALSE(r.config);
    CHECK(has_error(r, 4, 10, "listeners[0].tls.key", "required key is missing"));
    config::LoadResult u = load_in(certs, "{cert: server.pem, key: server.key, ca: ca.pem}");
    CHECK_FALSE(u.config);
    CHECK(dump(u).find("unknown key 'ca'") != std::string::npos);
  }
}

TEST_CASE("listener tls: a changed certificate is a changed listener in the reload diff") {
  lb::test::TlsCerts certs;
  REQUIRE(certs.ok);
  config::LoadResult a = load_in(certs, "{cert: server.pem, key: server.key}");
  config::LoadResult b = load_in(certs, "{cert: server2.pem, key: server2.key}");
  REQUIRE(a.config);
  REQUIRE(b.config);
  CHECK_FALSE(a.config->listeners[0].tls == b.config->listeners[0].tls);
  config::LoadResult c = load_in(certs, "{cert: server.pem, key: server.key}");
  CHECK(a.config->listeners[0].tls == c.config->listeners[0].tls);
}
