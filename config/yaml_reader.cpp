#include "config/yaml_reader.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "config/address.h"
#include "config/duration.h"
#include "config/size.h"
#include "config/text.h"
#include "config/yaml_source.h"

namespace config::detail {

Pos pos_of(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

const Entry* Map::find(std::string_view key) const {
  for (const Entry& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

void Reader::add(Pos p, std::string key, std::string message) {
  errors_.push_back(ConfigError{file_, p.line, p.column, std::move(key), std::move(message)});
}

void Reader::not_implemented(const Entry& e, std::string_view what) {
  // Accepting it and doing nothing would be worse than refusing: an operator who writes
  // tls: true expects encryption, not clear text.
  add(e.key_pos, e.path,
      std::string(what) +
          " is not implemented yet; remove it (corral refuses keys it would ignore)");
}

namespace {

// Shared by as_map and as_name_map: the entries of a mapping, duplicates refused.
template <class Keep>
Map entries_of(Reader& r, const Entry& e, Keep keep) {
  Map m;
  m.path = e.path;
  m.pos = e.pos;
  if (!e.v.IsMap()) {
    r.error(e, "expected a mapping");
    return m;
  }
  m.ok = true;
  std::set<std::string> seen;
  for (auto it = e.v.begin(); it != e.v.end(); ++it) {
    // Copies: the iterator hands out a proxy that dies with the expression.
    YAML::Node k = it->first;
    YAML::Node v = it->second;
    if (!k.IsScalar()) {
      r.add(pos_of(k.Mark()), e.path, "expected a plain key");
      continue;
    }
    Entry child{k.Scalar(), v, join(e.path, k.Scalar()), pos_of(k.Mark()),
                v.IsNull() ? pos_of(k.Mark()) : pos_of(v.Mark())};
    if (!seen.insert(child.key).second) {
      r.add(child.key_pos, child.path, "duplicate key '" + child.key + "'");
      continue;
    }
    if (keep(child)) m.entries.push_back(std::move(child));
  }
  return m;
}

}  // namespace

Map Reader::as_map(const Entry& e, std::initializer_list<std::string_view> known,
                   std::initializer_list<std::string_view> planned) {
  return entries_of(*this, e, [&](const Entry& child) {
    if (std::find(known.begin(), known.end(), child.key) != known.end()) return true;
    if (std::find(planned.begin(), planned.end(), child.key) != planned.end())
      not_implemented(child, "'" + child.key + "'");
    else
      add(child.key_pos, child.path,
          "unknown key '" + child.key + "'" + text::suggestion(child.key, known));
    return false;
  });
}

Map Reader::as_name_map(const Entry& e) {
  return entries_of(*this, e, [](const Entry&) { return true; });
}

const Entry* Reader::get(const Map& m, std::string_view key, bool required) {
  if (!m.ok) return nullptr;
  const Entry* e = m.find(key);
  if (!e && required) add(m.pos, join(m.path, key), "required key is missing");
  return e;
}

std::optional<std::vector<Entry>> Reader::as_list(const Entry& e) {
  if (!e.v.IsSequence()) {
    error(e, "expected a list");
    return std::nullopt;
  }
  std::vector<Entry> out;
  size_t i = 0;
  for (const YAML::Node& n : e.v) {
    Pos p = pos_of(n.Mark());
    if (p.line == 0) p = e.pos;
    out.push_back(Entry{"", n, e.path + "[" + std::to_string(i) + "]", p, p});
    ++i;
  }
  return out;
}

bool Reader::read_string(const Entry& e, std::string& out) {
  if (!e.v.IsScalar()) {
    error(e, "expected a string");
    return false;
  }
  if (e.v.Scalar().empty()) {
    error(e, "must not be empty");
    return false;
  }
  out = e.v.Scalar();
  return true;
}

bool Reader::read_name(const Entry& e, std::string& out) {
  if (!read_string(e, out)) return false;
  if (!text::is_name(out)) {
    error(e, "expected a name of letters, digits, '-', '_' or '.'");
    return false;
  }
  return true;
}

std::optional<uint64_t> Reader::checked_uint(const Entry& e, uint64_t lo, uint64_t hi) {
  std::optional<uint64_t> v;
  if (e.v.IsScalar()) v = text::parse_uint(e.v.Scalar());
  if (!v || *v < lo || *v > hi) {
    if (hi >= kU32Max && lo <= 1)
      error(e, lo == 0 ? "expected a non-negative integer" : "expected a positive integer");
    else
      error(e, "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return std::nullopt;
  }
  return v;
}

bool Reader::read_bool(const Entry& e, bool& out) {
  std::string s = e.v.IsScalar() ? e.v.Scalar() : "";
  if (s == "true" || s == "True" || s == "TRUE") {
    out = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    out = false;
    return true;
  }
  error(e, "expected true or false");
  return false;
}

bool Reader::read_number(const Entry& e, double& out) {
  std::optional<double> v;
  if (e.v.IsScalar()) v = text::parse_number(e.v.Scalar());
  if (!v || *v < 0) {
    error(e, "expected a non-negative number");
    return false;
  }
  out = *v;
  return true;
}

namespace {

// What a value that should have been a scalar is, for "got a list".
std::string kind_of(const YAML::Node& n) {
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

}  // namespace

// Most durations are timeouts, periods or lifetimes, where zero makes no sense; the few
// that may be zero mean "off" by it, and "0" needs no unit to say so.
bool Reader::read_duration(const Entry& e, uint64_t& out, bool allow_zero) {
  std::string expected = "expected a whole number with a unit: " + std::string(kDurationUnits) +
                         " (e.g. 250ms, 10s, 5m)" + (allow_zero ? ", or 0 for off" : "");
  if (!e.v.IsScalar()) {
    error(e, "bad duration: got " + kind_of(e.v) + "; " + expected);
    return false;
  }
  const std::string& s = e.v.Scalar();
  std::optional<uint64_t> v = parse_duration_ms(s);
  if (!v && allow_zero && s == "0") v = 0;
  if (!v) {
    error(e, "bad duration " + text::quoted(s) + ": " + duration_problem(s) + "; " + expected);
    return false;
  }
  if (*v == 0 && !allow_zero) {
    error(e, "bad duration " + text::quoted(s) + ": expected a duration greater than zero");
    return false;
  }
  out = *v;
  return true;
}

bool Reader::read_size(const Entry& e, uint64_t& out, uint64_t lo, uint64_t hi) {
  const char* expected =
      "expected plain bytes or a whole number with a unit: KB, MB or GB (powers of 1024; e.g. "
      "16384, 64KB, 1MB)";
  if (!e.v.IsScalar()) {
    error(e, "bad size: got " + kind_of(e.v) + "; " + expected);
    return false;
  }
  const std::string& s = e.v.Scalar();
  std::optional<uint64_t> v = parse_size_bytes(s);
  if (!v) {
    error(e, "bad size " + text::quoted(s) + ": " + size_problem(s) + "; " + expected);
    return false;
  }
  if (*v < lo || *v > hi) {
    std::string range = hi == kU64Max ? "at least " + std::to_string(lo)
                                      : "from " + std::to_string(lo) + " to " + std::to_string(hi);
    error(e, "bad size " + text::quoted(s) + ": " + std::to_string(*v) +
                 " bytes is out of range; expected a size " + range + " bytes");
    return false;
  }
  out = *v;
  return true;
}

namespace {

// For an IPv6 address written without brackets ("::1:1442"), the bracketed spelling
// taking the last ':' as the port separator; nullopt when that is not an address either.
std::optional<std::string> bracketed_spelling(const std::string& s, bool listen) {
  size_t colon = s.rfind(':');
  if (s.empty() || s.front() == '[' || colon == std::string::npos ||
      s.find(':') == colon)  // one colon: host:port, not this mistake
    return std::nullopt;
  std::string fixed = "[" + s.substr(0, colon) + "]" + s.substr(colon);
  if (!parse_address(fixed, nullptr, listen)) return std::nullopt;
  return fixed;
}

}  // namespace

bool Reader::read_address(const Entry& e, Address& out, bool listen) {
  if (!e.v.IsScalar()) {
    // `address: [::1]:1442` reaches here as a list when yaml-cpp accepts it at all.
    if (std::optional<std::string> v6 = bracketed_ipv6_at(source_, e.pos.line, e.pos.column))
      error(e, "IPv6 address must be quoted in YAML: " + text::quoted(*v6));
    else
      error(e, "expected an address like 127.0.0.1:1442, got " + kind_of(e.v));
    return false;
  }
  const std::string& s = e.v.Scalar();
  if (s.empty()) {
    error(e, "expected an address like 127.0.0.1:1442");
    return false;
  }
  std::string why;
  std::optional<Address> a = parse_address(s, &why, listen);
  if (!a) {
    if (std::optional<std::string> fixed = bracketed_spelling(s, listen))
      error(e, "IPv6 address must be bracketed, and quoted in YAML: " + text::quoted(s) +
                   " (write " + text::quoted(*fixed) + ")");
    else
      error(e, "invalid address " + text::quoted(s) + ": " + why);
    return false;
  }
  out = std::move(*a);
  return true;
}

bool Reader::read_choice(const Entry& e, std::initializer_list<std::string_view> choices,
                         size_t& index) {
  std::string s;
  if (e.v.IsScalar()) s = e.v.Scalar();
  size_t i = 0;
  for (std::string_view c : choices) {
    if (s == c) {
      index = i;
      return true;
    }
    ++i;
  }
  std::string list;
  i = 0;
  for (std::string_view c : choices) {
    if (i++) list += i == choices.size() ? " or " : ", ";
    list += c;
  }
  error(e, "expected " + list);
  return false;
}

std::string Reader::resolve(const std::string& p) const {
  if (base_dir_.empty() || p.empty() || p.front() == '/') return p;
  return (std::filesystem::path(base_dir_) / p).string();
}

}  // namespace config::detail
