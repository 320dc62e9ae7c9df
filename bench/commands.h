#pragma once
// The corral-bench subcommands other than `backend` (each in its own file): entry points
// with argv[0] = the subcommand's name, and their help text.
#include <cstdio>

namespace bench {

int run_load(int argc, char** argv);
void help_load(FILE* out);
int run_ring(int argc, char** argv);
void help_ring(FILE* out);
int run_plan(int argc, char** argv);
void help_plan(FILE* out);

}  // namespace bench
