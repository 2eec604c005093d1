// Link: a consumer that forwards to a target which can be replaced while data flows.
//
// Every edge a reload may rewire goes through a Link: a receiver's edge to its pipelines, a
// processor's edge to the next stage, and the pipelines' edge to an exporter. A reload retargets
// the Links of the components it keeps, so they carry on (same queues, same sockets) feeding the
// new components; FanOuts between Links are rebuilt with each config. A caller that read the old
// target just before a retarget still reaches the old component; old components refuse with
// Status::not_running once they are shutting down, which a FanOut passes back to the client even
// when other targets took the data, so nothing acknowledged misses a pipeline that way.
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

  // With no target (an undone reload restarting what it points at), data is refused retryably.
  Status consume(BatchPtr batch) override {
    ConsumerPtr t = target();
    return t ? t->consume(std::move(batch)) : Status::not_running("the next stage is restarting");
  }
  bool never_waits() const override {
    ConsumerPtr t = target();
    return !t || t->never_waits();
  }
  bool persists() const override {
    ConsumerPtr t = target();
    return t && t->persists();
  }

 private:
  mutable std::mutex mu_;  // held only to copy the pointer, never across a call
  ConsumerPtr target_;
};

}  // namespace otlpd
