#include "config/config.h"

namespace config {

const Pool* Config::find_pool(const std::string& name) const {
  for (const Pool& p : pools)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace config
