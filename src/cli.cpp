#include "src/cli.h"

#include <llhttp.h>
#include <openssl/crypto.h>
#include <uv.h>
#include <xxhash.h>

namespace cli {

Args parse_args(const std::vector<std::string>& argv) {
  Args a;
  bool help = false, version = false, print_default = false, check = false;
  auto fail = [&](std::string why) {
    if (a.error.empty()) a.error = std::move(why);  // the first mistake is the one to fix
  };
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string s = argv[i];
    // --config=FILE and --check=FILE as well as the separate forms.
    std::string inline_value;
    bool has_inline = false;
    if (s.rfind("--", 0) == 0) {
      if (size_t eq = s.find('='); eq != std::string::npos) {
        inline_value = s.substr(eq + 1);
        s.resize(eq);
        has_inline = true;
      }
    }
    if (has_inline && s != "--config" && s != "--check") {
      fail("option '" + s + "' takes no value");
      continue;
    }
    if (s == "-c" || s == "--config") {
      if (has_inline) {
        a.config_path = inline_value;
      } else if (i + 1 < argv.size()) {
        a.config_path = argv[++i];
      } else {
        fail("option '" + s + "' needs a FILE");
        continue;
      }
      if (a.config_path.empty()) fail("option '" + s + "' needs a FILE");
    } else if (s == "-t" || s == "--check") {
      check = true;
      if (has_inline) {
        // --check= names no file: a usage error like --config=, not the embedded default.
        if (inline_value.empty()) fail("option '--check=' needs a FILE (or -t alone)");
        a.check_path = inline_value;
      } else if (i + 1 < argv.size() && !argv[i + 1].empty() && argv[i + 1][0] != '-')
        a.check_path = argv[++i];
    } else if (s == "-v" || s == "-V" || s == "--version") {
      version = true;
    } else if (s == "-h" || s == "--help") {
      help = true;
    } else if (s == "--print-default-config") {
      print_default = true;
    } else if (s == "--demo") {
      a.demo = true;
    } else if (!s.empty() && s[0] == '-') {
      fail("unknown option '" + argv[i] + "'");
    } else {
      fail("unexpected argument '" + s + "' (a config file goes after -c or -t)");
    }
  }
  // --demo serves its own generated config: a -c or -t next to it would be ignored.
  if (a.demo && !a.config_path.empty())
    fail("--demo runs its own simulated backends and config; it cannot be used with -c");
  if (a.demo && check) fail("--demo cannot be used with -t (check a file with -t FILE alone)");
  if (!a.error.empty())
    a.action = Action::usage_error;
  else if (help)
    a.action = Action::help;
  else if (version)
    a.action = Action::version;
  else if (print_default)
    a.action = Action::print_default_config;
  else if (check)
    a.action = Action::check;
  return a;
}

void print_usage(FILE* out) {
  std::fprintf(
      out,
      "usage: corral [-c FILE]\n"
      "       corral --demo\n"
      "       corral -t [FILE] [-c FILE]\n"
      "       corral -v | --print-default-config | -h\n\n"
      "options:\n"
      "  -c, --config FILE       run with FILE (without it: the embedded default config,\n"
      "                          127.0.0.1:8080 -> Kupo at 127.0.0.1:1442, admin\n"
      "                          127.0.0.1:9901); SIGHUP reloads FILE\n"
      "  -t, --check [FILE]      validate FILE (without FILE: the --config file; with\n"
      "                          neither: the embedded default), print every error as\n"
      "                          FILE:LINE:COL: KEY: reason, and exit; /dev/stdin works\n"
      "  -v, -V, --version       print the version, the build type and the library versions\n"
      "  --print-default-config  print the embedded default config (YAML) on stdout\n"
      "  --demo                  start three simulated Kupo and two simulated Ogmios instances\n"
      "                          on loopback and serve them (Ogmios at /ogmios, WebSocket too);\n"
      "                          alone: not with -c or -t\n"
      "  -h, --help              this text\n\n"
      "signals:\n"
      "  SIGHUP                  reload the config file (a bad file is refused, the old one\n"
      "                          keeps serving)\n"
      "  SIGTERM, SIGINT         stop gracefully (in-flight requests get stop_timeout)\n"
      "  SIGUSR1                 reopen the access log file (after logrotate)\n\n"
      "exit status:\n"
      "  0  fine (stopped by a signal, or the check passed)\n"
      "  1  configuration error (invalid file, or it cannot be served: e.g. a listen\n"
      "     address already in use)\n"
      "  2  usage error (unknown option, missing value)\n");
}

const char* build_type_text(const char* build_type) {
  return build_type[0] == '\0' ? "(none)" : build_type;
}

std::string version_text() {
  char b[512];
  const unsigned xxh = XXH_versionNumber();  // major*10000 + minor*100 + patch
  std::snprintf(b, sizeof b,
                "corral %s\n"
                "build: %s\n"
                "libuv %s\n"
                "%s\n"
                "yaml-cpp %s (built with)\n"
                "llhttp %d.%d.%d\n"
                "xxhash %u.%u.%u\n",
                CORRAL_VERSION, build_type_text(CORRAL_BUILD_TYPE), uv_version_string(),
                OpenSSL_version(OPENSSL_VERSION), CORRAL_YAMLCPP_VERSION, LLHTTP_VERSION_MAJOR,
                LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH, xxh / 10000, xxh / 100 % 100,
                xxh % 100);
  return b;
}

}  // namespace cli
