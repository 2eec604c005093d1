// FanOut: hands one batch to several consumers (a pipeline's exporters, or the pipelines fed by
// one receiver). The batch is shared, not copied. Thread-safe: the consumer list is fixed at
// construction.
//
// A consumer that refuses does not hold back the others: its refusal is logged and counted by the
// consumer itself. The batch counts as accepted when at least one consumer took it; when all refuse,
// the first refusal is returned so the client retries and nothing is lost. Except: when a consumer
// that persists (a persistent queue) refuses, its refusal is returned even if others took the
// batch, since an acknowledgement must mean the data is on disk; the client's retry may then reach
// the others twice. The same for a target that is not running (Status::not_running: a stage a
// reload replaced, reached just before the switch): its successor gets the client's retry.
#pragma once

#include <string>
#include <vector>

#include "pipeline/consumer.h"

namespace otlpd {

class FanOut : public Consumer {
 public:
  struct Target {
    std::string name;  // for log messages, e.g. "exporter otlp/backend"
    ConsumerPtr consumer;
  };
  explicit FanOut(std::vector<Target> targets);

  Status consume(BatchPtr batch) override;
  bool never_waits() const override;
  // Any target: a batch that one target persists is not lost when the others drop it.
  bool persists() const override;

 private:
  std::vector<Target> targets_;
};

}  // namespace otlpd
