#pragma once
// Diagnostics read off the YAML text itself, for the mistakes yaml-cpp reports cryptically
// ("end of map not found" for a tab, a parse error or a list for an unquoted IPv6
// address): they name the problem and echo what the operator wrote. No yaml-cpp here.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace config::detail {

// A finding at a 1-based line and column; `key` is the key the value belongs to, if any.
struct SourceIssue {
  int line = 0;
  int column = 0;
  std::string key;
  std::string message;
};

// The first line whose indentation holds a tab (outside block scalars, whose content may
// hold tabs), located at that tab, echoing the line as source_line shows it. YAML forbids tabs
// there; yaml-cpp either fails far from the cause or accepts a file whose structure the tab made
// ambiguous.
std::optional<SourceIssue> find_tab_indent(std::string_view yaml);

// Every `KEY: [hex:hex...]...` value written outside quotes, e.g. `address: [::1]:1442`:
// YAML reads the brackets as a list, so the file fails to parse or the address turns
// into a list. Located at the '[', keyed by KEY, echoing the value.
std::vector<SourceIssue> find_unquoted_ipv6(std::string_view yaml);

// When the text at 1-based line:column is a bracketed IPv6 address (with an optional
// :port), that text, e.g. "[::1]:1442"; else nullopt.
std::optional<std::string> bracketed_ipv6_at(std::string_view yaml, int line, int column);

// The 1-based line `line` of `yaml`, trimmed, with a header value under set_headers or a
// password replaced by "..." (secrets are never echoed); empty when there is no such line.
std::string source_line(std::string_view yaml, int line);

// A plain sentence for one of yaml-cpp's parser messages ("end of map not found"),
// ending with the original in brackets so that it can still be searched for.
std::string explain_yaml_error(std::string_view msg);

}  // namespace config::detail
