#pragma once
// A request or response header as views into the connection's read buffer.
#include <span>
#include <string_view>

namespace lb {

struct HeaderView {
  std::string_view name;
  std::string_view value;
};

// Case-insensitive ASCII comparison, as HTTP field names require (RFC 9110 §5.1).
bool iequals(std::string_view a, std::string_view b);

// `v` without leading and trailing optional whitespace (OWS: SP and HTAB, RFC 9110
// §5.6.3), as field values and list members are compared.
std::string_view trim_ows(std::string_view v);

// The value of the first header named `name`, or an empty view with found=false.
struct HeaderLookup {
  bool found = false;
  std::string_view value;
};
HeaderLookup find_header(std::span<const HeaderView> headers, std::string_view name);

}  // namespace lb
