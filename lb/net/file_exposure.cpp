#include "lb/net/file_exposure.h"

#include <sys/stat.h>

#include <cstdio>

#include "lb/net/log.h"

namespace lb::net {

std::string exposure(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return "";
  const mode_t m = st.st_mode & 0777;
  const bool group = m & (S_IRGRP | S_IWGRP);
  const bool others = m & (S_IROTH | S_IWOTH);
  if (!group && !others) return "";
  char buf[96];
  snprintf(buf, sizeof buf, "mode %04o: %s by %s", static_cast<unsigned>(m),
           (m & (S_IRGRP | S_IROTH)) ? "readable" : "writable",
           group && others ? "group and others" : (group ? "group" : "others"));
  return buf;
}

bool warn_if_exposed(const std::string& path, std::string_view what) {
  std::string why = exposure(path);
  if (why.empty()) return false;
  logf(LogLevel::warn, "%.*s %s is %s; restrict it (chmod 600, owned by corral's user)",
       static_cast<int>(what.size()), what.data(), path.c_str(), why.c_str());
  return true;
}

bool is_loopback_host(std::string_view host) {
  return host.starts_with("127.") || host == "::1" || host == "[::1]" || host == "localhost";
}

int warn_exposed(const config::Config& cfg) {
  int n = 0;
  if (!cfg.source.empty() && cfg.source.front() != '<')
    n += warn_if_exposed(cfg.source, "config file");
  if (!cfg.admin.token_file.empty()) n += warn_if_exposed(cfg.admin.token_file, "admin token file");
  for (const config::Pool& p : cfg.pools)
    for (const auto& [name, secret] : p.set_headers)
      if (!secret.file.empty())
        n +=
            warn_if_exposed(secret.file, "secret file of pools." + p.name + ".set_headers." + name);
  for (const config::Listener& l : cfg.listeners)
    if (l.tls) n += warn_if_exposed(l.tls->key, "TLS key of listener " + l.name);
  if (!is_loopback_host(cfg.admin.listen.host) && cfg.admin.token.empty()) {
    logf(LogLevel::warn,
         "admin listener %s is not on loopback and has no admin.token_file: anyone who reaches "
         "it can read /status and /metrics and drain backends",
         cfg.admin.listen.text.c_str());
    ++n;
  }
  return n;
}

}  // namespace lb::net
