// Link: a consumer that forwards to a target which can be replaced while data flows.
//
// Every edge a reload may rewire goes through a Link: a receiver's edge to its pipelines, and a
// processor's edge to the next stage. A reload retargets the Links of the components it keeps,
// so they carry on (same queues, same sockets) feeding the new components. A caller that read
// the old target just before a retarget still reaches the old component; old components refuse
// (retryably) once they are shutting down, so nothing acknowledged is lost that way.
//
// Thread-safe: consume() from any thread, retarget() from the thread running the reload.
#pragma once

#include <mutex>

#include "pipeline/consumer.h"

namespace otlpd {

class Link : public Consumer {
 public:
  explicit Link(ConsumerPtr target) : target_(std::move(target)) {}

  void retarget(ConsumerPtr target) {
    std::lock_guard lock(mu_);
    target_ = std::move(target);
  }
  ConsumerPtr target() const {
    std::lock_guard lock(mu_);
    return target_;
  }

  Status consume(BatchPtr batch) override { return target()->consume(std::move(batch)); }
  bool never_waits() const override { return target()->never_waits(); }
  bool persists() const override { return target()->persists(); }

 private:
  mutable std::mutex mu_;  // held only to copy the pointer, never across a call
  ConsumerPtr target_;
};

}  // namespace otlpd
