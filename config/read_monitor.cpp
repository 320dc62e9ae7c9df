// monitor: {disk_paths: [...]}: the filesystems /metrics reports free and total bytes of
// (corral_disk_free_bytes / corral_disk_total_bytes).
#include <filesystem>

#include "config/loader_impl.h"

namespace config::detail {

// Each path must exist now: a typo would otherwise show up as a missing series on a
// dashboard long after the config was accepted. Without the key, the state file's
// directory is watched (the pins live there); `disk_paths: []` watches nothing.
// `monitor: {}` (key present, disk_paths absent) gets the same default as no key at all.
void Loader::parse_monitor(const Map& root, Config& c) {
  const Entry* e = get(root, "monitor");
  Map m;  // outlives `paths`, which points into it
  if (e) m = as_map(*e, {"disk_paths"});
  const Entry* paths = e ? get(m, "disk_paths") : nullptr;
  if (!paths) {
    if (!c.state_file.empty()) {
      std::filesystem::path dir = std::filesystem::path(c.state_file).parent_path();
      c.monitor.disk_paths.push_back(dir.empty() ? std::string(".") : dir.string());
    }
    return;
  }
  std::optional<std::vector<Entry>> list = as_list(*paths);
  if (!list) return;
  for (const Entry& p : *list) {
    std::string path;
    if (!read_string(p, path)) continue;
    if (path.empty()) {
      error(p, "expected a path");
      continue;
    }
    path = resolve(path);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      error(p, "path '" + path + "' does not exist");
      continue;
    }
    bool dup = false;
    for (const std::string& q : c.monitor.disk_paths) dup = dup || q == path;
    if (dup)
      error(p, "path '" + path + "' is listed twice");
    else
      c.monitor.disk_paths.push_back(path);
  }
}

}  // namespace config::detail
