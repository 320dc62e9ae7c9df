#pragma once
// corral's command line (issue 14): the options operators know from haproxy and nginx.
// Parsing is pure (no I/O, no exit) so that tests can check every form; main() acts on
// the result.
#include <cstdio>
#include <string>
#include <vector>

namespace cli {

// Exit codes, documented in --help and the README.
inline constexpr int kExitOk = 0;
inline constexpr int kExitConfig = 1;  // the configuration is invalid (or cannot be served)
inline constexpr int kExitUsage = 2;   // unknown option, missing value

enum class Action {
  run,                   // serve (config_path, or the embedded default; --demo)
  check,                 // validate check_path, else config_path, else the embedded default
  version,               // -v/-V/--version
  help,                  // -h/--help
  print_default_config,  // --print-default-config
  usage_error,           // error holds the reason
};

struct Args {
  Action action = Action::run;
  std::string config_path;  // -c/--config FILE
  std::string check_path;   // -t/--check FILE (empty: -t without FILE)
  bool demo = false;
  std::string error;
};

// Parses argv[1..] (given without argv[0]). -t/--check takes FILE only when the next
// argument exists and does not start with '-', so `-t -c FILE` checks FILE through
// --config. Any usage error wins over every other action; then help, version,
// print-default-config, check, run.
Args parse_args(const std::vector<std::string>& argv);

// The --help text: every option, the signals and the exit codes.
void print_usage(FILE* out);

// The build type as -v prints it: CMAKE_BUILD_TYPE, "(none)" when it was empty.
const char* build_type_text(const char* build_type);

// The -v text: "corral VERSION", the build type, then one line per library with the
// version it runs with (or was built with, where the library has no run-time call).
std::string version_text();

}  // namespace cli
