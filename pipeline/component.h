// Component: lifecycle and identity shared by receivers, processors and exporters.
//
// Lifecycle contract: start() is called once, from the main thread, and returns quickly (it may
// start work on the io_context); on failure it undoes what it did and returns the error.
// shutdown(deadline) is called from the main thread, is idempotent, stops taking new work and drains
// what was accepted until `deadline`. The graph starts exporters first and shuts receivers first.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "pipeline/status.h"

namespace otlpd {

using Clock = std::chrono::steady_clock;

// "type" or "type/name" as written in the config, e.g. "otlp/backend".
struct ComponentId {
  std::string type;
  std::string name;

  std::string str() const { return name.empty() ? type : type + "/" + name; }
  bool operator<(const ComponentId& o) const { return str() < o.str(); }
  bool operator==(const ComponentId& o) const { return type == o.type && name == o.name; }
  // Splits "type/name"; the type part must be non-empty.
  static bool parse(const std::string& text, ComponentId* out);
};

class Component {
 public:
  virtual ~Component() = default;
  virtual Status start() = 0;
  virtual void shutdown(Clock::time_point deadline) = 0;
};

// Base of every component's config struct; factories downcast to their own type.
struct ComponentConfig {
  virtual ~ComponentConfig() = default;
};
using ComponentConfigPtr = std::unique_ptr<ComponentConfig>;

}  // namespace otlpd
