#include "bench/sim/demo_config.h"

namespace bench {

namespace {

std::string backends(const std::string& kind, const std::vector<uint16_t>& ports) {
  std::string out;
  for (size_t i = 0; i < ports.size(); ++i)
    out += "      - {name: " + kind + "-" + std::to_string(i + 1) +
           ", address: 127.0.0.1:" + std::to_string(ports[i]) + "}\n";
  return out;
}

}  // namespace

std::string demo_config_yaml(const std::vector<uint16_t>& kupo_ports,
                             const std::vector<uint16_t>& ogmios_ports) {
  // First matching prefix wins: /ogmios before the catch-all Kupo route.
  std::string y =
      "workers: 1\n"
      "admin: {listen: 127.0.0.1:9901}\n"
      "listeners:\n"
      "  - name: public\n"
      "    listen: 127.0.0.1:8080\n"
      "    routes:\n";
  if (!ogmios_ports.empty())
    y += "      - {prefix: /ogmios, pool: ogmios, strip_prefix: true, websocket: true}\n";
  y += "      - {prefix: /, pool: kupo, methods: [GET, HEAD, OPTIONS]}\n"
       "sticky:\n"
       "  keys:\n"
       "    - {from: path, prefix: /s/}\n"
       "    - {from: cookie, name: corral}\n"
       "    - {from: header, name: X-Session-Key}\n"
       "    - {from: address}\n"
       "    - {from: client_ip}\n"
       "pools:\n"
       "  kupo:\n"
       "    kind: kupo\n"
       "    backends:\n" +
       backends("kupo", kupo_ports);
  if (!ogmios_ports.empty())
    y += "  ogmios:\n"
         "    kind: ogmios\n"
         "    backends:\n" +
         backends("ogmios", ogmios_ports);
  return y;
}

}  // namespace bench
