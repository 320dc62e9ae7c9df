#include "lb/net/sd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstring>
#include <ctime>

#include "lb/net/log.h"

namespace lb::net {
namespace {

// Sends one notification; a failure (the manager went away) is worth one log line, never
// more than a warning: serving matters more than telling systemd about it.
void send(const std::string& msg) {
  int rc = sd_notify(0, msg.c_str());
  if (rc < 0) log_limited("sd_notify: %s", std::strerror(-rc));
}

}  // namespace

std::string notify_message(const std::string& state, const std::string& status) {
  std::string out = state;
  if (status.empty()) return out;
  out += "\nSTATUS=";
  for (char c : status) out += (c == '\n' || c == '\r') ? ' ' : c;
  return out;
}

void notify_ready(const std::string& status) { send(notify_message("READY=1", status)); }

void notify_reloading(const std::string& status) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const unsigned long long usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
                                  static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  send(notify_message("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec), status));
}

void notify_stopping(const std::string& status, uint64_t need_ms) {
  send(notify_message("STOPPING=1\nEXTEND_TIMEOUT_USEC=" + std::to_string(need_ms * 1000), status));
}

void notify_extend(uint64_t need_ms) {
  send("EXTEND_TIMEOUT_USEC=" + std::to_string(need_ms * 1000));
}

}  // namespace lb::net
