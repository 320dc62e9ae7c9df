#pragma once
// Small pieces shared by the admin documents (/metrics in metrics.cpp, /status in
// status.cpp): relaxed counter reads, the process's resident size, and the Prometheus text
// format (version 0.0.4) writer. Internal to lb/admin.
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace lb::admin {

// A counter read for display: relaxed, since a document is a snapshot anyway.
inline uint64_t load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }

// A gauge that may dip below zero for a moment (a decrement seen before its increment)
// shown as 0, since Prometheus gauges here are unsigned.
inline uint64_t non_negative(int64_t v) { return v < 0 ? 0 : static_cast<uint64_t>(v); }

// Resident set size of this process in bytes (/proc/self/statm); 0 when it cannot be read.
uint64_t resident_bytes();

// Microseconds as decimal seconds, exactly and without trailing zeros: 100 -> "0.0001",
// 2500000 -> "2.5", 30000000 -> "30" (histogram "le" bounds and sums).
std::string seconds_text(uint64_t us);

// A Prometheus label value with \, " and newline escaped.
std::string label(std::string_view v);

// Appends Prometheus text exposition to a string: a family's HELP and TYPE lines, then its
// samples. The caller keeps each family's samples together, as Prometheus wants.
class Exposition {
 public:
  explicit Exposition(std::string& out) : o_(out) {}
  // "# HELP name text" and "# TYPE name type".
  void help(std::string_view name, std::string_view type, std::string_view text);
  // "name{labels} v", or "name v" when labels is empty.
  void line(std::string_view name, std::string_view labels, uint64_t v);
  // The same with a value already formatted (a float, or seconds_text).
  void line(std::string_view name, std::string_view labels, std::string_view v);
  // The same with a floating-point value (shortest text that reads back exactly).
  void line_double(std::string_view name, std::string_view labels, double v);
  // One sample per value of the label `key`: "name{base,key="value"} v" for each
  // {value, v}; `base` (already escaped) may be empty. Values are literals, not escaped.
  void by_label(std::string_view name, std::string_view base, std::string_view key,
                std::initializer_list<std::pair<std::string_view, uint64_t>> samples);

 private:
  std::string& o_;
};

}  // namespace lb::admin
