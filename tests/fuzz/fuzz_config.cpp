// Fuzz target: the config loader (config/loader) on any text, as `corral --check` and a
// SIGHUP reload read it. It must never throw or crash; a refused text names at least one
// error with a position inside the text.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/loader.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  config::LoadResult r = config::load_string(yaml, "fuzz.yaml");
  FUZZ_CHECK(r.config.has_value() == r.errors.empty(), "a config or errors, not both");
  const int lines = 2 + static_cast<int>(std::count(yaml.begin(), yaml.end(), '\n'));
  for (const config::ConfigError& e : r.errors) {
    FUZZ_CHECK(e.line >= 0 && e.line <= lines, "an error's line is inside the text");
    FUZZ_CHECK(e.column >= 0, "an error's column is not negative");
    FUZZ_CHECK(!e.str().empty(), "an error prints");
  }
  return 0;
}
