#pragma once
// FUZZ_CHECK: an invariant of a fuzz target. Unlike assert() it stays on in release
// builds (RelWithDebInfo defines NDEBUG); a broken invariant aborts, which libFuzzer
// reports as a finding with the input that caused it.
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                                \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s (%s)\n", __FILE__, __LINE__, what, \
                   #cond);                                                                    \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)
