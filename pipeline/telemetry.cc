#include "pipeline/telemetry.h"

namespace otlpd {

Counter& Telemetry::counter(const std::string& name, const Labels& labels) {
  return find_or_add(name, labels, Kind::counter);
}

Counter& Telemetry::gauge(const std::string& name, const Labels& labels) {
  return find_or_add(name, labels, Kind::gauge);
}

Counter& Telemetry::find_or_add(const std::string& name, const Labels& labels, Kind kind) {
  std::lock_guard lock(mu_);
  auto key = std::make_pair(name, labels);
  auto it = index_.find(key);
  if (it != index_.end()) return *it->second;
  Entry& e = entries_.emplace_back();
  e.name = name;
  e.labels = labels;
  e.kind = kind;
  index_.emplace(std::move(key), &e.counter);
  return e.counter;
}

uint64_t Telemetry::value(const std::string& name, const Labels& labels) const {
  std::lock_guard lock(mu_);
  auto it = index_.find(std::make_pair(name, labels));
  return it == index_.end() ? 0 : it->second->value();
}

std::vector<Telemetry::Sample> Telemetry::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<Sample> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back({e.name, e.labels, e.counter.value(), e.kind});
  return out;
}

}  // namespace otlpd
