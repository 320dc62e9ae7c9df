#pragma once
// A listener's certificate chain and private key, checked as OpenSSL will use them: the
// loader refuses a pair that would not serve (unreadable PEM, a key that does not match
// the certificate, a key too weak for OpenSSL's security level), so a bad pair fails the
// load or the reload instead of the first handshake.
#include <openssl/ssl.h>

#include <string>
#include <string_view>

namespace config {

// What is wrong with a pair: empty when nothing; `in_key` says which file to blame.
struct PemProblem {
  std::string what;
  bool in_key = false;
};

// Installs the chain (leaf first) and the key into a server context.
PemProblem use_pem_pair(SSL_CTX* ctx, std::string_view cert_pem, std::string_view key_pem);

// The same check on a scratch context.
PemProblem check_pem_pair(std::string_view cert_pem, std::string_view key_pem);

}  // namespace config
