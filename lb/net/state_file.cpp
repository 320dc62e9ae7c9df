// The state file's I/O (see state_file.h for the contract). Plain POSIX calls rather than
// libuv: this runs on the control thread while no loop is serving, and fsync/rename
// ordering is easier to read as straight-line code.
#include "lb/net/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "lb/core/pin_snapshot.h"

namespace lb::net {
namespace {

std::string errno_text(const std::string& what, const std::string& path, int err) {
  return what + " '" + path + "': " + std::strerror(err);
}

// Closes a descriptor on scope exit unless released.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  // Closes now, reporting the error: on some file systems close is where a write fails.
  int close() {
    int rc = ::close(fd);
    fd = -1;
    return rc;
  }
};

std::string write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_text("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return "";
}

// Reads the whole file into out. ENOENT is returned as-is so the caller can tell a
// missing file from an unreadable one.
// mtime_unix_ms: the file's modification time (dates a version 1 file).
int read_all(const std::string& path, std::string& out, uint64_t& mtime_unix_ms) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) return errno;
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  mtime_unix_ms = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000 +
                  static_cast<uint64_t>(st.st_mtim.tv_nsec) / 1'000'000;
  out.clear();
  if (st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return 0;
    out.append(buf, static_cast<size_t>(n));
  }
}

// Makes the rename itself durable: without this a crash can bring back the old entry.
std::string fsync_dir(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd < 0) return errno_text("cannot open directory", dir, errno);
  if (::fsync(d.fd) != 0) return errno_text("cannot fsync directory", dir, errno);
  return "";
}

}  // namespace

std::string save_pins(const std::string& path, const SessionTable& table,
                      const std::function<std::string(BackendRef)>& name_of, uint64_t now_ms,
                      uint64_t now_unix_ms, const std::vector<QuotaRecord>& quotas) {
  // Copy raw entries first: for_each holds a shard lock while it calls back, and name_of
  // may take the registry's lock; names are then looked up once per backend, not per pin.
  struct Raw {
    SessionKey key;
    Pin pin;
    uint64_t last_seen_ms;
  };
  std::vector<Raw> raw;
  table.for_each([&](const SessionKey& k, const Pin& p, uint64_t last_seen) {
    raw.push_back(Raw{k, p, last_seen});
  });
  std::unordered_map<BackendRef, std::string> names;
  std::vector<PinRecord> records;
  records.reserve(raw.size());
  for (const Raw& r : raw) {
    auto it = names.find(r.pin.backend);
    if (it == names.end()) it = names.emplace(r.pin.backend, name_of(r.pin.backend)).first;
    if (it->second.empty()) continue;
    uint64_t idle = now_ms > r.last_seen_ms ? now_ms - r.last_seen_ms : 0;
    uint64_t seen = now_unix_ms > idle ? now_unix_ms - idle : 0;
    records.push_back(PinRecord{r.key, it->second, r.pin.last_slot, seen});
  }
  std::string bytes = encode_pins(records, quotas);

  std::string tmp = path + ".tmp";
  std::string err;
  {
    Fd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (f.fd < 0) return errno_text("cannot create", tmp, errno);
    err = write_all(f.fd, bytes, tmp);
    if (err.empty() && ::fsync(f.fd) != 0) err = errno_text("cannot fsync", tmp, errno);
    if (f.close() != 0 && err.empty()) err = errno_text("cannot close", tmp, errno);
  }
  if (err.empty() && ::rename(tmp.c_str(), path.c_str()) != 0)
    err = errno_text("cannot rename to", path, errno);
  if (!err.empty()) {
    ::unlink(tmp.c_str());
    return err;
  }
  return fsync_dir(path);
}

LoadReport load_pins(const std::string& path, SessionTable& table,
                     const std::function<std::optional<BackendRef>(std::string_view)>& resolve,
                     uint64_t now_ms, uint64_t now_unix_ms, uint64_t ttl_ms) {
  LoadReport report;
  std::string bytes;
  uint64_t mtime_unix_ms = 0;
  if (int err = read_all(path, bytes, mtime_unix_ms); err != 0) {
    if (err == ENOENT)
      report.missing = true;
    else
      report.error = errno_text("cannot read state file", path, err);
    return report;
  }
  DecodeResult decoded = decode_pins(bytes, std::max<uint64_t>(mtime_unix_ms, 1));
  if (!decoded.error.empty()) {
    report.error = "state file '" + path + "': " + decoded.error;
    return report;
  }
  bytes = std::string();  // the decoded copy is all we need; free the raw bytes early
  report.quotas = std::move(decoded.quotas);

  // The table puts every pin at the hot end of its shard, so inserting coldest first
  // leaves each shard in the LRU order it had before the restart; eviction and expiry
  // then drop the right entries. stable_sort keeps the file order among equals.
  std::vector<PinRecord>& pins = decoded.pins;
  std::stable_sort(pins.begin(), pins.end(), [](const PinRecord& a, const PinRecord& b) {
    return a.last_seen_unix_ms < b.last_seen_unix_ms;
  });
  std::unordered_map<std::string, std::optional<BackendRef>> refs;
  for (const PinRecord& p : pins) {
    const uint64_t idle = pin_idle_ms(p, now_unix_ms);
    if (idle >= ttl_ms) {
      ++report.dropped_expired;
      continue;
    }
    auto it = refs.find(p.backend);
    if (it == refs.end()) it = refs.emplace(p.backend, resolve(p.backend)).first;
    if (!it->second || *it->second >= SessionTable::kMaxBackends) {
      ++report.dropped_unknown;
      continue;
    }
    uint64_t last_seen = now_ms > idle ? now_ms - idle : 0;
    table.pin(p.key, *it->second, last_seen);
    if (p.last_slot != 0) table.record_slot(p.key, p.last_slot);
    ++report.loaded;
  }
  return report;
}

}  // namespace lb::net
