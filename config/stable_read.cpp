#include "config/stable_read.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace config {
namespace {

struct Snapshot {
  bool ok = false;
  std::string error;
  std::string body;
  off_t size = 0;
  timespec mtime{};
  bool regular = false;  // a pipe or a terminal (/dev/stdin) cannot be read twice
  uint64_t hash = 0;

  bool same(const Snapshot& o) const {
    return ok && o.ok && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec && body.size() == o.body.size() && hash == o.hash;
  }
};

Snapshot read_once(const std::string& path) {
  Snapshot s;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    s.error = std::strerror(errno);
    return s;
  }
  struct stat st {};
  if (::fstat(fileno(f), &st) != 0) {
    s.error = std::strerror(errno);
    std::fclose(f);
    return s;
  }
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.body.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    s.error = "read error";
    return s;
  }
  s.ok = true;
  s.regular = S_ISREG(st.st_mode);
  s.size = st.st_size;
  s.mtime = st.st_mtim;
  s.hash = XXH3_64bits(s.body.data(), s.body.size());
  return s;
}

}  // namespace

StableRead read_stable(const std::string& path, int max_reads, uint64_t gap_ms,
                       const std::function<void(uint64_t)>& sleep_ms) {
  StableRead r;
  Snapshot prev = read_once(path);
  r.reads = 1;
  if (prev.ok && !prev.regular) {
    // A pipe holds the whole config once: a second read would see its end, not a second
    // copy to compare (`corral -t /dev/stdin`, a config passed through a FIFO).
    r.body = std::move(prev.body);
    return r;
  }
  while (r.reads < max_reads) {
    if (!prev.ok) break;
    sleep_ms(gap_ms);
    Snapshot next = read_once(path);
    ++r.reads;
    if (next.same(prev)) {
      r.body = std::move(next.body);
      return r;
    }
    prev = std::move(next);
  }
  r.error = prev.ok ? "still changing after " + std::to_string(r.reads) + " reads " +
                          std::to_string(gap_ms) + " ms apart"
                    : "cannot read config file: " + prev.error;
  return r;
}

}  // namespace config
