// log: {format, level, access, access_file} (README "Logs").
#include <filesystem>
#include <optional>

#include "config/loader_impl.h"

namespace config::detail {
namespace {

// The position of e's value in `choices`, or nullopt after an error that quotes the value.
std::optional<size_t> choice(Loader& r, const Entry& e, std::string_view what,
                             std::initializer_list<std::string_view> choices) {
  std::string s = e.v.IsScalar() ? e.v.Scalar() : std::string();
  size_t i = 0;
  std::string list;
  for (std::string_view c : choices) {
    if (s == c) return i;
    list += i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ";
    list += c;
    ++i;
  }
  r.error(e, "'" + s + "' is not a " + std::string(what) + "; expected " + list);
  return std::nullopt;
}

}  // namespace

// With access: true, access_file's directory must exist now (corral creates the file, not
// its directory); the file itself is opened by the access-log writer.
void Loader::parse_log(const Map& root, Config& c) {
  const Entry* e = get(root, "log");
  if (!e) return;
  Map m = as_map(*e, {"format", "level", "access", "access_file"});
  if (!m.ok) return;
  LogSettings& l = c.log;
  if (const Entry* f = get(m, "format"))
    if (auto i = choice(*this, *f, "log format", {"logfmt", "json"}))
      l.format = static_cast<LogFormat>(*i);
  if (const Entry* v = get(m, "level"))
    if (auto i = choice(*this, *v, "log level", {"debug", "info", "warn", "error"}))
      l.level = static_cast<LogLevel>(*i);
  if (const Entry* a = get(m, "access")) read_bool(*a, l.access);
  const Entry* f = get(m, "access_file");
  if (!f || !read_string(*f, l.access_file)) return;
  if (l.access_file.empty()) return error(*f, "access_file is empty; omit it for stderr");
  l.access_file = resolve(l.access_file);
  if (!l.access) return;  // not opened while the access log is off
  std::filesystem::path p(l.access_file);
  std::filesystem::path dir = p.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    error(*f,
          "directory '" + dir.string() + "' of access_file '" + l.access_file + "' does not exist");
  else if (std::filesystem::is_directory(p, ec))
    error(*f, "access_file '" + l.access_file + "' is a directory");
}

}  // namespace config::detail
