// The pure pieces of /metrics: /proc parsers, seconds text for histogram bounds, the
// exposition writer's float lines, and disk space against statvfs' own numbers.
#include <doctest.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <string>

#include "lb/admin/exposition.h"
#include "lb/admin/process_metrics.h"
#include "lb/net/backend_stats.h"

using namespace lb::admin;

namespace {
// The wall clock while this process is being set up, before main (dynamic initialisation).
const double g_wall_at_static_init = [] {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}();
}  // namespace

TEST_CASE("seconds_text: exact decimal seconds without trailing zeros") {
  CHECK(seconds_text(0) == "0");
  CHECK(seconds_text(100) == "0.0001");
  CHECK(seconds_text(250) == "0.00025");
  CHECK(seconds_text(1000) == "0.001");
  CHECK(seconds_text(2500000) == "2.5");
  CHECK(seconds_text(30000000) == "30");
  CHECK(seconds_text(1) == "0.000001");
  CHECK(seconds_text(123456789) == "123.456789");
  // Every bucket bound is the agreed "le" text.
  const char* agreed[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                          "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                          "1",      "2.5",     "5",      "10",    "30"};
  REQUIRE(std::size(agreed) == lb::net::kLatencyBucketsUs.size());
  for (size_t i = 0; i < std::size(agreed); ++i)
    CHECK(seconds_text(lb::net::kLatencyBucketsUs[i]) == agreed[i]);
}

TEST_CASE("parse_proc_stat: fields counted after the last parenthesis of the name") {
  // A name with a space and a ')' in it, as a process may choose.
  std::string text =
      "4242 (cor ral) x) S 1 4242 4242 0 -1 4194560 1500 0 0 0 "
      "250 75 0 0 20 0 3 0 123456 104857600 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 "
      "0 17 1 0 0 0 0 0\n";
  std::optional<ProcStat> st = parse_proc_stat(text);
  REQUIRE(st.has_value());
  CHECK(st->utime_ticks == 250);
  CHECK(st->stime_ticks == 75);
  CHECK(st->starttime_ticks == 123456);
  CHECK(st->rss_pages == 2048);
  CHECK_FALSE(parse_proc_stat("4242 (corral) S 1 2 3").has_value());
  CHECK_FALSE(parse_proc_stat("no parenthesis at all").has_value());
  CHECK_FALSE(parse_proc_stat("").has_value());
}

TEST_CASE("boot_time_seconds: the kernel's own btime, without reading /proc/stat") {
  std::optional<double> boot = boot_time_seconds();
  REQUIRE(boot.has_value());
  CHECK(*boot > 0);
  CHECK(*boot < static_cast<double>(time(nullptr)));
  // Where /proc/stat is visible (not under the unit's ProcSubset=pid), its btime is the
  // same clock difference truncated to whole seconds.
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with("btime ")) {
      const double btime = std::stod(line.substr(6));
      CHECK(*boot >= btime - 1);
      CHECK(*boot < btime + 2);
    }
}

TEST_CASE("read_process_metrics: this test process's own numbers are sane") {
  ProcessMetrics m = read_process_metrics();
  CHECK(m.resident_bytes > 1024 * 1024);
  CHECK(m.open_fds >= 3);  // stdin, stdout, stderr
  CHECK(m.max_fds >= m.open_fds);
  CHECK(m.cpu_seconds >= 0);
  // This test process started when its static objects were made: the start time is that
  // wall-clock moment (not 0, not boot time, not now), to the clock tick and a margin.
  CHECK(m.start_time_seconds > 0);
  CHECK(m.start_time_seconds > g_wall_at_static_init - 3);
  CHECK(m.start_time_seconds < g_wall_at_static_init + 1);
}

TEST_CASE("disk_space: free and total as statvfs reports them; nullopt for a missing path") {
  std::optional<DiskSpace> d = disk_space("/tmp");
  REQUIRE(d.has_value());
  struct statvfs s {};
  REQUIRE(statvfs("/tmp", &s) == 0);
  CHECK(d->total_bytes == static_cast<uint64_t>(s.f_blocks) * s.f_frsize);
  CHECK(d->total_bytes > 0);
  CHECK(d->free_bytes <= d->total_bytes);
  CHECK_FALSE(disk_space("/no/such/corral/path").has_value());
}

TEST_CASE("exposition: integer, text and float samples") {
  std::string o;
  Exposition e(o);
  e.help("x_seconds", "histogram", "A test.");
  e.line("x_seconds_sum", "a=\"1\"", seconds_text(1500));
  e.line_double("process_cpu_seconds_total", "", 0.25);
  e.line("n", "", uint64_t{7});
  CHECK(o ==
        "# HELP x_seconds A test.\n# TYPE x_seconds histogram\n"
        "x_seconds_sum{a=\"1\"} 0.0015\nprocess_cpu_seconds_total 0.25\nn 7\n");
}
