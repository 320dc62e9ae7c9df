#pragma once
// Test certificates made with the openssl CLI in a scratch directory removed at scope
// exit: a CA, a server certificate it signs for localhost and 127.0.0.1, a second
// certificate for the same names (a swap), and an unrelated CA and key.
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace lb::test {

struct TlsCerts {
  std::filesystem::path dir;
  bool ok = false;

  TlsCerts() {
    char tmpl[] = "/tmp/corral-tls-test-XXXXXX";
    dir = mkdtemp(tmpl);
    std::string d = dir.string();
    std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::string cmd =
        "cd " + d + " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext" +
        " && openssl req -x509" + ec + " -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca" +
        " && openssl req -x509" + ec +
        " -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other-ca" + " && for n in " +
        "server server2; do openssl req" + ec +
        " -keyout $n.key -out $n.csr -subj /CN=localhost && openssl x509 -req -in $n.csr" +
        " -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out $n.pem" +
        " || exit 1; done) >/dev/null 2>&1";
    ok = std::system(("(" + cmd).c_str()) == 0;
  }
  ~TlsCerts() { std::filesystem::remove_all(dir); }
  std::string file(const char* name) const { return (dir / name).string(); }
};

}  // namespace lb::test
