#pragma once
// What /metrics reports about the process and its disks, with Prometheus' standard
// process_* meanings: resident memory, CPU time, start time (from /proc/self/stat and the
// clocks), open and allowed file descriptors (/proc/self/fd, getrlimit), and filesystem
// space (statvfs). Nothing outside /proc/self is read: the unit's ProcSubset=pid hides the
// rest of /proc (/proc/stat among it). The parser is pure so that it can be tested on fixed
// text.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lb::admin {

// The fields of /proc/self/stat that /metrics needs, in the kernel's units.
struct ProcStat {
  uint64_t utime_ticks = 0;      // field 14: user CPU time, clock ticks
  uint64_t stime_ticks = 0;      // field 15: system CPU time, clock ticks
  uint64_t starttime_ticks = 0;  // field 22: start, clock ticks after boot
  uint64_t rss_pages = 0;        // field 24: resident set, pages
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) is in parentheses and
// may hold spaces and ')', so fields are counted after its last ')'. nullopt if short.
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// The boot time, seconds since the epoch: CLOCK_REALTIME - CLOCK_BOOTTIME, the same
// difference the kernel reports as /proc/stat's "btime" (which ProcSubset=pid hides), to a
// fraction of a second. nullopt if a clock cannot be read.
std::optional<double> boot_time_seconds();

struct ProcessMetrics {
  uint64_t resident_bytes = 0;
  double cpu_seconds = 0;         // user + system
  double start_time_seconds = 0;  // since the epoch; 0 if unknown
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;  // the soft RLIMIT_NOFILE
};

// Reads this process's numbers now; a field that cannot be read stays 0.
ProcessMetrics read_process_metrics();

// A filesystem's space in bytes: free = available to unprivileged users (f_bavail).
struct DiskSpace {
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};

// statvfs of `path`; nullopt if it fails (the path is gone since the config was loaded).
std::optional<DiskSpace> disk_space(const std::string& path);

}  // namespace lb::admin
