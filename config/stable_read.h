#pragma once
// Reading a config file that may be being written (issue 9 item 13): a SIGHUP that lands
// while an editor or a deploy tool is half way through must not load whatever valid YAML
// the cut leaves. The file is read until two reads `gap_ms` apart agree on size, mtime and
// content hash; writing to a temporary file and renaming it over the config avoids the
// wait altogether (README "Reload").
#include <cstdint>
#include <functional>
#include <string>

namespace config {

struct StableRead {
  std::string body;   // the agreed content, when error is empty
  std::string error;  // unreadable, or still changing after every try
  int reads = 0;      // reads made
};

// Reads `path` until two consecutive reads, `gap_ms` apart, agree; gives up after
// `max_reads` reads. `sleep_ms` waits between reads (a test may change the file there).
// A file that is not a regular file (a pipe, /dev/stdin) is read once: it cannot be read
// again to compare.
StableRead read_stable(const std::string& path, int max_reads, uint64_t gap_ms,
                       const std::function<void(uint64_t)>& sleep_ms);

}  // namespace config
