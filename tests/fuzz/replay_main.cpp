// Runs a fuzz target's LLVMFuzzerTestOneInput once on each file given (directories: each
// file in them), so that the seed corpora are regression tests in builds without libFuzzer
// (gcc). Arguments starting with '-' are libFuzzer flags and are ignored.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// Runs one file; false if it cannot be read.
bool run_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy of exactly the file's size, so that reads past the end are caught by ASan.
  std::vector<uint8_t> buf(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(buf.data(), buf.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t runs = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.starts_with("-")) continue;
    std::filesystem::path p(arg);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p)) {
        if (!e.is_regular_file()) continue;
        if (!run_file(e.path()))
          return std::fprintf(stderr, "cannot read %s\n", e.path().c_str()), 1;
        ++runs;
      }
    } else if (run_file(p)) {
      ++runs;
    } else {
      return std::fprintf(stderr, "cannot read %s\n", arg.c_str()), 1;
    }
  }
  std::printf("replayed %zu inputs\n", runs);
  return runs > 0 ? 0 : 1;
}
