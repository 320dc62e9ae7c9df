#pragma once
// What a load report printer writes, as a string (for tests of the text and JSON reports).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/load_report.h"

namespace bench {

inline std::string capture(void (*print)(const LoadReport&, FILE*), const LoadReport& r) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  print(r, f);
  std::fclose(f);
  std::string s(buf, len);
  std::free(buf);
  return s;
}

}  // namespace bench
