#include <doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/stable_read.h"

namespace {

struct TempFile {
  std::filesystem::path path;
  TempFile() {
    path = std::filesystem::temp_directory_path() /
           ("corral-stable-" + std::to_string(::getpid()) + ".yaml");
  }
  ~TempFile() { std::filesystem::remove(path); }
  void write(const std::string& s) const { std::ofstream(path, std::ios::trunc) << s; }
  void append(const std::string& s) const { std::ofstream(path, std::ios::app) << s; }
};

}  // namespace

TEST_CASE("stable read: a file that does not change is read twice and returned") {
  TempFile f;
  f.write("workers: 1\n");
  int sleeps = 0;
  config::StableRead r = config::read_stable(f.path.string(), 10, 100, [&](uint64_t ms) {
    CHECK(ms == 100);
    ++sleeps;
  });
  CHECK(r.error.empty());
  CHECK(r.body == "workers: 1\n");
  CHECK(r.reads == 2);
  CHECK(sleeps == 1);
}

TEST_CASE("stable read: a file being written is read until it stops changing") {
  TempFile f;
  f.write("workers: 1\n");
  int n = 0;
  config::StableRead r = config::read_stable(f.path.string(), 10, 100, [&](uint64_t) {
    if (++n <= 3) f.append("# piece " + std::to_string(n) + "\n");  // the writer goes on
  });
  CHECK(r.error.empty());
  CHECK(r.body == "workers: 1\n# piece 1\n# piece 2\n# piece 3\n");
  CHECK(r.reads == 5);
}

TEST_CASE("stable read: a file still changing after every read is refused") {
  TempFile f;
  f.write("a\n");
  int n = 0;
  config::StableRead r = config::read_stable(f.path.string(), 4, 100,
                                             [&](uint64_t) { f.append(std::to_string(++n)); });
  CHECK(r.body.empty());
  CHECK(r.error == "still changing after 4 reads 100 ms apart");
  CHECK(r.reads == 4);
}

TEST_CASE("stable read: a missing file is an error at once") {
  int sleeps = 0;
  config::StableRead r =
      config::read_stable("/nonexistent/corral.yaml", 10, 100, [&](uint64_t) { ++sleeps; });
  CHECK(r.error.find("cannot read config file") == 0);
  CHECK(sleeps == 0);
}

TEST_CASE("stable read: a pipe is read once (corral -t /dev/stdin)") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const std::string body = "workers: 1\n";
  REQUIRE(::write(fds[1], body.data(), body.size()) == ssize_t(body.size()));
  ::close(fds[1]);
  int sleeps = 0;
  // Read twice, the second read would find the pipe's end and agree with a third: empty.
  config::StableRead r =
      config::read_stable("/dev/fd/" + std::to_string(fds[0]), 10, 1, [&](uint64_t) { ++sleeps; });
  ::close(fds[0]);
  CHECK(r.error.empty());
  CHECK(r.body == body);
  CHECK(r.reads == 1);
  CHECK(sleeps == 0);
}
