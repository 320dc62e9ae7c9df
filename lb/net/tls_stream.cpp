#include "lb/net/tls_stream.h"

#include <openssl/err.h>
#include <uv.h>

#include <climits>
#include <cstring>

namespace lb::net {

const int TlsStream::kTlsError = UV_EPROTO;

namespace {

// Ciphertext an SSL call produced, gathered so one call's records (a handshake flight, a
// response's records) reach the inner stream in one write. It belongs to the thread and
// is emptied at the end of every SSL call, so it is never a connection's memory.
struct OutStage {
  std::string bytes;
  TlsStream* owner = nullptr;
};
thread_local OutStage out_stage;
constexpr size_t kStageFlush = 64 * 1024;
// Small parts of one write() are joined into one record rather than one record each.
constexpr size_t kGatherMax = 16 * 1024;
thread_local std::string gather;

}  // namespace

// The BIO between the SSL and the inner stream: reads take ciphertext out of the inner
// stream's input, writes stage it for the inner stream's write().
struct TlsBio {
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "corral-stream");
      BIO_meth_set_write(bm, &TlsBio::write);
      BIO_meth_set_read(bm, &TlsBio::read);
      BIO_meth_set_ctrl(bm, &TlsBio::ctrl);
      BIO_meth_set_create(bm, [](BIO* b) {
        BIO_set_init(b, 1);
        return 1;
      });
      return bm;
    }();
    return m;
  }

  static TlsStream* stream(BIO* b) { return static_cast<TlsStream*>(BIO_get_data(b)); }

  static int write(BIO* b, const char* data, int len) {
    TlsStream* t = stream(b);
    BIO_clear_retry_flags(b);
    if (out_stage.owner && out_stage.owner != t) out_stage.owner->flush_out();
    out_stage.owner = t;
    out_stage.bytes.append(data, static_cast<size_t>(len));
    if (out_stage.bytes.size() >= kStageFlush) t->flush_out();
    return len;
  }

  static int read(BIO* b, char* out, int len) {
    TlsStream* t = stream(b);
    BIO_clear_retry_flags(b);
    std::string_view in = t->inner_->input();
    if (in.empty()) {
      if (t->inner_eof_) return 0;  // the peer's FIN: end of ciphertext
      BIO_set_retry_read(b);
      return -1;
    }
    size_t n = in.size() < static_cast<size_t>(len) ? in.size() : static_cast<size_t>(len);
    std::memcpy(out, in.data(), n);
    t->inner_->consume(n);  // the inner buffer goes back to the pool once read out
    return static_cast<int>(n);
  }

  static long ctrl(BIO* b, int cmd, long, void*) {
    TlsStream* t = stream(b);
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING:
        return static_cast<long>(t->inner_->input().size());
      case BIO_CTRL_EOF:
        return t->inner_eof_ && t->inner_->input().empty();
      default:
        return 0;
    }
  }
};

TlsStream::TlsStream(std::unique_ptr<Stream> inner, SSL_CTX* ctx, Mode mode)
    : Stream(inner->pool()), inner_(std::move(inner)), mode_(mode) {
  inner_->set_handler(this);
  ssl_ = SSL_new(ctx);
  BIO* bio = BIO_new(TlsBio::method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);
  if (mode == Mode::server) {
    SSL_set_accept_state(ssl_);
    inner_connected_ = true;
  } else {
    SSL_set_connect_state(ssl_);
  }
}

TlsStream::~TlsStream() {
  if (out_stage.owner == this) {
    out_stage.bytes.clear();
    out_stage.owner = nullptr;
  }
  // A connection that ends without close_notify (most do: a timeout, a reset, a peer that
  // just closes) keeps its session resumable unless TLS itself failed; OpenSSL would
  // otherwise drop the session from the cache as a bad one.
  if (handshake_done_ && !tls_failed_)
    SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  SSL_free(ssl_);
}

bool TlsStream::set_peer_name(std::string_view name) {
  return set_tls_peer(ssl_, name, tls_error_);
}

int TlsStream::connect(const sockaddr* addr) {
  connecting_ = true;
  int rc = inner_->connect(addr);
  if (rc != 0) connecting_ = false;
  return rc;
}

void TlsStream::on_connected(Stream&, int status) {
  if (closing_) return;
  if (status != 0) {
    connecting_ = false;
    if (handler_) handler_->on_connected(*this, status);
    return;
  }
  inner_connected_ = true;
  pump();  // sends the ClientHello
}

void TlsStream::read_start() {
  if (closing_ || failed_) return;
  starved_ = false;
  reading_ = true;
  if (inner_connected_ && !inner_eof_ && !inner_->reading()) {
    inner_->set_exempt(exempt_);
    inner_->read_start();
  }
  pump();
}

void TlsStream::read_stop() {
  starved_ = false;
  reading_ = false;
  // During the handshake the inner stream keeps reading: the owner waits for plaintext,
  // which needs the handshake done.
  if (handshake_done_ && inner_->reading()) inner_->read_stop();
}

void TlsStream::on_readable(Stream&) {
  if (closing_ || failed_) return;
  if (inner_->starved()) {
    // No buffer for ciphertext: the owner sees starved() and retries through read_start.
    starved_ = true;
    reading_ = false;
    if (handler_) handler_->on_readable(*this);
    return;
  }
  pump();
}

void TlsStream::on_eof(Stream&) {
  inner_eof_ = true;
  if (closing_ || failed_) return;
  pump();
}

void TlsStream::on_stream_error(Stream&, int error) {
  write_failed_ = inner_->write_failed();
  if (closing_ || failed_) return;
  failed_ = true;
  reading_ = false;
  if (connecting_) {
    connecting_ = false;
    if (handler_) handler_->on_connected(*this, error);
    return;
  }
  if (handler_) handler_->on_stream_error(*this, error);
}

void TlsStream::on_drained(Stream&) {
  // The handshake's own flights draining mean nothing to the owner.
  if (closing_ || failed_ || !handshake_done_ || !early_.empty()) return;
  if (handler_) handler_->on_drained(*this);
}

void TlsStream::on_closed(Stream&) {
  if (handler_) handler_->on_closed(*this);
}

void TlsStream::pump() {
  if (pumping_) {  // an inner callback inside our own SSL calls: go round once more
    again_ = true;
    return;
  }
  pumping_ = true;
  do {
    again_ = false;
    pump_once();
  } while (again_ && !closing_ && !failed_);
  pumping_ = false;
}

void TlsStream::pump_once() {
  if (closing_ || failed_ || !inner_connected_) return;
  if (!handshake_done_ && !handshake()) {
    inner_reading();
    return;
  }
  if (!early_.empty()) {
    std::string early;
    early.swap(early_);
    std::string_view part(early);
    write(&part, 1);
    if (shutdown_wanted_) shutdown();
    if (closing_ || failed_) return;
  }
  while (reading_ && !closing_ && !failed_) {
    size_t room = 0;
    char* p = read_space(room);
    if (room == 0) {  // as TcpStream on UV_ENOBUFS: no buffer (budget), or a full one
      starved_ = in_ == nullptr;
      reading_ = false;
      inner_->read_stop();
      if (handler_) handler_->on_readable(*this);
      return;
    }
    ERR_clear_error();
    int n = SSL_read(ssl_, p, static_cast<int>(room < INT_MAX ? room : INT_MAX));
    int e = n > 0 ? SSL_ERROR_NONE : ssl_error(n);
    flush_out();  // a TLS 1.3 key update or an alert may have been written
    if (n > 0) {
      commit_read(static_cast<size_t>(n));
      if (handler_) handler_->on_readable(*this);
      continue;
    }
    if (in_ && in_->empty() && !held_) drop_input();  // keep no empty buffer
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN || inner_eof_) {  // close_notify, or the bare FIN
      if (!eof_reported_) {
        eof_reported_ = true;
        reading_ = false;
        if (handler_) handler_->on_eof(*this);
      }
      return;
    }
    fail(kTlsError);
    return;
  }
  inner_reading();
}

bool TlsStream::handshake() {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  int e = rc == 1 ? SSL_ERROR_NONE : ssl_error(rc);
  flush_out();
  if (rc == 1) {
    handshake_done_ = true;
    tls_error_.clear();
    if (connecting_) {
      connecting_ = false;
      if (handler_) handler_->on_connected(*this, 0);
    }
    return !closing_ && !failed_;
  }
  if (e == SSL_ERROR_WANT_READ && !inner_eof_) return false;
  handshake_failed();
  return false;
}

void TlsStream::handshake_failed() {
  bool left = inner_eof_ && (tls_error_.empty() || tls_error_.find("eof") != std::string::npos);
  if (left) tls_error_ = "connection closed during the TLS handshake";
  failed_ = true;
  tls_failed_ = !left;
  reading_ = false;
  if (connecting_) {
    connecting_ = false;
    if (handler_) handler_->on_connected(*this, kTlsError);
    return;
  }
  if (left) {  // a client that went away is not a TLS failure
    eof_reported_ = true;
    if (handler_) handler_->on_eof(*this);
    return;
  }
  if (handler_) handler_->on_stream_error(*this, kTlsError);
}

void TlsStream::fail(int error) {
  if (failed_) return;
  failed_ = true;
  tls_failed_ = error == kTlsError;
  reading_ = false;
  if (handler_) handler_->on_stream_error(*this, error);
}

int TlsStream::ssl_error(int rc) {
  int e = SSL_get_error(ssl_, rc);
  if (e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL) {
    std::string why = take_openssl_errors();
    long v = SSL_get_verify_result(ssl_);
    if (mode_ == Mode::client && v != X509_V_OK)
      why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
    tls_error_ = why.empty() ? std::string("TLS failure") : why;
  }
  ERR_clear_error();
  return e;
}

void TlsStream::inner_reading() {
  if (closing_ || failed_ || inner_eof_ || !inner_connected_) return;
  bool want = !handshake_done_ || reading_;
  if (want && !inner_->reading() && !inner_->starved()) {
    inner_->set_exempt(exempt_);
    inner_->read_start();
  } else if (!want && inner_->reading()) {
    inner_->read_stop();
  }
}

bool TlsStream::flush_out() {
  if (out_stage.owner != this || out_stage.bytes.empty()) return true;
  // A failure is reported by the inner stream itself, later, from the loop.
  bool ok = inner_->write(std::string_view(out_stage.bytes));
  out_stage.bytes.clear();
  out_stage.owner = nullptr;
  return ok;
}

bool TlsStream::write(const std::string_view* parts, size_t n) {
  if (failed_ || closing_) return false;
  if (!handshake_done_) {  // sent once the handshake is done
    for (size_t i = 0; i < n; ++i) early_.append(parts[i]);
    return true;
  }
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) total += parts[i].size();
  std::string_view one;
  if (n > 1 && total <= kGatherMax) {
    gather.clear();
    for (size_t i = 0; i < n; ++i) gather.append(parts[i]);
    one = gather;
    parts = &one;
    n = 1;
  }
  for (size_t i = 0; i < n; ++i) {
    const char* p = parts[i].data();
    size_t left = parts[i].size();
    while (left > 0) {
      ERR_clear_error();
      int w = SSL_write(ssl_, p, static_cast<int>(left < INT_MAX ? left : INT_MAX));
      if (w <= 0) {
        // With an in-memory BIO that takes everything, only a broken SSL gets here; the
        // failure is left to the owner (write() never calls the handler).
        ssl_error(w);
        flush_out();
        failed_ = write_failed_ = tls_failed_ = true;
        return false;
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
  }
  return flush_out() && !failed_;
}

void TlsStream::shutdown() {
  if (closing_ || failed_) return;
  if (!handshake_done_) {
    if (early_.empty())
      inner_->shutdown();
    else
      shutdown_wanted_ = true;
    return;
  }
  ERR_clear_error();
  SSL_shutdown(ssl_);  // queues our close_notify; the peer's is not waited for
  ERR_clear_error();
  flush_out();
  inner_->shutdown();
}

void TlsStream::close() {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  drop_input();
  inner_->close();
}

}  // namespace lb::net
