#include "lb/admin/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

namespace lb::admin {
namespace {

// The whole of a small /proc file ("" if it cannot be read).
std::string read_proc(const char* path) {
  std::string out;
  FILE* f = fopen(path, "re");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  fclose(f);
  return out;
}

// The next space-separated field of `s` from `pos` as an unsigned number; false at the end
// or for a field that is not one (a negative or a letter), which is then skipped anyway.
bool next_field(std::string_view s, size_t& pos, uint64_t& out, bool& numeric) {
  while (pos < s.size() && s[pos] == ' ') ++pos;
  if (pos >= s.size() || s[pos] == '\n') return false;
  size_t end = s.find_first_of(" \n", pos);
  if (end == std::string_view::npos) end = s.size();
  auto [p, ec] = std::from_chars(s.data() + pos, s.data() + end, out);
  numeric = ec == std::errc() && p == s.data() + end;
  pos = end;
  return true;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  // Field 3 (state) is the first after the name.
  size_t pos = close + 1;
  ProcStat st;
  int field = 3;
  bool have_rss = false;
  uint64_t v = 0;
  bool numeric = false;
  while (field <= 24 && next_field(text, pos, v, numeric)) {
    if (field == 14 || field == 15 || field == 22 || field == 24) {
      if (!numeric) return std::nullopt;
      (field == 14   ? st.utime_ticks
       : field == 15 ? st.stime_ticks
       : field == 22 ? st.starttime_ticks
                     : st.rss_pages) = v;
      have_rss = field == 24;
    }
    ++field;
  }
  if (!have_rss) return std::nullopt;
  return st;
}

std::optional<double> boot_time_seconds() {
  timespec real{}, boot{};
  if (clock_gettime(CLOCK_REALTIME, &real) != 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
    return std::nullopt;
  const auto secs = [](const timespec& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
  };
  return secs(real) - secs(boot);
}

ProcessMetrics read_process_metrics() {
  ProcessMetrics m;
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  if (std::optional<ProcStat> st = parse_proc_stat(read_proc("/proc/self/stat")); st && ticks > 0) {
    m.resident_bytes = st->rss_pages * static_cast<uint64_t>(page > 0 ? page : 4096);
    m.cpu_seconds = static_cast<double>(st->utime_ticks + st->stime_ticks) / ticks;
    // starttime counts from boot on CLOCK_BOOTTIME (suspend included), as boot_time_seconds.
    if (std::optional<double> boot = boot_time_seconds())
      m.start_time_seconds =
          *boot + static_cast<double>(st->starttime_ticks) / static_cast<double>(ticks);
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    uint64_t n = 0;
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
    m.open_fds = n > 0 ? n - 1 : 0;  // the directory's own descriptor is not ours to report
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    m.max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(rl.rlim_cur);
  return m;
}

std::optional<DiskSpace> disk_space(const std::string& path) {
  struct statvfs s {};
  if (statvfs(path.c_str(), &s) != 0) return std::nullopt;
  const uint64_t unit = s.f_frsize ? s.f_frsize : s.f_bsize;
  return DiskSpace{static_cast<uint64_t>(s.f_bavail) * unit,
                   static_cast<uint64_t>(s.f_blocks) * unit};
}

}  // namespace lb::admin
