// YAML -> config::Config. One pass over the document collects every error it can find
// (unknown keys, keys not implemented yet, type errors, range errors), then cross-checks
// that need the whole file (routes to pools, address clashes) run; errors are finally
// sorted into file order so that an operator reads them top to bottom. This file holds
// the entry points, the top-level keys and the whole-file checks; each section has its
// own read_*.cpp, and yaml_reader.h the typed readers.
#include "config/loader.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "config/address.h"
#include "config/loader_impl.h"
#include "config/text.h"
#include "config/yaml_source.h"

namespace config {

std::string ConfigError::str() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!key.empty()) s += key + ": ";
  s += message;
  return s;
}

namespace detail {

namespace {

constexpr uint32_t kMaxWorkers = 256;

}  // namespace

LoadResult Loader::run(std::string_view yaml) {
  LoadResult r;
  set_source(yaml);
  try {
    parse(yaml, r);
  } catch (const YAML::Exception& e) {
    // A conversion yaml-cpp refused (bad conversion): still located, still explained.
    add(pos_of(e.mark), "", "invalid YAML: " + explain_yaml_error(e.msg));
  } catch (const std::exception& e) {
    // Nothing above should throw past its own checks; keep the promise of no throw.
    add(Pos{}, "", std::string("internal error while loading: ") + e.what());
  }
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  r.errors = std::move(errors_);
  if (!r.errors.empty()) r.config.reset();
  return r;
}

// A tab in indentation is refused even when yaml-cpp would accept the file: YAML forbids
// it, and where yaml-cpp fails it names a symptom lines away ("end of map not found").
// When the parse fails, an unquoted IPv6 address is the likely cause if there is one;
// otherwise yaml-cpp's message is explained and the line it points at echoed.
bool Loader::parse_document(std::string_view yaml, YAML::Node& root) {
  if (std::optional<SourceIssue> tab = find_tab_indent(yaml)) {
    add(Pos{tab->line, tab->column}, "", tab->message);
    return false;
  }
  try {
    root = YAML::Load(std::string(yaml));
    return true;
  } catch (const YAML::Exception& e) {
    std::vector<SourceIssue> v6 = find_unquoted_ipv6(yaml);
    for (const SourceIssue& i : v6) add(Pos{i.line, i.column}, i.key, i.message);
    if (!v6.empty()) return false;
    Pos p = pos_of(e.mark);
    std::string message = "invalid YAML: " + explain_yaml_error(e.msg);
    if (std::string line = source_line(yaml, p.line); !line.empty())
      message += "; the line reads " + text::quoted(line);
    add(p, "", message);
    return false;
  }
}

void Loader::parse(std::string_view yaml, LoadResult& r) {
  YAML::Node root;
  if (!parse_document(yaml, root)) return;
  Config c;
  c.source = file_;
  // An empty document is an empty mapping: it then fails for want of listeners.
  Entry top{"", root, "", Pos{1, 1}, root.IsNull() ? Pos{1, 1} : pos_of(root.Mark())};
  Map m;
  if (root.IsNull()) {
    m.ok = true;
    m.pos = top.pos;
  } else {
    m = as_map(top,
               {"workers", "admin", "listeners", "sticky", "pools", "limits", "state_file",
                "stop_timeout", "monitor", "log"},
               {});
    if (!m.ok) return;
  }
  parse_workers(m, c);
  parse_admin(m, c);
  parse_listeners(m, c);
  parse_sticky(m, c);
  parse_pools(m, c);
  parse_limits(m, c);
  parse_state_file(m, c);
  parse_monitor(m, c);
  parse_log(m, c);
  if (const Entry* e = get(m, "stop_timeout")) read_duration(*e, c.stop_timeout_ms);
  check_pool_refs(c);
  check_daily_state_file(c);
  check_binds();
  if (errors_.empty()) r.config = std::move(c);
}

void Loader::parse_workers(const Map& root, Config& c) {
  const Entry* e = get(root, "workers");
  if (!e) return;
  uint32_t w = 0;
  if (!read_uint(*e, w, 0, kMaxWorkers)) return;
  if (w == 0) w = std::clamp(std::thread::hardware_concurrency(), 1u, kMaxWorkers);
  c.workers = w;
}

void Loader::parse_admin(const Map& root, Config& c) {
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
      if (std::string why = text::read_small_file(c.admin.token_file, raw); !why.empty()) {
        error(*t, "cannot read token file '" + c.admin.token_file + "': " + why);
      } else {
        c.admin.token = text::trim(raw);
        if (c.admin.token.empty())
          error(*t, "token file '" + c.admin.token_file + "' is empty");
        else if (text::has_control_chars(c.admin.token))
          error(*t, "token file '" + c.admin.token_file + "' holds control characters");
      }
    }
  }
  binds_.push_back(Bind{c.admin.listen, listen_pos, listen_path});
}

void Loader::parse_limits(const Map& root, Config& c) {
  const Entry* e = get(root, "limits");
  if (!e) return;
  Map m = as_map(*e, {"max_connections", "max_header_bytes", "max_body_bytes", "header_timeout",
                      "idle_timeout", "body_timeout", "send_timeout", "buffer_bytes",
                      "max_buffer_memory", "tunnel_idle_timeout"});
  Limits& l = c.limits;
  if (const Entry* v = get(m, "max_connections")) read_uint(*v, l.max_connections, 1, kU64Max);
  const Entry* header = get(m, "max_header_bytes");
  bool header_ok = !header || read_size(*header, l.max_header_bytes, 1024, 1024 * 1024);
  if (const Entry* v = get(m, "max_body_bytes")) read_size(*v, l.max_body_bytes, 1, kU64Max);
  if (const Entry* v = get(m, "header_timeout")) read_duration(*v, l.header_timeout_ms);
  if (const Entry* v = get(m, "idle_timeout")) read_duration(*v, l.idle_timeout_ms);
  if (const Entry* v = get(m, "body_timeout")) read_duration(*v, l.body_timeout_ms);
  if (const Entry* v = get(m, "send_timeout")) read_duration(*v, l.send_timeout_ms);
  if (const Entry* v = get(m, "tunnel_idle_timeout")) read_duration(*v, l.tunnel_idle_timeout_ms);

  // A request head is parsed in place, so it must fit one buffer. Left out, the buffer
  // follows a raised header limit rather than turning a working file into an error.
  const Entry* buffer = get(m, "buffer_bytes");
  bool buffer_ok = true;
  if (buffer) {
    buffer_ok = read_size(*buffer, l.buffer_bytes, 1024, 64ull * 1024 * 1024);
    if (buffer_ok && header_ok && l.buffer_bytes < l.max_header_bytes) {
      error(*buffer, std::to_string(l.buffer_bytes) + " is below limits.max_header_bytes (" +
                         std::to_string(l.max_header_bytes) +
                         "): a request head must fit one buffer");
      buffer_ok = false;
    }
  } else if (header_ok) {
    l.buffer_bytes = std::max(l.buffer_bytes, l.max_header_bytes);
  }
  const Entry* memory = get(m, "max_buffer_memory");
  if (memory && read_size(*memory, l.max_buffer_memory, 1, kU64Max) && buffer_ok &&
      l.max_buffer_memory < l.buffer_bytes) {
    error(*memory, std::to_string(l.max_buffer_memory) + " is below limits.buffer_bytes (" +
                       std::to_string(l.buffer_bytes) + "): not even one buffer would fit");
  }  // buffer_bytes is capped at 64 MiB, far below the default max_buffer_memory
}

// The file itself may not exist yet (first start), but its directory must: otherwise
// the save at stop would fail after the pins are gone, far from the cause.
void Loader::parse_state_file(const Map& root, Config& c) {
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

// Routes name pools that may be defined further down; checked once all are known. Kupo's
// write endpoints are the only thing allow_writes opens, so on another kind it would be a
// key that does nothing.
void Loader::check_pool_refs(const Config& c) {
  if (!pools_ok_) return;
  for (const PoolRef& r : pool_refs_) {
    if (std::find(pool_names_.begin(), pool_names_.end(), r.name) == pool_names_.end()) {
      add(r.pos, r.path,
          "route to unknown pool '" + r.name + "'" + text::suggestion(r.name, pool_names_));
      continue;
    }
    const Pool* p = c.find_pool(r.name);
    if (r.allow_writes && p && p->kind != PoolKind::kupo)
      error(*r.allow_writes,
            "allow_writes applies only to routes to a kind: kupo pool ('" + r.name + "' is not)");
  }
}

// Two sockets on one address would fail to bind or, with SO_REUSEPORT, silently share
// traffic; report the later declaration against the earlier one.
void Loader::check_binds() {
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

}  // namespace detail

LoadResult load_string(std::string_view yaml, const std::string& source_name) {
  try {
    return detail::Loader(source_name, "").run(yaml);
  } catch (...) {  // allocation failure while reporting: still never throw
    LoadResult r;
    r.errors.push_back(ConfigError{source_name, 0, 0, "", "internal error while loading"});
    return r;
  }
}

LoadResult load_file_text(const std::string& path, std::string_view body) {
  try {
    return detail::Loader(path, std::filesystem::path(path).parent_path().string()).run(body);
  } catch (...) {
    LoadResult r;
    r.errors.push_back(ConfigError{path, 0, 0, "", "internal error while loading"});
    return r;
  }
}

LoadResult load_file(const std::string& path) {
  try {
    std::string body;
    std::string why = text::check_readable(path);
    if (why.empty()) {
      std::FILE* f = std::fopen(path.c_str(), "rb");
      if (!f) {
        why = std::strerror(errno);
      } else {
        char buf[65536];
        size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) body.append(buf, n);
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
    return detail::Loader(path, dir).run(body);
  } catch (...) {
    LoadResult r;
    r.errors.push_back(ConfigError{path, 0, 0, "", "internal error while loading"});
    return r;
  }
}

}  // namespace config
