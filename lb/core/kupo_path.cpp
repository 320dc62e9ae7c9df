#include "lb/core/kupo_path.h"

namespace lb {

std::string_view kupo_route(std::string_view path) {
  for (;;) {
    while (path.starts_with('/')) path.remove_prefix(1);
    size_t end = path.find('/');
    if (path.substr(0, end) != "v1") return path;
    path = end == std::string_view::npos ? std::string_view{} : path.substr(end);
  }
}

std::string_view kupo_endpoint(std::string_view path, std::string_view* rest) {
  std::string_view r = kupo_route(path);
  size_t end = r.find('/');
  if (rest) *rest = end == std::string_view::npos ? std::string_view{} : r.substr(end + 1);
  return r.substr(0, end);
}

}  // namespace lb
