// Fuzz target: lb/core/flat_json, the bounded reader for backends' health answers. Any
// bytes must parse or be refused without a crash; every field can be found; a nested field
// read by hand is found by lookup(); json_escape of any bytes survives a round trip.
#include <cstdint>
#include <string>
#include <string_view>

#include "lb/core/flat_json.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto j = lb::FlatJson::parse(text);
  if (!j) {
    // Escaping arbitrary bytes must give a string literal that reads back as them.
    std::string doc = "{\"k\":\"" + lb::json_escape(text) + "\"}";
    auto back = lb::FlatJson::parse(doc);
    FUZZ_CHECK(back && back->find("k") && back->find("k")->text == text, "json_escape round trip");
    return 0;
  }
  for (const auto& [name, value] : j->fields()) {
    const lb::JsonValue* v = j->find(name);
    FUZZ_CHECK(v != nullptr, "every field can be found");
    (void)value.as_count();
    if (v->is_object()) {  // the last field of that name is the one lookup() reads
      // Nested values are kept raw and only checked when read: parse may refuse them.
      auto inner = lb::FlatJson::parse(v->text);
      if (inner && !inner->fields().empty() && name.find('.') == std::string::npos &&
          inner->fields()[0].first.find('.') == std::string::npos) {
        auto found = j->lookup(name + "." + inner->fields()[0].first);
        FUZZ_CHECK(found.has_value(), "a nested field found by parsing is found by lookup");
      }
    }
  }
  for (std::string_view path : {"lastKnownTip.slot", "most_recent_checkpoint", "is_healthy",
                                "networkSynchronization", "a.b.c.d"})
    (void)j->lookup(path);
  return 0;
}
