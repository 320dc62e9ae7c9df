// The configuration `corral` serves when started without --config (DESIGN.md "Programs"):
// loopback only, one Kupo, every sticky key source, read-only methods.
#include "config/loader.h"

namespace config {

std::string_view embedded_default_yaml() {
  static constexpr std::string_view kYaml = R"(workers: 1
admin: {listen: 127.0.0.1:9901}
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - {prefix: /, pool: kupo, methods: [GET, HEAD, OPTIONS]}
sticky:
  keys:
    - {from: path, prefix: /s/}
    - {from: cookie, name: corral}
    - {from: header, name: X-Session-Key}
    - {from: address}
    - {from: client_ip}
pools:
  kupo:
    kind: kupo
    backends:
      - {name: kupo-1, address: 127.0.0.1:1442}
)";
  return kYaml;
}

}  // namespace config
