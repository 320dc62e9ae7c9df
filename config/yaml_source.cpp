#include "config/yaml_source.h"

#include <cctype>
#include <string_view>
#include <utility>

#include "config/text.h"

namespace config::detail {

namespace {

// The lines of `yaml`, without their '\n' (and a '\r' before it).
std::vector<std::string_view> lines_of(std::string_view yaml) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < yaml.size()) {
    size_t end = yaml.find('\n', start);
    if (end == std::string_view::npos) end = yaml.size();
    std::string_view l = yaml.substr(start, end - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    out.push_back(l);
    start = end + 1;
  }
  return out;
}

// A quote opens a scalar only where a scalar may start, so the apostrophe in a plain
// `don't` is not taken for one.
bool scalar_may_start_after(std::string_view l, size_t i) {
  if (i == 0) return true;
  char p = l[i - 1];
  return p == ' ' || p == '\t' || p == '[' || p == '{' || p == ',' || p == ':' || p == '-';
}

// Calls `at(i)` for every index of `l` outside quoted scalars, up to a comment.
template <class F>
void scan_plain(std::string_view l, F at) {
  char quote = 0;
  for (size_t i = 0; i < l.size(); ++i) {
    char c = l[i];
    if (quote) {
      if (c == '\\' && quote == '"')
        ++i;
      else if (c == quote)
        quote = 0;
      continue;
    }
    if ((c == '"' || c == '\'') && scalar_may_start_after(l, i)) {
      quote = c;
      continue;
    }
    if (c == '#' && (i == 0 || l[i - 1] == ' ' || l[i - 1] == '\t')) return;
    at(i);
  }
}

// The line without a trailing comment and trailing blanks.
std::string_view content_of(std::string_view l) {
  size_t end = 0;
  scan_plain(l, [&](size_t i) { end = i + 1; });
  while (end > 0 && (l[end - 1] == ' ' || l[end - 1] == '\t')) --end;
  return l.substr(0, end);
}

// True when the line ends in a block scalar header: `key: |`, `- >-`, `key: |2`.
bool opens_block_scalar(std::string_view l) {
  std::string_view c = content_of(l);
  size_t i = c.size();
  while (i > 0 && (c[i - 1] == '-' || c[i - 1] == '+' || std::isdigit((unsigned char)c[i - 1])))
    --i;
  if (i == 0 || (c[i - 1] != '|' && c[i - 1] != '>')) return false;
  return i == 1 || c[i - 2] == ' ';
}

bool is_hex_or_dot(char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == '.'; }

// The length of a bracketed IPv6 address with an optional :port at the start of `s`
// ("[::1]:1442", "[fe80::1]"), else 0. Two colons at least: "[127.0.0.1:80]" is a list
// holding one IPv4 address, not this mistake.
size_t bracketed_ipv6_length(std::string_view s) {
  if (s.empty() || s.front() != '[') return 0;
  size_t close = s.find(']');
  if (close == std::string_view::npos) return 0;
  int colons = 0;
  for (size_t i = 1; i < close; ++i) {
    if (s[i] == ':')
      ++colons;
    else if (!is_hex_or_dot(s[i]))
      return 0;
  }
  if (colons < 2) return 0;
  size_t end = close + 1;
  if (end + 1 < s.size() && s[end] == ':' && std::isdigit(static_cast<unsigned char>(s[end + 1]))) {
    ++end;
    while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end]))) ++end;
  }
  return end;
}

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

size_t indent_of(std::string_view l) {
  size_t i = l.find_first_not_of(" \t");
  return i == std::string_view::npos ? l.size() : i;
}

// The keys whose values are secrets (set_headers' header values, sticky.store.password).
constexpr std::string_view kSecretKeys[] = {"set_headers:", "password:"};

// Where a secret key starts in `l` and its length, or npos.
std::pair<size_t, size_t> secret_key_in(std::string_view l) {
  for (std::string_view k : kSecretKeys)
    if (size_t at = l.find(k); at != std::string_view::npos) return {at, k.size()};
  return {std::string_view::npos, 0};
}

// Line `n` (0-based) as it may be shown: header values under set_headers and a password
// are where someone pastes a key, so there only the key is kept ("project_id: ..."), as
// the loader never echoes those values either.
std::string shown_line(const std::vector<std::string_view>& lines, size_t n) {
  std::string_view l = lines[n];
  if (auto [at, len] = secret_key_in(l); at != std::string_view::npos)
    return std::string(l.substr(0, at + len)) + " ...";
  size_t limit = indent_of(l);
  bool secret = false;
  for (size_t k = n; k-- > 0 && limit > 0 && !secret;) {
    std::string_view c = content_of(lines[k]);
    if (c.find_first_not_of(" \t") == std::string_view::npos) continue;
    size_t ind = indent_of(c);
    if (ind >= limit) continue;
    limit = ind;
    std::string_view head = c.substr(ind);
    if (head.substr(0, 2) == "- ") head.remove_prefix(2);
    for (std::string_view k : kSecretKeys) secret = secret || head.starts_with(k);
  }
  if (!secret) return std::string(l);
  size_t colon = l.find(':');
  return std::string(l.substr(0, colon == std::string_view::npos ? indent_of(l) : colon + 1)) +
         " ...";
}

}  // namespace

std::optional<SourceIssue> find_tab_indent(std::string_view yaml) {
  std::vector<std::string_view> lines = lines_of(yaml);
  int block_parent = -1;  // inside a block scalar: the spaces indenting its header line
  for (size_t n = 0; n < lines.size(); ++n) {
    std::string_view l = lines[n];
    size_t ws = l.find_first_not_of(" \t");
    bool blank = ws == std::string_view::npos;
    size_t spaces = l.find_first_not_of(' ');
    if (spaces == std::string_view::npos) spaces = l.size();
    if (block_parent >= 0) {
      if (blank || static_cast<int>(spaces) > block_parent) continue;
      block_parent = -1;
    }
    size_t tab = l.find('\t');
    if (tab != std::string_view::npos && (blank || tab < ws)) {
      return SourceIssue{static_cast<int>(n + 1), static_cast<int>(tab + 1), "",
                         "tab character in indentation; YAML indents with spaces only (the line "
                         "reads " +
                             text::quoted(shown_line(lines, n)) + ")"};
    }
    if (!blank && opens_block_scalar(l)) block_parent = static_cast<int>(spaces);
  }
  return std::nullopt;
}

std::vector<SourceIssue> find_unquoted_ipv6(std::string_view yaml) {
  std::vector<SourceIssue> out;
  std::vector<std::string_view> lines = lines_of(yaml);
  for (size_t n = 0; n < lines.size(); ++n) {
    std::string_view l = lines[n];
    scan_plain(l, [&](size_t i) {
      if (l[i] != ':' || i + 1 >= l.size() || (l[i + 1] != ' ' && l[i + 1] != '\t')) return;
      size_t k = i;
      while (k > 0 && is_key_char(l[k - 1])) --k;
      size_t v = l.find_first_not_of(" \t", i + 1);
      if (k == i || v == std::string_view::npos) return;
      size_t len = bracketed_ipv6_length(l.substr(v));
      if (len == 0) return;
      out.push_back(SourceIssue{
          static_cast<int>(n + 1), static_cast<int>(v + 1), std::string(l.substr(k, i - k)),
          "IPv6 address must be quoted in YAML: " + text::quoted(l.substr(v, len))});
    });
  }
  return out;
}

std::optional<std::string> bracketed_ipv6_at(std::string_view yaml, int line, int column) {
  std::vector<std::string_view> lines = lines_of(yaml);
  if (line < 1 || static_cast<size_t>(line) > lines.size() || column < 1) return std::nullopt;
  std::string_view l = lines[static_cast<size_t>(line - 1)];
  if (static_cast<size_t>(column) > l.size()) return std::nullopt;
  std::string_view rest = l.substr(static_cast<size_t>(column - 1));
  size_t len = bracketed_ipv6_length(rest);
  if (len == 0) return std::nullopt;
  return std::string(rest.substr(0, len));
}

std::string source_line(std::string_view yaml, int line) {
  std::vector<std::string_view> lines = lines_of(yaml);
  if (line < 1 || static_cast<size_t>(line) > lines.size()) return "";
  return text::trim(shown_line(lines, static_cast<size_t>(line - 1)));
}

std::string explain_yaml_error(std::string_view msg) {
  struct Plain {
    std::string_view yaml_cpp;  // a prefix of yaml-cpp's message
    std::string_view sentence;
  };
  // Longer prefixes first: "end of map flow" before "end of map".
  static constexpr Plain kPlain[] = {
      {"end of map flow not found",
       "a '{' mapping is not closed by '}', or a value in it holds a ':', '[' or '{' and needs "
       "quotes"},
      {"end of sequence flow not found",
       "a '[' list is not closed by ']', or a value in it holds a ':', '[' or '{' and needs "
       "quotes"},
      {"end of map not found",
       "this line does not line up with the keys above it (check its indentation), or a value "
       "starting with '[' or '{' needs quotes"},
      {"end of sequence not found",
       "this '- ' item does not line up with the items above it (check its indentation)"},
      {"illegal map value",
       "unexpected ':' here: a key is indented deeper than its neighbours, or a value holding "
       "': ' needs quotes"},
      {"illegal map key", "unexpected key here (check the indentation and the ':' after the key)"},
      {"illegal block entry", "a '- ' item where a key was expected (check the indentation)"},
      {"illegal flow end", "a ']' or '}' that closes nothing"},
      {"unknown escape character",
       "unknown backslash escape in a double-quoted string; use single quotes, or write \\\\ "
       "for a backslash"},
      {"illegal EOF in scalar", "a quoted string is not closed before the end of the file"},
      {"illegal tab when looking for indentation",
       "tab character in indentation; YAML indents with spaces only"},
      {"bad conversion", "a value does not have the expected type"},
      {"unexpected end sequence token", "a ']' that closes nothing"},
      {"unexpected end map token", "a '}' that closes nothing"},
      {"the referenced anchor is not defined", "an alias (*name) refers to no anchor (&name)"},
  };
  for (const Plain& p : kPlain)
    if (msg.substr(0, p.yaml_cpp.size()) == p.yaml_cpp)
      return std::string(p.sentence) + " [yaml-cpp: " + std::string(msg) + "]";
  return std::string(msg);
}

}  // namespace config::detail
