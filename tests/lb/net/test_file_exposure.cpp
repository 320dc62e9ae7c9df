#include <doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "lb/net/file_exposure.h"

using lb::net::exposure;
using lb::net::is_loopback_host;
using lb::net::warn_exposed;

namespace {

struct TempFile {
  std::string path;
  TempFile() {
    char tmpl[] = "/tmp/corral-exposure-XXXXXX";
    int fd = mkstemp(tmpl);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = tmpl;
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

}  // namespace

TEST_CASE("file exposure: group or others may read or write") {
  TempFile f;
  REQUIRE(chmod(f.path.c_str(), 0600) == 0);
  CHECK(exposure(f.path).empty());
  REQUIRE(chmod(f.path.c_str(), 0400) == 0);
  CHECK(exposure(f.path).empty());
  REQUIRE(chmod(f.path.c_str(), 0644) == 0);
  CHECK(exposure(f.path) == "mode 0644: readable by group and others");
  REQUIRE(chmod(f.path.c_str(), 0640) == 0);
  CHECK(exposure(f.path) == "mode 0640: readable by group");
  REQUIRE(chmod(f.path.c_str(), 0604) == 0);
  CHECK(exposure(f.path) == "mode 0604: readable by others");
  REQUIRE(chmod(f.path.c_str(), 0620) == 0);
  CHECK(exposure(f.path) == "mode 0620: writable by group");
  CHECK(exposure("/nonexistent/corral/file").empty());
  CHECK(exposure("").empty());
}

TEST_CASE("file exposure: loopback hosts") {
  CHECK(is_loopback_host("127.0.0.1"));
  CHECK(is_loopback_host("127.1.2.3"));
  CHECK(is_loopback_host("::1"));
  CHECK(is_loopback_host("localhost"));
  CHECK_FALSE(is_loopback_host("0.0.0.0"));
  CHECK_FALSE(is_loopback_host("::"));
  CHECK_FALSE(is_loopback_host("10.0.0.1"));
  CHECK_FALSE(is_loopback_host("1270.0.0.1"));
}

TEST_CASE("file exposure: a config's files and its admin listener") {
  TempFile conf, token, secret;
  for (const std::string* p : {&conf.path, &token.path, &secret.path})
    REQUIRE(chmod(p->c_str(), 0600) == 0);
  config::Config cfg;
  cfg.source = conf.path;
  cfg.admin.token_file = token.path;
  cfg.admin.token = "t";
  config::Pool pool;
  pool.name = "bf";
  config::Secret s;
  s.file = secret.path;
  pool.set_headers.emplace_back("project_id", s);
  cfg.pools.push_back(pool);
  CHECK(warn_exposed(cfg) == 0);
  REQUIRE(chmod(secret.path.c_str(), 0644) == 0);
  REQUIRE(chmod(conf.path.c_str(), 0640) == 0);
  CHECK(warn_exposed(cfg) == 2);
  cfg.admin.listen = {"0.0.0.0", 9901, "0.0.0.0:9901"};
  CHECK(warn_exposed(cfg) == 2);  // it has a token
  cfg.admin.token.clear();
  cfg.admin.token_file.clear();
  CHECK(warn_exposed(cfg) == 3);
  cfg.source = "<embedded>";
  CHECK(warn_exposed(cfg) == 2);
}
