#include "lb/core/backend_state.h"

namespace lb {

const char* state_name(BackendState s) {
  switch (s) {
    case BackendState::up:
      return "up";
    case BackendState::draining:
      return "draining";
    case BackendState::down:
      return "down";
  }
  return "unknown";
}

}  // namespace lb
