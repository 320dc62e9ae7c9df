#include "lb/net/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>

namespace lb::net {
namespace {

// TLS 1.2 suites with forward secrecy and AEAD only (Mozilla "intermediate"); TLS 1.3
// keeps OpenSSL's default suites, which are all modern.
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

constexpr unsigned char kSessionContext[] = "corral";

// Offers http/1.1 whatever else the client lists; a client offering only other protocols
// (h2 alone) goes on without ALPN rather than failing, and speaks HTTP/1.1 or gets a 400.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static constexpr unsigned char kHttp11[] = "\x08http/1.1";
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, kHttp11, sizeof(kHttp11) - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

// Settings both sides share: versions, ciphers, small idle memory.
bool common_setup(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return false;
  if (SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) return false;
  if (SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1) return false;
  // Record buffers are freed whenever a connection has nothing buffered: an idle TLS
  // connection costs its SSL object, not 2 x 17 KB.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // No renegotiation (TLS 1.2; 1.3 has none), no compression; a peer closing the TCP
  // connection without close_notify is an ordinary end of stream (HTTP frames itself).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
  return true;
}

}  // namespace

std::string take_openssl_errors() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    // "error:0A000086:SSL routines::certificate verify failed": keep the reason only.
    const char* reason = std::strrchr(buf, ':');
    out += reason && reason[1] ? reason + 1 : buf;
  }
  return out;
}

TlsContext make_server_tls(const std::string& cert_file, const std::string& key_file,
                           std::string& err) {
  ERR_clear_error();
  TlsContext ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx || !common_setup(ctx.get())) {
    err = "cannot make a TLS context: " + take_openssl_errors();
    return nullptr;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    err = cert_file + ": not a readable PEM certificate (" + take_openssl_errors() + ")";
    return nullptr;
  }
  EVP_PKEY* key = nullptr;
  if (BIO* f = BIO_new_file(key_file.c_str(), "r")) {
    key = PEM_read_bio_PrivateKey(f, nullptr, nullptr, nullptr);
    BIO_free(f);
  }
  if (!key) {
    err = key_file + ": not a readable PEM private key (" + take_openssl_errors() + ")";
    return nullptr;
  }
  bool used = SSL_CTX_use_PrivateKey(ctx.get(), key) == 1;
  EVP_PKEY_free(key);
  if (!used || SSL_CTX_check_private_key(ctx.get()) != 1) {
    err = key_file + ": the key does not match the certificate " + cert_file;
    ERR_clear_error();
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), &select_alpn, nullptr);
  // Resumption both ways: the session cache (TLS 1.2 session IDs, shared by the workers)
  // and tickets (the default; TLS 1.3 resumes by ticket only). One ticket per handshake
  // is enough for a client that reconnects one connection at a time.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(ctx.get(), kSessionContext, sizeof(kSessionContext) - 1);
  SSL_CTX_sess_set_cache_size(ctx.get(), 20000);
  SSL_CTX_set_num_tickets(ctx.get(), 1);
  return ctx;
}

TlsContext make_client_tls(const std::string& ca_file, std::string& err) {
  ERR_clear_error();
  TlsContext ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx || !common_setup(ctx.get())) {
    err = "cannot make a TLS context: " + take_openssl_errors();
    return nullptr;
  }
  int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                           : SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
  if (ok != 1) {
    err = (ca_file.empty() ? std::string("the system CA store") : ca_file) +
          ": cannot load CA certificates (" + take_openssl_errors() + ")";
    return nullptr;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

bool set_tls_peer(SSL* ssl, std::string_view server_name, std::string& err) {
  std::string name(server_name);
  if (name.size() > 2 && name.front() == '[' && name.back() == ']')
    name = name.substr(1, name.size() - 2);
  unsigned char addr[16];
  bool is_ip =
      inet_pton(AF_INET, name.c_str(), addr) == 1 || inet_pton(AF_INET6, name.c_str(), addr) == 1;
  ERR_clear_error();
  if (is_ip) {
    // RFC 6066: SNI carries host names only; an address is checked against IP SANs.
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1) {
      err = "bad address " + name;
      return false;
    }
    return true;
  }
  if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1 || SSL_set1_host(ssl, name.c_str()) != 1) {
    err = "bad server name " + name + " (" + take_openssl_errors() + ")";
    return false;
  }
  return true;
}

}  // namespace lb::net
