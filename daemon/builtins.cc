#include "daemon/builtins.h"

#include "exporters/debug/debug_exporter.h"
#include "exporters/file/file_exporter.h"
#include "exporters/otlp/otlp_exporter.h"
#include "exporters/otlphttp/otlphttp_exporter.h"
#include "pipeline/batch_processor.h"
#include "pipeline/memory_limiter.h"
#include "receivers/otlp/otlp_receiver.h"

namespace otlpd {

void register_builtins(Registry& registry) {
  registry.add(std::make_unique<OtlpReceiverFactory>());
  registry.add(std::make_unique<BatchProcessorFactory>());
  registry.add(std::make_unique<MemoryLimiterFactory>());
  registry.add(std::make_unique<DebugExporterFactory>());
  registry.add(std::make_unique<OtlpExporterFactory>());
  registry.add(std::make_unique<OtlpHttpExporterFactory>());
  registry.add(std::make_unique<FileExporterFactory>());
}

}  // namespace otlpd
