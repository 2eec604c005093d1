#include "pipeline/fanout.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace otlpd {

FanOut::FanOut(std::vector<Target> targets) : targets_(std::move(targets)) {}

Status FanOut::consume(BatchPtr batch) {
  if (targets_.size() == 1) return targets_[0].consumer->consume(std::move(batch));
  bool any_accepted = false;
  Status first_refusal;
  Status must_refuse;
  uint64_t rejected = 0;
  std::string rejected_message;
  for (const auto& target : targets_) {
    Status s = target.consumer->consume(batch);
    if (s.is_ok()) {
      any_accepted = true;
      if (s.rejected_items() > rejected) {
        rejected = s.rejected_items();
        rejected_message = s.message();
      }
      continue;
    }
    // Debug only: the refusing consumer counts it and warns at a bounded rate.
    spdlog::debug("{} refused {} {}: {}", target.name, batch->items, otlp::item_name(batch->signal), s.to_string());
    if (first_refusal.is_ok()) first_refusal = s;
    // A client is told OK only when its data is on disk wherever a target keeps it there, and
    // only when no target missed it for being replaced by a reload (the retry reaches its successor).
    if (must_refuse.is_ok() && (target.consumer->persists() || s.not_running())) must_refuse = s;
  }
  if (!any_accepted) return first_refusal;
  if (!must_refuse.is_ok()) return must_refuse;
  if (rejected > 0) return Status::partial(rejected, std::move(rejected_message));
  return Status::ok();
}

bool FanOut::never_waits() const {
  for (const auto& t : targets_) {
    if (!t.consumer->never_waits()) return false;
  }
  return true;
}

bool FanOut::persists() const {
  return std::any_of(targets_.begin(), targets_.end(), [](const Target& t) { return t.consumer->persists(); });
}

}  // namespace otlpd
