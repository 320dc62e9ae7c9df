#pragma once
// The config `corral --demo` serves: the embedded default's listener (127.0.0.1:8080) and
// admin (:9901), with the simulated Kupo instances behind `/` and the simulated Ogmios
// instances behind `/ogmios` (strip_prefix, websocket). Pure text; the caller loads it.
#include <cstdint>
#include <string>
#include <vector>

namespace bench {

// YAML for the demo: backends kupo-1.. and ogmios-1.. on 127.0.0.1 at the given ports.
std::string demo_config_yaml(const std::vector<uint16_t>& kupo_ports,
                             const std::vector<uint16_t>& ogmios_ports);

}  // namespace bench
