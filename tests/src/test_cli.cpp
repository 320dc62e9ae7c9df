#include <doctest.h>

#include <string>
#include <vector>

#include "config/loader.h"
#include "src/cli.h"

using cli::Action;
using cli::parse_args;

TEST_CASE("cli: no arguments runs the embedded default") {
  const cli::Args a = parse_args({});
  CHECK(a.action == Action::run);
  CHECK(a.config_path.empty());
  CHECK_FALSE(a.demo);
}

TEST_CASE("cli: -c and --config take FILE, in every spelling") {
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {"-c", "x.yaml"}, {"--config", "x.yaml"}, {"--config=x.yaml"}}) {
    const cli::Args a = parse_args(argv);
    CHECK(a.action == Action::run);
    CHECK(a.config_path == "x.yaml");
  }
  CHECK(parse_args({"--demo"}).demo);
}

TEST_CASE("cli: -t takes FILE only when one follows") {
  cli::Args a = parse_args({"-t", "a.yaml"});
  CHECK(a.action == Action::check);
  CHECK(a.check_path == "a.yaml");

  a = parse_args({"--check", "/dev/stdin"});
  CHECK(a.action == Action::check);
  CHECK(a.check_path == "/dev/stdin");

  // -t -c FILE: -t has no FILE of its own, the --config one is checked.
  a = parse_args({"-t", "-c", "b.yaml"});
  CHECK(a.action == Action::check);
  CHECK(a.check_path.empty());
  CHECK(a.config_path == "b.yaml");

  a = parse_args({"-c", "b.yaml", "-t"});
  CHECK(a.action == Action::check);
  CHECK(a.check_path.empty());
  CHECK(a.config_path == "b.yaml");

  // -t alone: neither path, so main checks the embedded default.
  a = parse_args({"-t"});
  CHECK(a.action == Action::check);
  CHECK(a.check_path.empty());
  CHECK(a.config_path.empty());
}

TEST_CASE("cli: version, help and print-default-config") {
  for (const char* v : {"-v", "-V", "--version"}) {
    INFO(v);
    CHECK(parse_args({v}).action == Action::version);
  }
  CHECK(parse_args({"-h"}).action == Action::help);
  CHECK(parse_args({"--help"}).action == Action::help);
  CHECK(parse_args({"-v", "--help"}).action == Action::help);  // help wins
  CHECK(parse_args({"--print-default-config"}).action == Action::print_default_config);
  CHECK(parse_args({"-t", "-v"}).action == Action::version);
}

TEST_CASE("cli: usage errors name the mistake and win over everything") {
  cli::Args a = parse_args({"--bogus"});
  CHECK(a.action == Action::usage_error);
  CHECK(a.error.find("'--bogus'") != std::string::npos);

  a = parse_args({"--help", "-x"});
  CHECK(a.action == Action::usage_error);

  a = parse_args({"-c"});
  CHECK(a.action == Action::usage_error);
  CHECK(a.error.find("-c") != std::string::npos);

  a = parse_args({"--config="});
  CHECK(a.action == Action::usage_error);

  a = parse_args({"stray.yaml"});
  CHECK(a.action == Action::usage_error);
  CHECK(a.error.find("stray.yaml") != std::string::npos);

  a = parse_args({"--demo=yes"});
  CHECK(a.action == Action::usage_error);

  // --check= names no file, like --config=: not a check of the embedded default.
  a = parse_args({"--check="});
  CHECK(a.action == Action::usage_error);
  CHECK(a.error.find("--check=") != std::string::npos);

  // --demo serves its own config: -c or -t beside it is refused, in either order.
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{{"--demo", "-c", "x.yaml"},
                                             {"-c", "x.yaml", "--demo"},
                                             {"--demo", "-t"},
                                             {"-t", "x.yaml", "--demo"}}) {
    a = parse_args(argv);
    CHECK(a.action == Action::usage_error);
    CHECK(a.error.find("--demo") != std::string::npos);
  }
}

TEST_CASE("cli: an empty build type prints as (none)") {
  CHECK(std::string(cli::build_type_text("")) == "(none)");
  CHECK(std::string(cli::build_type_text("Release")) == "Release");
}

TEST_CASE("cli: the version text starts with the version and names every library") {
  const std::string v = cli::version_text();
  CHECK(v.rfind(std::string("corral ") + CORRAL_VERSION + "\n", 0) == 0);
  for (const char* lib : {"build: ", "libuv ", "OpenSSL ", "yaml-cpp ", "llhttp ", "xxhash "}) {
    INFO(lib);
    CHECK(v.find(lib) != std::string::npos);
  }
}

TEST_CASE("cli: the embedded default that --print-default-config prints is valid") {
  const config::LoadResult r = config::load_string(config::embedded_default_yaml(), "<embedded>");
  CHECK(r.config.has_value());
}
