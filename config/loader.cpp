// YAML -> config::Config. One pass over the document collects every error it can find
// (unknown keys, type errors, range errors), then cross-checks that need the whole file
// (routes to pools, address clashes) run; errors are finally sorted into file order so
// that an operator reads them top to bottom. yaml-cpp stays inside this file.
#include "config/loader.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include "config/address.h"
#include "config/duration.h"

namespace config {

std::string ConfigError::str() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!key.empty()) s += key + ": ";
  s += message;
  return s;
}

namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();
constexpr uint32_t kMaxWorkers = 256;
// Secrets and tokens are short; a cap keeps a mistaken path (/dev/zero, a log) harmless.
constexpr size_t kMaxSecretFile = 64 * 1024;

// A 1-based source position; line 0 means unknown.
struct Pos {
  int line = 0;
  int column = 0;
};

Pos pos_of(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

// One key/value of a mapping (or one element of a list, with an empty key).
struct Entry {
  std::string key;
  YAML::Node v;
  std::string path;  // dotted path of the value
  Pos key_pos;       // where the key is written
  Pos pos;           // where the value is written (the key's position for an empty value)
};

struct Map {
  bool ok = false;  // the node was a mapping
  std::string path;
  Pos pos;
  std::vector<Entry> entries;  // known keys only, in document order

  const Entry* find(std::string_view key) const {
    for (const Entry& e : entries)
      if (e.key == key) return &e;
    return nullptr;
  }
};

std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "; did you mean 'x'?" for the closest candidate within edit distance 2, else "".
template <class Range>
std::string suggestion(std::string_view word, const Range& candidates) {
  size_t best = 3;
  std::string_view pick;
  for (std::string_view c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best) best = d, pick = c;
  }
  if (pick.empty()) return "";
  return "; did you mean '" + std::string(pick) + "'?";
}

// RFC 9110 token characters (method and header names).
bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Names (listeners, pools, backends) end up in logs, metric labels and /status.
bool is_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

bool is_env_name(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Decimal digits, optionally grouped with '_' (YAML 1.1 style: 1_000_000).
std::optional<uint64_t> parse_uint(std::string_view s) {
  if (s.empty() || s.front() == '_' || s.back() == '_') return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c == '_') continue;
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (kU64Max - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::optional<double> parse_number(std::string_view s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Empty when `path` names a readable regular file, else why not.
std::string check_readable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::strerror(errno);
  if (S_ISDIR(st.st_mode)) return "is a directory";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::strerror(errno);
  std::fclose(f);
  return "";
}

// Reads at most kMaxSecretFile bytes; returns why not on failure.
std::string read_small_file(const std::string& path, std::string& out) {
  if (std::string why = check_readable(path); !why.empty()) return why;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::strerror(errno);
  out.assign(kMaxSecretFile + 1, '\0');
  size_t n = std::fread(out.data(), 1, out.size(), f);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return "read error";
  if (n > kMaxSecretFile) return "larger than 64 KiB";
  out.resize(n);
  return "";
}

bool has_control_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

// A listen address and who declared it, for clash detection across the file.
struct Bind {
  Address address;
  Pos pos;
  std::string path;
};

// A route's pool name, checked once every pool is known.
struct PoolRef {
  std::string name;
  Pos pos;
  std::string path;
};

class Loader {
 public:
  Loader(std::string file, std::string base_dir)
      : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

  LoadResult run(std::string_view yaml) {
    LoadResult r;
    try {
      parse(yaml, r);
    } catch (const std::exception& e) {
      // Nothing above should throw past its own checks; keep the promise of no throw.
      add(Pos{}, "", std::string("internal error while loading: ") + e.what());
    }
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                       return a.line != b.line ? a.line < b.line : a.column < b.column;
                     });
    r.errors = std::move(errors_);
    if (!r.errors.empty()) r.config.reset();
    return r;
  }

  void add(Pos p, std::string key, std::string message) {
    errors_.push_back(ConfigError{file_, p.line, p.column, std::move(key), std::move(message)});
  }

 private:
  void error(const Entry& e, std::string message) { add(e.pos, e.path, std::move(message)); }

  void parse(std::string_view yaml, LoadResult& r) {
    YAML::Node root;
    try {
      root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
      add(pos_of(e.mark), "", "invalid YAML: " + e.msg);
      return;
    }
    Config c;
    c.source = file_;
    // An empty document is an empty mapping: it then fails for want of listeners.
    Entry top{"", root, "", Pos{1, 1}, root.IsNull() ? Pos{1, 1} : pos_of(root.Mark())};
    Map m;
    if (root.IsNull()) {
      m.ok = true;
      m.pos = top.pos;
    } else {
      m = as_map(top, {"workers", "admin", "listeners", "sticky", "pools", "limits", "state_file",
                       "stop_timeout"});
      if (!m.ok) return;
    }
    parse_workers(m, c);
    parse_admin(m, c);
    parse_listeners(m, c);
    parse_sticky(m, c);
    parse_pools(m, c);
    parse_limits(m, c);
    parse_state_file(m, c);
    if (const Entry* e = get(m, "stop_timeout")) read_duration(*e, c.stop_timeout_ms);
    check_pool_refs();
    check_binds();
    if (errors_.empty()) r.config = std::move(c);
  }

  // ---- generic readers ------------------------------------------------------------

  // Checks that `e` is a mapping and every key is known (or any key, for name maps).
  Map as_map(const Entry& e, std::initializer_list<std::string_view> known, bool any_key = false) {
    Map m;
    m.path = e.path;
    m.pos = e.pos;
    if (!e.v.IsMap()) {
      error(e, "expected a mapping");
      return m;
    }
    m.ok = true;
    std::set<std::string> seen;
    for (auto it = e.v.begin(); it != e.v.end(); ++it) {
      // Copies: the iterator hands out a proxy that dies with the expression.
      YAML::Node k = it->first;
      YAML::Node v = it->second;
      if (!k.IsScalar()) {
        add(pos_of(k.Mark()), e.path, "expected a plain key");
        continue;
      }
      Entry child{k.Scalar(), v, join(e.path, k.Scalar()), pos_of(k.Mark()),
                  v.IsNull() ? pos_of(k.Mark()) : pos_of(v.Mark())};
      if (!seen.insert(child.key).second) {
        add(child.key_pos, child.path, "duplicate key '" + child.key + "'");
        continue;
      }
      if (!any_key && std::find(known.begin(), known.end(), child.key) == known.end()) {
        add(child.key_pos, child.path,
            "unknown key '" + child.key + "'" + suggestion(child.key, known));
        continue;
      }
      m.entries.push_back(std::move(child));
    }
    return m;
  }

  // The entry for `key`, or null; a missing required key is an error at the mapping.
  const Entry* get(const Map& m, std::string_view key, bool required = false) {
    if (!m.ok) return nullptr;
    const Entry* e = m.find(key);
    if (!e && required) add(m.pos, join(m.path, key), "required key is missing");
    return e;
  }

  // The elements of a list as entries named path[i]; nullopt (and an error) otherwise.
  std::optional<std::vector<Entry>> as_list(const Entry& e) {
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

  bool read_string(const Entry& e, std::string& out) {
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

  bool read_name(const Entry& e, std::string& out) {
    if (!read_string(e, out)) return false;
    if (!is_name(out)) {
      error(e, "expected a name of letters, digits, '-', '_' or '.'");
      return false;
    }
    return true;
  }

  template <class T>
  bool read_uint(const Entry& e, T& out, uint64_t lo, uint64_t hi) {
    std::optional<uint64_t> v;
    if (e.v.IsScalar()) v = parse_uint(e.v.Scalar());
    if (!v || *v < lo || *v > hi) {
      if (hi >= kU32Max && lo <= 1)
        error(e, lo == 0 ? "expected a non-negative integer" : "expected a positive integer");
      else
        error(e, "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
      return false;
    }
    out = static_cast<T>(*v);
    return true;
  }

  bool read_bool(const Entry& e, bool& out) {
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

  bool read_number(const Entry& e, double& out) {
    std::optional<double> v;
    if (e.v.IsScalar()) v = parse_number(e.v.Scalar());
    if (!v || *v < 0) {
      error(e, "expected a non-negative number");
      return false;
    }
    out = *v;
    return true;
  }

  // Every duration in the schema is a timeout, period or lifetime: zero makes no sense.
  bool read_duration(const Entry& e, uint64_t& out) {
    std::optional<uint64_t> v;
    if (e.v.IsScalar()) v = parse_duration_ms(e.v.Scalar());
    if (!v) {
      error(e, "expected a duration like 250ms, 2s, 5m, 1h or 1d");
      return false;
    }
    if (*v == 0) {
      error(e, "expected a duration greater than zero");
      return false;
    }
    out = *v;
    return true;
  }

  bool read_address(const Entry& e, Address& out, bool listen = false) {
    if (!e.v.IsScalar() || e.v.Scalar().empty()) {
      error(e, "expected an address like 127.0.0.1:1442");
      return false;
    }
    std::string why;
    std::optional<Address> a = parse_address(e.v.Scalar(), &why, listen);
    if (!a) {
      error(e, "invalid address: " + why);
      return false;
    }
    out = std::move(*a);
    return true;
  }

  // One of `choices`; `index` receives its position.
  bool read_choice(const Entry& e, std::initializer_list<std::string_view> choices, size_t& index) {
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

  // Relative paths are relative to the config file, so that a config works whatever
  // the working directory (systemd starts us in /).
  std::string resolve(const std::string& p) const {
    if (base_dir_.empty() || p.empty() || p.front() == '/') return p;
    return (std::filesystem::path(base_dir_) / p).string();
  }

  // ---- sections --------------------------------------------------------------------

  void parse_workers(const Map& root, Config& c) {
    const Entry* e = get(root, "workers");
    if (!e) return;
    uint32_t w = 0;
    if (!read_uint(*e, w, 0, kMaxWorkers)) return;
    if (w == 0) w = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxWorkers);
    c.workers = w;
  }

  void parse_admin(const Map& root, Config& c) {
    const Entry* e = get(root, "admin");
    Pos listen_pos{};
    std::string listen_path = "the default admin.listen";
    if (e) {
      Map m = as_map(*e, {"listen", "token_file"});
      if (const Entry* l = get(m, "listen"); l && read_address(*l, c.admin.listen, true)) {
        listen_pos = l->pos;
        listen_path = l->path;
      }
      if (const Entry* t = get(m, "token_file"); t && read_string(*t, c.admin.token_file)) {
        c.admin.token_file = resolve(c.admin.token_file);
        std::string raw;
        if (std::string why = read_small_file(c.admin.token_file, raw); !why.empty()) {
          error(*t, "cannot read token file '" + c.admin.token_file + "': " + why);
        } else {
          c.admin.token = trim(raw);
          if (c.admin.token.empty())
            error(*t, "token file '" + c.admin.token_file + "' is empty");
          else if (has_control_chars(c.admin.token))
            error(*t, "token file '" + c.admin.token_file + "' holds control characters");
        }
      }
    }
    binds_.push_back(Bind{c.admin.listen, listen_pos, listen_path});
  }

  void parse_listeners(const Map& root, Config& c) {
    const Entry* e = get(root, "listeners");
    if (!e) {
      if (root.ok) add(root.pos, "listeners", "at least one listener is required");
      return;
    }
    auto items = as_list(*e);
    if (!items) return;
    if (items->empty()) error(*e, "at least one listener is required");
    for (const Entry& item : *items) parse_listener(item, c);
  }

  void parse_listener(const Entry& e, Config& c) {
    Map m = as_map(e, {"name", "listen", "tls", "routes"});
    if (!m.ok) return;
    Listener l;
    if (const Entry* n = get(m, "name", true); n && read_name(*n, l.name)) {
      auto [it, fresh] = listener_names_.emplace(l.name, e.path);
      if (!fresh) error(*n, "duplicate listener name '" + l.name + "' (also " + it->second + ")");
    }
    if (const Entry* a = get(m, "listen", true); a && read_address(*a, l.listen, true))
      binds_.push_back(Bind{l.listen, a->pos, a->path});
    if (const Entry* t = get(m, "tls")) {
      Map tm = as_map(*t, {"cert", "key"});
      Tls tls;
      bool ok = tm.ok;
      for (auto [key, out] : {std::pair{"cert", &tls.cert}, std::pair{"key", &tls.key}}) {
        const Entry* f = get(tm, key, true);
        if (!f || !read_string(*f, *out)) {
          ok = false;
          continue;
        }
        *out = resolve(*out);
        if (std::string why = check_readable(*out); !why.empty()) {
          error(*f, "cannot read '" + *out + "': " + why);
          ok = false;
        }
      }
      if (ok) l.tls = tls;
    }
    const Entry* r = get(m, "routes");
    if (!r) {
      add(m.pos, join(m.path, "routes"), "a listener needs at least one route");
    } else if (auto routes = as_list(*r)) {
      if (routes->empty()) error(*r, "a listener needs at least one route");
      std::map<std::string, std::string> prefixes;  // prefix -> first route path
      for (const Entry& re : *routes) parse_route(re, l, prefixes);
    }
    c.listeners.push_back(std::move(l));
  }

  void parse_route(const Entry& e, Listener& l, std::map<std::string, std::string>& prefixes) {
    Map m = as_map(e, {"prefix", "pool", "strip_prefix", "methods", "websocket", "allow_writes"});
    if (!m.ok) return;
    Route r;
    if (const Entry* p = get(m, "prefix", true); p && read_string(*p, r.prefix)) {
      if (r.prefix.front() != '/') {
        error(*p, "a route prefix must start with '/'");
      } else if (std::any_of(r.prefix.begin(), r.prefix.end(), [](char ch) {
                   return static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f;
                 })) {
        error(*p, "a route prefix must not hold spaces or control characters");
      } else if (auto [it, fresh] = prefixes.emplace(r.prefix, e.path); !fresh) {
        // First match wins, so a repeated prefix is a route that can never be taken.
        error(*p, "duplicate prefix '" + r.prefix + "' (" + it->second + " always matches first)");
      }
    }
    if (const Entry* p = get(m, "pool", true); p && read_string(*p, r.pool))
      pool_refs_.push_back(PoolRef{r.pool, p->pos, p->path});
    if (const Entry* b = get(m, "strip_prefix")) read_bool(*b, r.strip_prefix);
    if (const Entry* b = get(m, "websocket")) read_bool(*b, r.websocket);
    if (const Entry* b = get(m, "allow_writes")) read_bool(*b, r.allow_writes);
    if (const Entry* me = get(m, "methods")) {
      if (auto methods = as_list(*me)) {
        // An empty list would silently mean "every method": make the operator say so.
        if (methods->empty()) error(*me, "list at least one method, or omit 'methods' for all");
        for (const Entry& x : *methods) {
          std::string name;
          if (!read_string(x, name)) continue;
          if (!is_token(name)) {
            error(x, "not a valid HTTP method name");
            continue;
          }
          name = upper(std::move(name));
          if (std::find(r.methods.begin(), r.methods.end(), name) == r.methods.end())
            r.methods.push_back(std::move(name));
        }
      }
    }
    l.routes.push_back(std::move(r));
  }

  void parse_sticky(const Map& root, Config& c) {
    const Entry* e = get(root, "sticky");
    bool keys_given = false;
    if (e) {
      Map m = as_map(*e, {"keys", "ttl", "max_sessions", "balance_factor", "hash"});
      if (const Entry* k = get(m, "keys")) {
        keys_given = true;
        if (auto keys = as_list(*k)) {
          if (keys->empty()) error(*k, "list at least one key source, or omit 'keys'");
          for (const Entry& ke : *keys) parse_key_source(ke, c.sticky);
        }
      }
      if (const Entry* t = get(m, "ttl")) read_duration(*t, c.sticky.ttl_ms);
      if (const Entry* s = get(m, "max_sessions")) read_uint(*s, c.sticky.max_sessions, 1, kU64Max);
      if (const Entry* b = get(m, "balance_factor");
          b && read_number(*b, c.sticky.balance_factor)) {
        double f = c.sticky.balance_factor;
        if (f != 0 && f < 1.0) error(*b, "expected 0 (off) or a number >= 1.0");
      }
      if (const Entry* h = get(m, "hash")) {
        size_t i = 0;
        if (read_choice(*h, {"rendezvous", "maglev"}, i))
          c.sticky.hash = i == 0 ? lb::SelectorKind::rendezvous : lb::SelectorKind::maglev;
      }
    }
    if (!keys_given) c.sticky.keys = {lb::ExtractorSpec{lb::KeySource::client_ip, ""}};
  }

  void parse_key_source(const Entry& e, Sticky& s) {
    Map m = as_map(e, {"from", "prefix", "name"});
    if (!m.ok) return;
    const Entry* from = get(m, "from", true);
    size_t i = 0;
    if (!from || !read_choice(*from, {"path", "cookie", "header", "address", "client_ip"}, i))
      return;
    static constexpr lb::KeySource kSources[] = {lb::KeySource::path, lb::KeySource::cookie,
                                                 lb::KeySource::header, lb::KeySource::address,
                                                 lb::KeySource::client_ip};
    lb::ExtractorSpec spec{kSources[i], ""};
    const Entry* prefix = get(m, "prefix");
    const Entry* name = get(m, "name");
    bool takes_prefix = spec.from == lb::KeySource::path;
    bool takes_name = spec.from == lb::KeySource::cookie || spec.from == lb::KeySource::header;
    if (prefix && !takes_prefix) error(*prefix, "'prefix' applies only to from: path");
    if (name && !takes_name) error(*name, "'name' applies only to from: cookie or header");
    if (takes_prefix) {
      spec.arg = "/s/";
      if (prefix && read_string(*prefix, spec.arg)) {
        // The token is the path segment right after the prefix.
        if (spec.arg.front() != '/' || spec.arg.back() != '/' || spec.arg.size() < 2)
          error(*prefix, "a path key prefix must start and end with '/', like /s/");
      }
    }
    if (takes_name) {
      if (!name)
        add(m.pos, join(m.path, "name"), "required key is missing");
      else if (read_string(*name, spec.arg) && !is_token(spec.arg))
        error(*name, "not a valid " + std::string(i == 1 ? "cookie" : "header") + " name");
    }
    s.keys.push_back(std::move(spec));
  }

  void parse_pools(const Map& root, Config& c) {
    const Entry* e = get(root, "pools");
    if (!e) return;
    Map m = as_map(*e, {}, true);
    if (!m.ok) {
      pools_ok_ = false;  // routes cannot be checked against a broken pool map
      return;
    }
    for (const Entry& pe : m.entries) {
      pool_names_.push_back(pe.key);
      if (!is_name(pe.key))
        add(pe.key_pos, pe.path, "expected a pool name of letters, digits, '-', '_' or '.'");
      parse_pool(pe, c);
    }
  }

  void parse_pool(const Entry& e, Config& c) {
    Pool p;
    p.name = e.key;
    Map m =
        as_map(e, {"kind", "backends", "health", "eject", "timeouts", "set_headers", "rate_limit"});
    if (!m.ok) {
      c.pools.push_back(std::move(p));
      return;
    }
    if (const Entry* k = get(m, "kind", true)) {
      size_t i = 0;
      if (read_choice(*k, {"kupo", "ogmios", "blockfrost", "http"}, i))
        p.kind = static_cast<PoolKind>(i);
    }
    const Entry* b = get(m, "backends");
    if (!b) {
      add(m.pos, join(m.path, "backends"), "a pool needs at least one backend");
    } else if (auto backends = as_list(*b)) {
      if (backends->empty()) error(*b, "a pool needs at least one backend");
      for (const Entry& be : *backends) parse_backend(be, p);
    }
    if (const Entry* h = get(m, "health")) parse_health(*h, p.health);
    if (const Entry* x = get(m, "eject")) parse_eject(*x, p.eject);
    if (const Entry* t = get(m, "timeouts")) {
      Map tm = as_map(*t, {"connect", "response"});
      if (const Entry* v = get(tm, "connect")) read_duration(*v, p.timeouts.connect_ms);
      if (const Entry* v = get(tm, "response")) read_duration(*v, p.timeouts.response_ms);
    }
    if (const Entry* s = get(m, "set_headers")) parse_set_headers(*s, p);
    if (const Entry* r = get(m, "rate_limit")) {
      Map rm = as_map(*r, {"rps", "burst", "daily"});
      if (rm.ok) {
        RateLimit rl;
        if (const Entry* v = get(rm, "rps")) read_number(*v, rl.rps);
        const Entry* burst = get(rm, "burst");
        if (burst) {
          if (read_number(*burst, rl.burst) && rl.rps > 0 && rl.burst < 1)
            error(*burst, "must be at least 1 when rps is set");
        } else {
          rl.burst = std::max(rl.rps, 1.0);  // a bucket must hold at least one request
        }
        if (const Entry* v = get(rm, "daily")) read_uint(*v, rl.daily, 0, kU64Max);
        p.rate_limit = rl;
      }
    }
    c.pools.push_back(std::move(p));
  }

  void parse_backend(const Entry& e, Pool& p) {
    Map m = as_map(e, {"name", "address", "weight", "tls"});
    if (!m.ok) return;
    Backend b;
    if (const Entry* n = get(m, "name", true); n && read_name(*n, b.name)) {
      // Backend names are global identities: pins and metrics key on them.
      auto [it, fresh] = backend_names_.emplace(b.name, e.path);
      if (!fresh) error(*n, "duplicate backend name '" + b.name + "' (also " + it->second + ")");
    }
    if (const Entry* a = get(m, "address", true)) read_address(*a, b.address);
    if (const Entry* w = get(m, "weight")) read_uint(*w, b.weight, 1, 1000);
    if (const Entry* t = get(m, "tls")) read_bool(*t, b.tls);
    p.backends.push_back(std::move(b));
  }

  void parse_health(const Entry& e, Health& h) {
    Map m = as_map(e, {"interval", "timeout", "rise", "fall", "max_lag_slots", "stale_after",
                       "path", "expect_status"});
    if (!m.ok) return;
    const Entry* interval = get(m, "interval");
    const Entry* timeout = get(m, "timeout");
    bool ok = true;
    if (interval) ok &= read_duration(*interval, h.interval_ms);
    if (timeout) ok &= read_duration(*timeout, h.timeout_ms);
    // A probe that may outlive its period would overlap the next one.
    if (ok && (interval || timeout) && h.timeout_ms >= h.interval_ms) {
      const Entry& at = timeout ? *timeout : *interval;
      error(at, "health.timeout (" + std::to_string(h.timeout_ms) +
                    "ms) must be less than health.interval (" + std::to_string(h.interval_ms) +
                    "ms)");
    }
    if (const Entry* v = get(m, "rise")) read_uint(*v, h.rise, 1, kU32Max);
    if (const Entry* v = get(m, "fall")) read_uint(*v, h.fall, 1, kU32Max);
    if (const Entry* v = get(m, "max_lag_slots")) read_uint(*v, h.max_lag_slots, 0, kU64Max);
    if (const Entry* v = get(m, "stale_after")) read_duration(*v, h.stale_after_ms);
    if (const Entry* v = get(m, "path"); v && read_string(*v, h.path)) {
      if (h.path.front() != '/' || has_control_chars(h.path) ||
          h.path.find(' ') != std::string::npos)
        error(*v, "a health path must start with '/' and hold no spaces");
    }
    if (const Entry* v = get(m, "expect_status")) read_uint(*v, h.expect_status, 100, 599);
  }

  void parse_eject(const Entry& e, Eject& x) {
    Map m = as_map(e, {"consecutive_503", "base_time", "max_time", "max_percent"});
    if (!m.ok) return;
    if (const Entry* v = get(m, "consecutive_503")) read_uint(*v, x.consecutive_503, 1, kU32Max);
    const Entry* base = get(m, "base_time");
    const Entry* max = get(m, "max_time");
    bool ok = true;
    if (base) ok &= read_duration(*base, x.base_time_ms);
    if (max) ok &= read_duration(*max, x.max_time_ms);
    if (ok && (base || max) && x.base_time_ms > x.max_time_ms)
      error(base ? *base : *max, "eject.base_time must not exceed eject.max_time");
    if (const Entry* v = get(m, "max_percent")) read_uint(*v, x.max_percent, 0, 100);
  }

  // Header values come from the environment or a file, resolved now so that a missing
  // secret fails the load (and a reload) instead of the first request. Error messages
  // name the variable or file, never the value.
  void parse_set_headers(const Entry& e, Pool& p) {
    Map m = as_map(e, {}, true);
    std::vector<std::string> names;  // header names are case-insensitive
    for (const Entry& h : m.entries) {
      if (!is_token(h.key)) {
        add(h.key_pos, h.path, "not a valid header name");
        continue;
      }
      for (std::string_view framing :
           {"content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}) {
        if (iequals(h.key, framing)) {
          add(h.key_pos, h.path, "'" + h.key + "' controls message framing and cannot be set");
          break;
        }
      }
      if (std::any_of(names.begin(), names.end(), [&](const auto& n) { return iequals(n, h.key); }))
        add(h.key_pos, h.path, "header '" + h.key + "' is set twice");
      names.push_back(h.key);
      if (!h.v.IsMap()) {
        // Do not echo the value: this is exactly where someone pastes a key.
        error(h, "expected {env: VAR} or {file: PATH}; secrets are not written in the config");
        continue;
      }
      Map sm = as_map(h, {"env", "file"});
      const Entry* env = get(sm, "env");
      const Entry* file = get(sm, "file");
      if (env && file) {
        error(h, "give either env or file, not both");
        continue;
      }
      if (!env && !file) {
        if (sm.entries.size() == h.v.size()) error(h, "expected {env: VAR} or {file: PATH}");
        continue;
      }
      Secret s;
      std::string value;
      if (env) {
        if (!read_string(*env, s.env)) continue;
        if (!is_env_name(s.env)) {
          error(*env, "not a valid environment variable name");
          continue;
        }
        const char* v = std::getenv(s.env.c_str());
        if (!v) {
          error(*env, "environment variable '" + s.env + "' is not set");
          continue;
        }
        value = trim(v);
        if (value.empty()) {
          error(*env, "environment variable '" + s.env + "' is empty");
          continue;
        }
      } else {
        if (!read_string(*file, s.file)) continue;
        s.file = resolve(s.file);
        std::string raw;
        if (std::string why = read_small_file(s.file, raw); !why.empty()) {
          error(*file, "cannot read '" + s.file + "': " + why);
          continue;
        }
        value = trim(raw);
        if (value.empty()) {
          error(*file, "file '" + s.file + "' is empty");
          continue;
        }
      }
      if (has_control_chars(value)) {
        error(env ? *env : *file, "the secret holds a line break or control character");
        continue;
      }
      s.value = std::move(value);
      p.set_headers.emplace_back(h.key, std::move(s));
    }
  }

  void parse_limits(const Map& root, Config& c) {
    const Entry* e = get(root, "limits");
    if (!e) return;
    Map m = as_map(*e, {"max_connections", "max_header_bytes", "max_body_bytes", "header_timeout",
                        "idle_timeout"});
    Limits& l = c.limits;
    if (const Entry* v = get(m, "max_connections")) read_uint(*v, l.max_connections, 1, kU64Max);
    if (const Entry* v = get(m, "max_header_bytes"))
      read_uint(*v, l.max_header_bytes, 1024, 1024 * 1024);
    if (const Entry* v = get(m, "max_body_bytes")) read_uint(*v, l.max_body_bytes, 1, kU64Max);
    if (const Entry* v = get(m, "header_timeout")) read_duration(*v, l.header_timeout_ms);
    if (const Entry* v = get(m, "idle_timeout")) read_duration(*v, l.idle_timeout_ms);
  }

  // The file itself may not exist yet (first start), but its directory must: otherwise
  // the save at stop would fail after the pins are gone, far from the cause.
  void parse_state_file(const Map& root, Config& c) {
    const Entry* e = get(root, "state_file");
    if (!e || !read_string(*e, c.state_file)) return;
    c.state_file = resolve(c.state_file);
    std::filesystem::path p(c.state_file);
    std::filesystem::path dir = p.parent_path();
    if (dir.empty()) dir = ".";
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      error(*e,
            "directory '" + dir.string() + "' of state file '" + c.state_file + "' does not exist");
    } else if (std::filesystem::is_directory(p, ec)) {
      error(*e, "state file '" + c.state_file + "' is a directory");
    }
  }

  // ---- whole-file checks -----------------------------------------------------------

  void check_pool_refs() {
    if (!pools_ok_) return;
    for (const PoolRef& r : pool_refs_) {
      if (std::find(pool_names_.begin(), pool_names_.end(), r.name) != pool_names_.end()) continue;
      add(r.pos, r.path,
          "route to unknown pool '" + r.name + "'" + suggestion(r.name, pool_names_));
    }
  }

  // Two sockets on one address would fail to bind or, with SO_REUSEPORT, silently share
  // traffic; report the later declaration against the earlier one.
  void check_binds() {
    std::stable_sort(binds_.begin(), binds_.end(), [](const Bind& a, const Bind& b) {
      return a.pos.line != b.pos.line ? a.pos.line < b.pos.line : a.pos.column < b.pos.column;
    });
    for (size_t j = 0; j < binds_.size(); ++j) {
      for (size_t i = 0; i < j; ++i) {
        if (!listen_addresses_conflict(binds_[i].address, binds_[j].address)) continue;
        add(binds_[j].pos, binds_[j].path,
            "listen address " + binds_[j].address.text + " clashes with " + binds_[i].path + " (" +
                binds_[i].address.text + ")");
        break;
      }
    }
  }

  std::string file_;
  std::string base_dir_;
  std::vector<ConfigError> errors_;
  std::map<std::string, std::string> listener_names_;  // name -> first path
  std::map<std::string, std::string> backend_names_;   // name -> first path
  std::vector<std::string> pool_names_;
  bool pools_ok_ = true;
  std::vector<PoolRef> pool_refs_;
  std::vector<Bind> binds_;
};

}  // namespace

LoadResult load_string(std::string_view yaml, const std::string& source_name) {
  try {
    return Loader(source_name, "").run(yaml);
  } catch (...) {  // allocation failure while reporting: still never throw
    LoadResult r;
    r.errors.push_back(ConfigError{source_name, 0, 0, "", "internal error while loading"});
    return r;
  }
}

LoadResult load_file(const std::string& path) {
  try {
    std::string text;
    std::string why = check_readable(path);
    if (why.empty()) {
      std::FILE* f = std::fopen(path.c_str(), "rb");
      if (!f) {
        why = std::strerror(errno);
      } else {
        char buf[65536];
        size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
        if (std::ferror(f)) why = "read error";
        std::fclose(f);
      }
    }
    if (!why.empty()) {
      LoadResult r;
      r.errors.push_back(ConfigError{path, 0, 0, "", "cannot read config file: " + why});
      return r;
    }
    std::string dir = std::filesystem::path(path).parent_path().string();
    return Loader(path, dir).run(text);
  } catch (...) {
    LoadResult r;
    r.errors.push_back(ConfigError{path, 0, 0, "", "internal error while loading"});
    return r;
  }
}

}  // namespace config
