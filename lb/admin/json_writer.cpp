#include "lb/admin/json_writer.h"

#include <cmath>
#include <cstdio>

#include "lb/core/flat_json.h"

namespace lb::admin {

void json_escape(std::string& out, std::string_view s) {
  out.push_back('"');
  out += lb::json_escape(s);
  out.push_back('"');
}

void JsonWriter::comma() {
  if (need_comma_) out_.push_back(',');
  need_comma_ = true;
}

JsonWriter& JsonWriter::begin_object() {
  comma();
  out_.push_back('{');
  need_comma_ = false;
  return *this;
}
JsonWriter& JsonWriter::end_object() {
  out_.push_back('}');
  need_comma_ = true;
  return *this;
}
JsonWriter& JsonWriter::begin_array() {
  comma();
  out_.push_back('[');
  need_comma_ = false;
  return *this;
}
JsonWriter& JsonWriter::end_array() {
  out_.push_back(']');
  need_comma_ = true;
  return *this;
}
JsonWriter& JsonWriter::key(std::string_view k) {
  comma();
  json_escape(out_, k);
  out_.push_back(':');
  need_comma_ = false;
  return *this;
}
JsonWriter& JsonWriter::value(std::string_view s) {
  comma();
  json_escape(out_, s);
  return *this;
}
JsonWriter& JsonWriter::value(uint64_t n) {
  comma();
  out_.append(std::to_string(n));
  return *this;
}
JsonWriter& JsonWriter::value(int64_t n) {
  comma();
  out_.append(std::to_string(n));
  return *this;
}
JsonWriter& JsonWriter::value(double d) {
  comma();
  if (!std::isfinite(d)) {
    out_.append("null");
    return *this;
  }
  char buf[32];
  snprintf(buf, sizeof buf, "%.6g", d);
  out_.append(buf);
  return *this;
}
JsonWriter& JsonWriter::value(bool b) {
  comma();
  out_.append(b ? "true" : "false");
  return *this;
}
JsonWriter& JsonWriter::null() {
  comma();
  out_.append("null");
  return *this;
}

}  // namespace lb::admin
