// Worker::make_stream for TLS backends: the plain stream (a test's, here) wrapped in a
// client TlsStream with the backend's name as SNI; plain backends stay plain.
#include <doctest.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "lb/net/memory_stream.h"
#include "lb/net/tls_stream.h"
#include "tests/lb/net/tls_certs.h"
#include "tests/lb/net/worker_rig.h"

using namespace lb::net;

namespace {

std::string tls_config(const std::string& ca) {
  return R"(
listeners: [{name: public, listen: 127.0.0.1:0, routes: [{prefix: /, pool: p}]}]
pools:
  p:
    kind: http
    backends:
      - {name: plain, address: 127.0.0.1:1001}
      - {name: byip, address: 127.0.0.1:1002, tls: {ca: )" +
         ca + R"(}}
      - {name: named, address: 127.0.0.1:1003, tls: {ca: )" +
         ca + R"(, server_name: backend.test}}
      - {name: system, address: localhost:1004, tls: true}
)";
}

}  // namespace

TEST_CASE("upstream tls: make_stream wraps TLS backends with their name as SNI") {
  lb::test::TlsCerts certs;
  REQUIRE(certs.ok);
  std::string yaml = tls_config(certs.file("ca.pem"));
  WorkerRig rig(yaml.c_str());
  rig.worker->set_stream_factory([&rig] {
    return std::make_unique<MemoryStream>(rig.worker->buffers(), std::make_shared<MemoryPeer>());
  });
  const auto& b = rig.state.runtime.load()->pools[0].backends;
  REQUIRE(b.size() == 4);
  CHECK_FALSE(b[0].tls);
  CHECK(b[1].tls_ctx != nullptr);
  CHECK(b[1].tls_name == "127.0.0.1");
  CHECK(b[2].tls_name == "backend.test");
  CHECK(b[3].tls_name == "localhost");
  CHECK(b[3].reachable());

  std::unique_ptr<Stream> plain = rig.worker->make_stream(&b[0]);
  CHECK(dynamic_cast<TlsStream*>(plain.get()) == nullptr);
  std::unique_ptr<Stream> byip = rig.worker->make_stream(&b[1]);
  auto* t1 = dynamic_cast<TlsStream*>(byip.get());
  REQUIRE(t1 != nullptr);
  // An IP literal sends no SNI (RFC 6066); it is checked against the certificate's IPs.
  CHECK(SSL_get_servername(t1->ssl(), TLSEXT_NAMETYPE_host_name) == nullptr);
  std::unique_ptr<Stream> named = rig.worker->make_stream(&b[2]);
  auto* t2 = dynamic_cast<TlsStream*>(named.get());
  REQUIRE(t2 != nullptr);
  CHECK(std::string(SSL_get_servername(t2->ssl(), TLSEXT_NAMETYPE_host_name)) == "backend.test");
  // Verification is on whatever the context: a peer must present a verified certificate.
  CHECK((SSL_get_verify_mode(t2->ssl()) & SSL_VERIFY_PEER) != 0);
  CHECK(rig.worker->tls_session_count() == 0);
  for (auto* s : {plain.get(), byip.get(), named.get()}) s->close();
  MemoryStream::settle();
}
