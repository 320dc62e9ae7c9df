#include "lb/net/log_config.h"

#include "lb/net/access_log.h"
#include "lb/net/log.h"

namespace lb::net {

void apply_log_config(const config::LogSettings& s) {
  LogFormat format = s.format == config::LogFormat::json ? LogFormat::json : LogFormat::logfmt;
  set_log_format(format);
  set_log_level(static_cast<LogLevel>(static_cast<int>(s.level)));
  // The writer thread starts the first time the access log is on; turning it off later
  // keeps the thread idle rather than joining it on the control thread.
  if (s.access || access_log_enabled()) access_log_configure({s.access, s.access_file, format});
}

}  // namespace lb::net
