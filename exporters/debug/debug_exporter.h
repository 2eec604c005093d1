// The `debug` exporter: writes what arrives to standard output, for people looking at their data.
//
//   exporters:
//     debug:
//       verbosity: basic     # basic: one line per batch with its counts
//                            # normal: one line per item
//                            # detailed: every field of every item
//
// Decodes each batch once (normal, detailed); basic only walks the wire format. Lines of one batch
// are written together, never interleaved with another batch's.
#pragma once

#include <cstdio>

#include "exporters/common/exporter_settings.h"
#include "pipeline/registry.h"

namespace otlpd {

struct DebugExporterConfig : ComponentConfig {
  enum class Verbosity { basic, normal, detailed };
  Verbosity verbosity = Verbosity::basic;
  ExporterSettings exporter;
};

// Renders a batch as the debug exporter prints it (exposed for tests). Returns false when the
// payload does not decode.
bool render_debug(DebugExporterConfig::Verbosity verbosity, const Batch& batch, std::string* out);

class DebugExporterFactory : public ExporterFactory {
 public:
  // `out` is where the text goes (stdout unless a test says otherwise); not owned.
  explicit DebugExporterFactory(std::FILE* out = stdout) : out_(out) {}
  std::string_view type() const override { return "debug"; }
  std::string_view description() const override {
    return "prints batches to standard output (basic, normal or detailed)";
  }
  ComponentConfigPtr parse(config::Node& node) const override;
  ExporterPtr create(const ComponentId& id, const ComponentConfig& config, Signal signal, Host& host) const override;

 private:
  std::FILE* out_;
};

}  // namespace otlpd
