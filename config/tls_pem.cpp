#include "config/tls_pem.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstring>
#include <memory>

namespace config {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr mem_bio(std::string_view s) {
  return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

// OpenSSL's last reason ("ee key too small"), for the message; the queue is cleared.
std::string reason() {
  unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e == 0) return "";
  const char* r = ERR_reason_error_string(e);
  return r ? std::string(" (") + r + ")" : "";
}

}  // namespace

PemProblem use_pem_pair(SSL_CTX* ctx, std::string_view cert_pem, std::string_view key_pem) {
  ERR_clear_error();
  BioPtr cb = mem_bio(cert_pem);
  X509* leaf = PEM_read_bio_X509_AUX(cb.get(), nullptr, nullptr, nullptr);
  if (!leaf) return {"not a PEM certificate" + reason(), false};
  bool ok = SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  if (!ok) return {"certificate refused" + reason(), false};
  SSL_CTX_clear_chain_certs(ctx);
  while (X509* ca = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
      X509_free(ca);
      return {"chain certificate refused" + reason(), false};
    }
  }
  ERR_clear_error();  // the end of the PEM text is reported as an error
  BioPtr kb = mem_bio(key_pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr);
  if (!key) return {"not a PEM private key (or one with a passphrase)" + reason(), true};
  ok = SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  if (!ok) {
    ERR_clear_error();
    return {"the key does not match the certificate", true};
  }
  return {};
}

PemProblem check_pem_pair(std::string_view cert_pem, std::string_view key_pem) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return {"cannot make a TLS context" + reason(), false};
  PemProblem p = use_pem_pair(ctx, cert_pem, key_pem);
  SSL_CTX_free(ctx);
  return p;
}

}  // namespace config
