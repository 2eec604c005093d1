// Host: what every component is given at creation. Owned by the daemon; outlives all components.
#pragma once

#include <cstddef>
#include <map>
#include <string>

#include "pipeline/storage.h"

namespace boost::asio {
class io_context;
}

namespace otlpd {

class Telemetry;
struct BatchPools;
struct BearerTokenSettings;

struct Host {
  // The shared I/O pool (service.runtime.worker_threads threads). Components post work and arm
  // timers here, each on its own strand.
  boost::asio::io_context& io;
  Telemetry& telemetry;
  // Buffers and batch objects for reuse; null (plain allocation) where nobody provides them.
  BatchPools* pools = nullptr;
  // How many threads `io` runs (service.runtime.worker_threads); components with thread pools of
  // their own (the gRPC server's completion queues) size them to match.
  size_t threads = 1;
  // The config's file_storage extensions, for exporters whose sending queue names one; null: none.
  const FileStorages* storages = nullptr;
  // The config's bearertokenauth extensions, for components whose `auth` names one; null: none.
  const std::map<std::string, BearerTokenSettings>* bearer_tokens = nullptr;
  // The pipeline a processor is created for ("traces/backend"), for its telemetry labels; empty
  // for receivers and exporters, which pipelines share.
  std::string pipeline{};
};

}  // namespace otlpd
