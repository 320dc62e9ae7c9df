#include "lb/admin/exposition.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>

namespace lb::admin {

uint64_t resident_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

std::string seconds_text(uint64_t us) {
  std::string out = std::to_string(us / 1'000'000);
  uint64_t frac = us % 1'000'000;
  if (frac == 0) return out;
  std::string digits = std::to_string(frac);
  digits.insert(0, 6 - digits.size(), '0');
  digits.erase(digits.find_last_not_of('0') + 1);
  return out + "." + digits;
}

std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out.append("\\n");
      continue;
    }
    out.push_back(c);
  }
  return out;
}

void Exposition::help(std::string_view name, std::string_view type, std::string_view text) {
  o_.append("# HELP ").append(name).append(" ").append(text).append("\n");
  o_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void Exposition::line(std::string_view name, std::string_view labels, uint64_t v) {
  o_.append(name);
  if (!labels.empty()) o_.append("{").append(labels).append("}");
  o_.append(" ").append(std::to_string(v)).append("\n");
}

void Exposition::line(std::string_view name, std::string_view labels, std::string_view v) {
  o_.append(name);
  if (!labels.empty()) o_.append("{").append(labels).append("}");
  o_.append(" ").append(v).append("\n");
}

void Exposition::line_double(std::string_view name, std::string_view labels, double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  line(name, labels, std::string_view(buf, ec == std::errc() ? end - buf : 0));
}

void Exposition::by_label(std::string_view name, std::string_view base, std::string_view key,
                          std::initializer_list<std::pair<std::string_view, uint64_t>> samples) {
  for (const auto& [value, v] : samples) {
    std::string labels(base);
    if (!labels.empty()) labels.push_back(',');
    labels.append(key).append("=\"").append(value).append("\"");
    line(name, labels, v);
  }
}

}  // namespace lb::admin
