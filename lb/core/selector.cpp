#include "lb/core/selector.h"

#include "lb/core/maglev.h"
#include "lb/core/rendezvous.h"

namespace lb {

// Builds the selector of the requested kind; an unknown kind falls back to rendezvous,
// the exact one, rather than failing on the data path.
std::unique_ptr<const Selector> make_selector(SelectorKind kind,
                                              std::span<const SelectorBackend> backends) {
  switch (kind) {
    case SelectorKind::maglev:
      return std::make_unique<const MaglevSelector>(backends);
    case SelectorKind::rendezvous:
      break;
  }
  return std::make_unique<const RendezvousSelector>(backends);
}

}  // namespace lb
