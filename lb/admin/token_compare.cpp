#include "lb/admin/token_compare.h"

#include <openssl/crypto.h>

namespace lb::admin {

bool token_equals(std::string_view given, std::string_view secret) {
  if (given.size() != secret.size()) return false;
  if (secret.empty()) return true;
  return CRYPTO_memcmp(given.data(), secret.data(), secret.size()) == 0;
}

}  // namespace lb::admin
