#pragma once
// OpenSSL contexts for the TLS stream (DESIGN.md "Security"): a server context per TLS
// listener (certificate and key from PEM files, TLS 1.2 and 1.3 only, a modern cipher
// list, ALPN http/1.1, resumption by session cache and tickets) and a client context for
// TLS backends (system CA store or a CA file, TLS 1.2+, verification always on). A context
// is shared by every worker (OpenSSL locks what it shares) and held by shared_ptr: a reload
// swaps in a new one while connections made with the old one keep it alive (an SSL holds
// a reference of its own).
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

namespace lb::net {

using TlsContext = std::shared_ptr<SSL_CTX>;

// A server context from a PEM certificate chain and a PEM private key. On failure returns
// null and sets err to a message naming the file and what is wrong with it (unreadable,
// not PEM, key not matching the certificate).
TlsContext make_server_tls(const std::string& cert_file, const std::string& key_file,
                           std::string& err);

// A client context verifying peers against ca_file, or the system CA store when ca_file
// is empty. On failure returns null and sets err.
TlsContext make_client_tls(const std::string& ca_file, std::string& err);

// Per client connection: SNI (for a host name; an IP literal sends none) and the name or
// address the peer's certificate must carry. False (err set) if OpenSSL refused it.
bool set_tls_peer(SSL* ssl, std::string_view server_name, std::string& err);

// The thread's OpenSSL error queue as one line (and cleared), for logs and tls_error().
std::string take_openssl_errors();

}  // namespace lb::net
