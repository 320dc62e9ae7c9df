// TlsStream over the in-memory stream: a server TlsStream and a client TlsStream, each on
// a MemoryStream, with the test carrying ciphertext between the two peers. Certificates
// come from the openssl CLI at test time (tests/lb/net/tls_certs.h).
#include <doctest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <uv.h>

#include <memory>
#include <string>

#include "lb/net/memory_stream.h"
#include "lb/net/tls_context.h"
#include "lb/net/tls_stream.h"
#include "tests/lb/net/tls_certs.h"

namespace {

using namespace lb::net;

// Records what a stream's owner hears, and reads everything it is given.
struct Recorder : StreamHandler {
  std::string got;
  int connected = 1;  // 1: not reported yet
  int error = 0;
  bool eof = false, closed = false;
  int drained = 0;
  bool consume = true;
  void on_readable(Stream& s) override {
    got.append(s.input());
    if (consume) s.consume(s.input().size());
  }
  void on_eof(Stream&) override { eof = true; }
  void on_stream_error(Stream&, int e) override { error = e; }
  void on_drained(Stream&) override { ++drained; }
  void on_closed(Stream&) override { closed = true; }
  void on_connected(Stream& s, int status) override {
    connected = status;
    if (status == 0) s.read_start();
  }
};

sockaddr_in loopback() {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(443);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A server and a client TlsStream joined by the test.
struct Pair {
  BufferBudget budget;
  BufferPool pool{budget, 4096};
  std::shared_ptr<MemoryPeer> sp = std::make_shared<MemoryPeer>();  // the server's wire
  std::shared_ptr<MemoryPeer> cp = std::make_shared<MemoryPeer>();  // the client's wire
  std::unique_ptr<TlsStream> server, client;
  Recorder sh, ch;

  Pair(SSL_CTX* sctx, SSL_CTX* cctx, std::string_view name = "localhost") {
    server = std::make_unique<TlsStream>(std::make_unique<MemoryStream>(pool, sp), sctx,
                                         TlsStream::Mode::server);
    client = std::make_unique<TlsStream>(std::make_unique<MemoryStream>(pool, cp), cctx,
                                         TlsStream::Mode::client);
    server->set_handler(&sh);
    client->set_handler(&ch);
    REQUIRE(client->set_peer_name(name));
    server->read_start();
  }
  ~Pair() {
    server.reset();
    client.reset();
    MemoryStream::settle();
  }
  // Connects the client's wire and carries bytes both ways until both are quiet.
  void connect() {
    sockaddr_in a = loopback();
    REQUIRE(client->connect(reinterpret_cast<sockaddr*>(&a)) == 0);
    cp->answer_connect(0);
    run();
  }
  void run() {
    for (int i = 0; i < 1000; ++i) {
      std::string to_server = cp->take(), to_client = sp->take();
      if (to_server.empty() && to_client.empty()) return;
      if (!to_server.empty()) sp->send(to_server);
      if (!to_client.empty()) cp->send(to_client);
    }
    FAIL("the two sides never went quiet");
  }
};

struct Contexts {
  lb::test::TlsCerts certs;
  TlsContext server, client, other_client;
  Contexts() {
    REQUIRE(certs.ok);
    std::string err;
    server = make_server_tls(certs.file("server.pem"), certs.file("server.key"), err);
    REQUIRE_MESSAGE(server, err);
    client = make_client_tls(certs.file("ca.pem"), err);
    REQUIRE_MESSAGE(client, err);
    other_client = make_client_tls(certs.file("other-ca.pem"), err);
    REQUIRE_MESSAGE(other_client, err);
  }
};

}  // namespace

TEST_CASE("tls stream: handshake, then bytes both ways; connected only after the handshake") {
  Contexts c;
  Pair p(c.server.get(), c.client.get());
  sockaddr_in a = loopback();
  REQUIRE(p.client->connect(reinterpret_cast<sockaddr*>(&a)) == 0);
  CHECK(p.cp->connect_started);
  p.cp->answer_connect(0);
  CHECK(p.ch.connected == 1);          // TCP is up, the handshake is not
  CHECK_FALSE(p.cp->written.empty());  // the ClientHello
  p.run();
  CHECK(p.ch.connected == 0);
  CHECK(p.client->handshake_done());
  CHECK(p.server->handshake_done());
  CHECK(SSL_version(p.client->ssl()) == TLS1_3_VERSION);

  REQUIRE(p.client->write("GET / HTTP/1.1\r\n", "Host: x\r\n\r\n"));
  p.run();
  CHECK(p.sh.got == "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(p.server->write("HTTP/1.1 200 OK\r\n"));
  p.run();
  CHECK(p.ch.got == "HTTP/1.1 200 OK\r\n");
  CHECK(p.sh.drained == 0);  // MemoryStream never queues; nothing reported as drained

  // Idle: no stream holds a buffer; the ciphertext never sits in one either.
  CHECK_FALSE(p.server->holds_buffer());
  CHECK_FALSE(p.client->holds_buffer());
  CHECK_FALSE(p.server->inner().holds_buffer());
  CHECK(p.pool.in_use() == 0);
}

TEST_CASE("tls stream: TLS 1.2 only client, ALPN http/1.1 offered and chosen") {
  Contexts c;
  SSL_CTX_set_max_proto_version(c.client.get(), TLS1_2_VERSION);
  static const unsigned char alpn[] = "\x02h2\x08http/1.1";
  SSL_CTX_set_alpn_protos(c.client.get(), alpn, sizeof(alpn) - 1);
  Pair p(c.server.get(), c.client.get());
  p.connect();
  REQUIRE(p.ch.connected == 0);
  CHECK(SSL_version(p.server->ssl()) == TLS1_2_VERSION);
  const unsigned char* sel = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(p.client->ssl(), &sel, &len);
  CHECK(std::string(reinterpret_cast<const char*>(sel), len) == "http/1.1");
}

TEST_CASE("tls stream: a TLS 1.1 client is refused") {
  Contexts c;
  TlsContext old(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  SSL_CTX_set_security_level(old.get(), 0);
  SSL_CTX_set_min_proto_version(old.get(), TLS1_VERSION);
  SSL_CTX_set_max_proto_version(old.get(), TLS1_1_VERSION);
  SSL_CTX_set_cipher_list(old.get(), "DEFAULT@SECLEVEL=0");
  Pair p(c.server.get(), old.get());
  p.connect();
  CHECK(p.sh.error == TlsStream::kTlsError);
  CHECK_FALSE(p.server->tls_error().empty());
  CHECK(p.ch.connected == TlsStream::kTlsError);
}

TEST_CASE("tls stream: a certificate for another name or from another CA fails the connect") {
  Contexts c;
  SUBCASE("wrong name") {
    Pair p(c.server.get(), c.client.get(), "backend.example");
    p.connect();
    CHECK(p.ch.connected == TlsStream::kTlsError);
    CHECK(p.client->tls_error().find("verify") != std::string::npos);
    CHECK(p.sh.error == TlsStream::kTlsError);  // the client's alert
  }
  SUBCASE("wrong CA") {
    Pair p(c.server.get(), c.other_client.get());
    p.connect();
    CHECK(p.ch.connected == TlsStream::kTlsError);
    CHECK(p.client->tls_error().find("verify") != std::string::npos);
  }
  SUBCASE("an IP literal is checked against the IP SAN") {
    Pair p(c.server.get(), c.client.get(), "127.0.0.1");
    p.connect();
    CHECK(p.ch.connected == 0);
    Pair q(c.server.get(), c.client.get(), "127.0.0.2");
    q.connect();
    CHECK(q.ch.connected == TlsStream::kTlsError);
  }
}

TEST_CASE("tls stream: a saved session is resumed (TLS 1.3 ticket and TLS 1.2)") {
  Contexts c;
  for (int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    CAPTURE(version);
    SSL_CTX_set_max_proto_version(c.client.get(), version);
    SSL_SESSION* saved = nullptr;
    {
      Pair p(c.server.get(), c.client.get());
      p.connect();
      REQUIRE(p.ch.connected == 0);
      CHECK_FALSE(p.client->session_reused());
      saved = p.client->take_session();
      REQUIRE(saved);
    }
    Pair q(c.server.get(), c.client.get());
    q.client->set_session(saved);
    SSL_SESSION_free(saved);
    q.connect();
    REQUIRE(q.ch.connected == 0);
    CHECK(q.client->session_reused());
    CHECK(q.server->session_reused());
  }
}

TEST_CASE("tls stream: plaintext HTTP to a TLS listener is a TLS error, not a hang") {
  Contexts c;
  BufferBudget budget;
  BufferPool pool(budget, 4096);
  auto peer = std::make_shared<MemoryPeer>();
  Recorder h;
  {
    TlsStream s(std::make_unique<MemoryStream>(pool, peer), c.server.get(),
                TlsStream::Mode::server);
    s.set_handler(&h);
    s.read_start();
    peer->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(h.error == TlsStream::kTlsError);
    CHECK_FALSE(s.tls_error().empty());
    CHECK(h.got.empty());
    s.close();
    MemoryStream::settle();
    CHECK(h.closed);
  }
  CHECK(pool.in_use() == 0);
}

TEST_CASE("tls stream: a client leaving mid-handshake is an end of stream") {
  Contexts c;
  Pair p(c.server.get(), c.client.get());
  sockaddr_in a = loopback();
  REQUIRE(p.client->connect(reinterpret_cast<sockaddr*>(&a)) == 0);
  p.cp->answer_connect(0);
  std::string hello = p.cp->take();
  REQUIRE(hello.size() > 20);
  p.sp->send(hello.substr(0, 20));  // half a ClientHello
  CHECK(p.sh.error == 0);
  CHECK_FALSE(p.sh.eof);
  p.sp->send_eof();
  CHECK(p.sh.eof);
  CHECK(p.sh.error == 0);
}

TEST_CASE("tls stream: shutdown sends close_notify, the peer sees an end of stream") {
  Contexts c;
  Pair p(c.server.get(), c.client.get());
  p.connect();
  REQUIRE(p.ch.connected == 0);
  p.server->write("bye");
  p.server->shutdown();
  CHECK(p.sp->shut);
  p.run();
  CHECK(p.ch.got == "bye");
  CHECK(p.ch.eof);
  CHECK_FALSE(p.sh.eof);
}

TEST_CASE("tls stream: a write before the handshake is sent after it") {
  Contexts c;
  Pair p(c.server.get(), c.client.get());
  sockaddr_in a = loopback();
  REQUIRE(p.client->connect(reinterpret_cast<sockaddr*>(&a)) == 0);
  REQUIRE(p.client->write("early"));
  CHECK(p.client->pending() == 5);
  p.cp->answer_connect(0);
  p.run();
  CHECK(p.sh.got == "early");
  CHECK(p.client->pending() == 0);
}

TEST_CASE("tls stream: backpressure: a full input stops reading, read_start resumes") {
  Contexts c;
  Pair p(c.server.get(), c.client.get());
  p.connect();
  REQUIRE(p.ch.connected == 0);
  p.sh.consume = false;
  std::string big(100 * 1024, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  REQUIRE(p.client->write(big));
  p.run();
  CHECK(p.server->input_full());
  CHECK_FALSE(p.server->reading());
  CHECK_FALSE(p.server->starved());
  size_t first = p.server->input().size();
  CHECK(first == 4096);
  std::string all(p.server->input());
  p.server->consume(first);
  p.sh.got.clear();
  p.sh.consume = true;
  p.server->read_start();
  p.run();
  all += p.sh.got;
  CHECK(all == big);
  CHECK(p.pool.in_use() == 0);
}

TEST_CASE("tls context: load errors name the file; a key not matching is refused") {
  lb::test::TlsCerts certs;
  REQUIRE(certs.ok);
  std::string err;
  CHECK_FALSE(make_server_tls(certs.file("missing.pem"), certs.file("server.key"), err));
  CHECK(err.find("missing.pem") != std::string::npos);
  CHECK_FALSE(make_server_tls(certs.file("server.pem"), certs.file("server2.key"), err));
  CHECK(err.find("does not match") != std::string::npos);
  CHECK_FALSE(make_server_tls(certs.file("server.pem"), certs.file("san.ext"), err));
  CHECK(err.find("san.ext") != std::string::npos);
  CHECK(make_server_tls(certs.file("server2.pem"), certs.file("server2.key"), err));
  CHECK_FALSE(make_client_tls(certs.file("missing-ca.pem"), err));
  CHECK(err.find("missing-ca.pem") != std::string::npos);
  CHECK(make_client_tls("", err));  // the system store
}
