#pragma once
// A minimal streaming JSON writer for /status: strings are escaped (names come from the
// operator's config and must not break the document).
#include <cstdint>
#include <string>
#include <string_view>

namespace lb::admin {

class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view s);
  JsonWriter& value(const char* s) { return value(std::string_view(s)); }
  JsonWriter& value(uint64_t n);
  JsonWriter& value(int64_t n);
  JsonWriter& value(int n) { return value(static_cast<int64_t>(n)); }
  JsonWriter& value(unsigned n) { return value(static_cast<uint64_t>(n)); }
  JsonWriter& value(double d);
  JsonWriter& value(bool b);
  JsonWriter& null();
  const std::string& str() const { return out_; }

 private:
  void comma();
  std::string out_;
  bool need_comma_ = false;
};

// Appends s to out as a JSON string literal (with quotes), escaped by lb::json_escape.
void json_escape(std::string& out, std::string_view s);

}  // namespace lb::admin
