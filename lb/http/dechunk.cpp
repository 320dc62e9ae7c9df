#include "lb/http/dechunk.h"

#include <charconv>

namespace lb::http {

bool dechunk(std::string_view raw, std::string& out) {
  out.clear();
  while (true) {
    size_t eol = raw.find("\r\n");
    if (eol == std::string_view::npos) return false;
    std::string_view line = raw.substr(0, eol);
    line = line.substr(0, line.find(';'));  // chunk extensions are ignored
    size_t size = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
    if (ec != std::errc() || p != line.data() + line.size() || line.empty()) return false;
    raw.remove_prefix(eol + 2);
    if (size == 0) return true;  // trailers, if any, are not needed
    // Written so that a size near 2^64 cannot wrap (size + 2 would).
    if (size > raw.size() || raw.size() - size < 2 || raw.substr(size, 2) != "\r\n") return false;
    out.append(raw.substr(0, size));
    raw.remove_prefix(size + 2);
  }
}

}  // namespace lb::http
