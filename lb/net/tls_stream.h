#pragma once
// TLS on the stream seam: a Stream that speaks TLS over an inner plain stream (a
// TcpStream, or a MemoryStream in tests) through an OpenSSL SSL object, for accepted
// clients (server mode) and TLS backends (client mode). This stream is the inner one's
// handler. The SSL's BIO is an in-memory one that reads ciphertext straight out of the
// inner stream's pooled input buffer and writes ciphertext straight into the inner
// stream's write(), so no BIO keeps a buffer of its own; plaintext lands in this stream's
// own pooled input buffer like any stream's. With SSL_MODE_RELEASE_BUFFERS an idle TLS
// connection holds its SSL object and no buffer at all.
//
// Client mode: connect() connects the inner stream, then runs the handshake; the handler
// hears on_connected(0) only once the handshake (and certificate verification) is done,
// or on_connected(kTlsError) with tls_error() saying why. A TLS failure after that is
// on_stream_error(kTlsError). Server mode: the handshake runs on the first bytes read; a
// failed one is on_stream_error(kTlsError), a client that leaves during it is on_eof.
#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "lb/net/stream.h"
#include "lb/net/tls_context.h"

namespace lb::net {

class TlsStream final : public Stream, private StreamHandler {
 public:
  // The error code of a failed handshake, verification or TLS record: UV_EPROTO, which a
  // TCP connect or read never reports, so callers can count it as `tls`.
  static const int kTlsError;

  enum class Mode { server, client };
  // inner: the connected (server) or to-be-connected (client) plain stream; ctx: a
  // server or client context to match the mode.
  TlsStream(std::unique_ptr<Stream> inner, SSL_CTX* ctx, Mode mode);
  ~TlsStream() override;

  // Client mode, before connect(): SNI and the name or IP the certificate must carry.
  bool set_peer_name(std::string_view name);
  // Client mode, before connect(): offers a session saved from an earlier connection.
  void set_session(SSL_SESSION* session) { SSL_set_session(ssl_, session); }
  // The session to save for resumption (a new reference; null before the handshake).
  SSL_SESSION* take_session() const { return SSL_get1_session(ssl_); }
  bool session_reused() const { return SSL_session_reused(ssl_) == 1; }
  bool handshake_done() const { return handshake_done_; }
  // Why the last TLS failure happened (OpenSSL's reasons and the verification result).
  const std::string& tls_error() const { return tls_error_; }
  SSL* ssl() { return ssl_; }
  Stream& inner() { return *inner_; }

  int connect(const sockaddr* addr) override;
  void read_start() override;
  void read_stop() override;
  bool reading() const override { return reading_; }
  using Stream::write;
  bool write(const std::string_view* parts, size_t n) override;
  size_t pending() const override { return inner_->pending() + early_.size(); }
  uint64_t sent() const override { return inner_->sent(); }
  void shutdown() override;
  void close() override;

 private:
  friend struct TlsBio;
  // StreamHandler of the inner stream.
  void on_readable(Stream& s) override;
  void on_eof(Stream& s) override;
  void on_stream_error(Stream& s, int error) override;
  void on_drained(Stream& s) override;
  void on_closed(Stream& s) override;
  void on_connected(Stream& s, int status) override;

  // Runs the handshake and/or reads plaintext while there is ciphertext and room.
  void pump();
  void pump_once();
  // Advances the handshake; false when it failed (already reported) or waits for bytes.
  bool handshake();
  void handshake_failed();
  void fail(int error);
  // What the last SSL call produced, written to the inner stream; false if it failed.
  bool flush_out();
  // The SSL error of a call that returned rc, with its text kept in tls_error_.
  int ssl_error(int rc);
  void inner_reading();

  std::unique_ptr<Stream> inner_;
  SSL* ssl_ = nullptr;
  Mode mode_;
  std::string tls_error_;
  std::string early_;  // plaintext written before the handshake finished (rare)
  bool reading_ = false;
  bool handshake_done_ = false;
  bool connecting_ = false;  // client: connect() called, on_connected not yet reported
  bool inner_eof_ = false;
  bool eof_reported_ = false;
  bool pumping_ = false;
  bool again_ = false;  // an inner callback came while pumping
  bool inner_connected_ = false;
  bool closing_ = false;
  bool failed_ = false;
  bool tls_failed_ = false;  // failed by TLS itself: the session is not to be resumed
  bool shutdown_wanted_ = false;
};

}  // namespace lb::net
