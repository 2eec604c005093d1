#include "pipeline/component.h"

namespace otlpd {

bool ComponentId::parse(const std::string& text, ComponentId* out) {
  auto slash = text.find('/');
  ComponentId id;
  id.type = text.substr(0, slash);
  if (slash != std::string::npos) {
    id.name = text.substr(slash + 1);
    if (id.name.empty()) return false;
  }
  if (id.type.empty()) return false;
  *out = std::move(id);
  return true;
}

}  // namespace otlpd
