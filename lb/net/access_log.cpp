#include "lb/net/access_log.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "lb/net/line_queue.h"
#include "lb/net/log.h"

namespace lb::net {
namespace {

constexpr size_t kQueueLines = 65536;
constexpr size_t kBatchBytes = 64 * 1024;
constexpr int kPollMs = 200;

// The queue's size: kQueueLines, or CORRAL_TEST_ACCESS_QUEUE_LINES (tests only: a tiny
// queue makes the drop path reachable with a few requests).
size_t queue_lines() {
  if (const char* v = getenv("CORRAL_TEST_ACCESS_QUEUE_LINES")) {
    long n = strtol(v, nullptr, 10);
    if (n > 0) return static_cast<size_t>(n);
  }
  return kQueueLines;
}

class Writer {
 public:
  Writer() : queue_(queue_lines()) {
    std::random_device rd;
    seed_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }

  void configure(const AccessLogSettings& s) {
    format_.store(static_cast<int>(s.format), std::memory_order_relaxed);
    {
      std::lock_guard lock(mu_);
      if (s.file != file_ || !opened_) {
        file_ = s.file;
        reopen_ = true;
      }
    }
    if (s.enabled && !thread_.joinable()) thread_ = std::thread([this] { run(); });
    enabled_.store(s.enabled, std::memory_order_release);
    queue_.wake();
  }

  void reopen() {
    {
      std::lock_guard lock(mu_);
      reopen_ = true;
    }
    queue_.wake();
  }

  void shutdown() {
    enabled_.store(false, std::memory_order_relaxed);
    if (!thread_.joinable()) return;
    stop_.store(true);
    queue_.wake();
    thread_.join();
  }

  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  uint64_t seed() const { return seed_; }

  void write(const AccessRecord& r) {
    std::string line;
    line.reserve(320);
    append_access_line(line, static_cast<LogFormat>(format_.load(std::memory_order_relaxed)), r,
                       seed_);
    queue_.push(std::move(line));
  }

  LineQueue& queue() { return queue_; }

 private:
  void run() {
    std::vector<std::string> batch;
    while (!stop_.load()) {
      queue_.pop_all(batch, std::chrono::milliseconds(500));
      open_if_asked();
      write_batch(batch);
    }
    // Stopping: what is still queued goes out (a reader that takes nothing is given up on
    // in write_all, and those lines are counted as dropped).
    queue_.pop_all(batch, std::chrono::milliseconds(0));
    open_if_asked();
    write_batch(batch);
    if (fd_ > 2) ::close(fd_);
    fd_ = -1;
  }

  void open_if_asked() {
    std::string path;
    {
      std::lock_guard lock(mu_);
      if (!reopen_) return;
      reopen_ = false;
      opened_ = true;
      path = file_;
    }
    if (fd_ > 2) ::close(fd_);
    fd_ = -1;
    if (path.empty()) {
      fd_ = 2;
      return;
    }
    // O_NONBLOCK: a FIFO with no reader fails at once instead of hanging the writer, and
    // a full pipe is waited on in poll(), where a stop can still end the wait.
    fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
    if (fd_ < 0)
      logf(LogLevel::error, "access log %s: cannot open: %s; lines are dropped until SIGUSR1",
           path.c_str(), std::strerror(errno));
  }

  // Writes all of [p, p+n); false when it gave up (an error, or a stop while the reader
  // takes nothing).
  bool write_all(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w > 0) {
        p += w;
        n -= static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) {
        if (stop_.load()) return false;
        pollfd pfd{fd_, POLLOUT, 0};
        ::poll(&pfd, 1, kPollMs);
        continue;
      }
      return false;
    }
    return true;
  }

  void write_batch(std::vector<std::string>& batch) {
    if (batch.empty()) return;
    if (fd_ < 0) {
      queue_.count_dropped(batch.size());
      return;
    }
    if (fd_ == 2) {
      // stderr is shared with the event lines: one write(2) per line keeps lines whole.
      for (size_t i = 0; i < batch.size(); ++i)
        if (!write_all(batch[i].data(), batch[i].size())) {
          queue_.count_dropped(batch.size() - i);
          return;
        }
      return;
    }
    // A file or pipe of its own: whole lines in writes of up to 64 KB.
    std::string chunk;
    size_t i = 0;
    while (i < batch.size()) {
      chunk.clear();
      size_t first = i;
      while (i < batch.size() && (chunk.empty() || chunk.size() + batch[i].size() <= kBatchBytes))
        chunk += batch[i++];
      if (!write_all(chunk.data(), chunk.size())) {
        queue_.count_dropped(batch.size() - first);
        return;
      }
    }
  }

  LineQueue queue_;
  uint64_t seed_ = 0;
  std::atomic<bool> enabled_{false};
  std::atomic<int> format_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string file_;     // guarded by mu_
  bool reopen_ = false;  // guarded by mu_
  bool opened_ = false;  // guarded by mu_
  std::thread thread_;
  int fd_ = -1;  // the writer thread's
};

// Never destroyed: workers may still hold a pointer while the process exits.
Writer& writer() {
  static Writer* w = new Writer;
  return *w;
}

}  // namespace

void access_log_configure(const AccessLogSettings& s) { writer().configure(s); }
void access_log_reopen() { writer().reopen(); }
void access_log_shutdown() { writer().shutdown(); }
bool access_log_enabled() { return writer().enabled(); }
void access_log_write(const AccessRecord& r) { writer().write(r); }
uint64_t access_log_dropped() { return writer().queue().dropped(); }
uint64_t access_log_session_seed() { return writer().seed(); }
size_t access_log_depth() { return writer().queue().depth(); }

}  // namespace lb::net
