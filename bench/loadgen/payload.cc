// PayloadGenerator: builds template requests with protobuf once, then patches identifiers in copies.
// Ownership and threads: see payload.h (immutable after construction; make() is thread-safe).
#include "bench/loadgen/payload.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string_view>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_codec.h"

namespace otlpd::loadgen {

namespace {

namespace common = opentelemetry::proto::common::v1;
namespace tr = opentelemetry::proto::trace::v1;
namespace mt = opentelemetry::proto::metrics::v1;
namespace lg = opentelemetry::proto::logs::v1;
namespace col = opentelemetry::proto::collector;

using Rng = std::mt19937_64;

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void put_be64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

void put_le64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

constexpr char kHex[] = "0123456789abcdef";

void put_hex(char* p, const char* bytes, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    auto b = static_cast<unsigned char>(bytes[i]);
    p[2 * i] = kHex[b >> 4];
    p[2 * i + 1] = kHex[b & 0xf];
  }
}

std::string hex(std::string_view bytes) {
  std::string out(bytes.size() * 2, '0');
  put_hex(out.data(), bytes.data(), bytes.size());
  return out;
}

// 19 decimal digits (the generator keeps times in [1e18, 1e19)).
void put_dec19(char* p, uint64_t v) {
  for (int i = 18; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

std::string random_bytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

template <typename T>
const T& pick(Rng& rng, const std::vector<T>& v) {
  return v[rng() % v.size()];
}

void add_str(google::protobuf::RepeatedPtrField<common::KeyValue>* attrs, const std::string& k, const std::string& v) {
  auto* kv = attrs->Add();
  kv->set_key(k);
  kv->mutable_value()->set_string_value(v);
}
void add_int(google::protobuf::RepeatedPtrField<common::KeyValue>* attrs, const std::string& k, int64_t v) {
  auto* kv = attrs->Add();
  kv->set_key(k);
  kv->mutable_value()->set_int_value(v);
}
void add_double(google::protobuf::RepeatedPtrField<common::KeyValue>* attrs, const std::string& k, double v) {
  auto* kv = attrs->Add();
  kv->set_key(k);
  kv->mutable_value()->set_double_value(v);
}
void add_bool(google::protobuf::RepeatedPtrField<common::KeyValue>* attrs, const std::string& k, bool v) {
  auto* kv = attrs->Add();
  kv->set_key(k);
  kv->mutable_value()->set_bool_value(v);
}

const std::vector<std::string> kMethods = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
const std::vector<std::string> kRoutes = {"/api/v1/users/{id}", "/api/v1/orders", "/api/v1/orders/{id}/items",
                                          "/api/v1/cart", "/health", "/api/v2/search", "/api/v1/payments/{id}"};
const std::vector<std::string> kPeers = {"users-db.internal", "orders.svc.cluster.local", "redis-0.cache",
                                         "payments.example.com", "search-7f9c.svc.cluster.local"};
const std::vector<int64_t> kStatuses = {200, 200, 200, 200, 201, 204, 304, 400, 404, 500, 503};

void fill_resource(Rng& rng, uint64_t variant, google::protobuf::RepeatedPtrField<common::KeyValue>* attrs) {
  add_str(attrs, "service.name", "loadgen-" + std::vector<std::string>{"checkout", "frontend", "cart", "payments"}[variant % 4]);
  add_str(attrs, "service.instance.id", hex(random_bytes(rng, 16)));
  add_str(attrs, "service.version", "1." + std::to_string(variant % 7) + ".3");
  add_str(attrs, "host.name", "node-" + std::to_string(rng() % 64) + ".prod.example.com");
  add_str(attrs, "host.arch", "amd64");
  add_str(attrs, "os.type", "linux");
  add_str(attrs, "telemetry.sdk.name", "otlpd-loadgen");
  add_str(attrs, "telemetry.sdk.language", "cpp");
}

void fill_scope(common::InstrumentationScope* scope) {
  scope->set_name("otlpd-loadgen");
  scope->set_version(OTLPD_VERSION);
}

// 8 to 12 span attributes of mixed types.
void fill_span_attributes(Rng& rng, google::protobuf::RepeatedPtrField<common::KeyValue>* a) {
  const size_t count = 8 + rng() % 5;
  const std::string& route = pick(rng, kRoutes);
  add_str(a, "http.method", pick(rng, kMethods));
  add_str(a, "http.route", route);
  add_int(a, "http.status_code", pick(rng, kStatuses));
  add_str(a, "net.peer.name", pick(rng, kPeers));
  add_int(a, "net.peer.port", 1024 + static_cast<int64_t>(rng() % 60000));
  add_str(a, "enduser.id", "user-" + std::to_string(rng() % 1000000));
  add_double(a, "http.server.duration_ms", static_cast<double>(rng() % 250000) / 100.0);
  add_bool(a, "cache.hit", rng() % 2 == 0);
  if (count > 8) add_int(a, "http.request_content_length", static_cast<int64_t>(rng() % 65536));
  if (count > 9) add_str(a, "http.user_agent", "Mozilla/5.0 (X11; Linux x86_64) loadgen/" + std::to_string(rng() % 100));
  if (count > 10) {
    auto* kv = a->Add();
    kv->set_key("app.feature_flags");
    auto* arr = kv->mutable_value()->mutable_array_value();
    for (int i = 0, n = 1 + static_cast<int>(rng() % 3); i < n; ++i) {
      arr->add_values()->set_string_value("flag-" + std::to_string(rng() % 50));
    }
  }
  if (count > 11) add_str(a, "session.id", hex(random_bytes(rng, 8)));
}

}  // namespace

PayloadGenerator::PayloadGenerator(const PayloadOptions& options) : options_(options) {
  if (options_.items_per_request == 0) throw std::runtime_error("items per request must be at least 1");
  if (options_.variants == 0) options_.variants = 1;
  span_mask_ = splitmix(options_.seed * 2 + 1) | (1ULL << 63);
  trace_hi_ = splitmix(options_.seed * 2 + 2);
  base_time_ns_ = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  base_time_ns_ -= base_time_ns_ % 1'000'000'000ULL;
  traces_per_request_ = (options_.items_per_request + kSpansPerTrace - 1) / kSpansPerTrace;
  for (size_t v = 0; v < options_.variants; ++v) {
    Template t;
    bool built = false;
    // A placeholder could in principle also occur elsewhere in the bytes; draw again if so.
    for (uint64_t attempt = 0; attempt < 8 && !built; ++attempt) {
      built = build_variant(splitmix(options_.seed ^ (v * 0x100 + attempt + 1)), &t);
    }
    if (!built) throw std::runtime_error("cannot lay out payload identifiers");
    templates_.push_back(std::move(t));
  }
}

size_t PayloadGenerator::average_bytes() const {
  size_t total = 0;
  for (const auto& t : templates_) total += t.bytes.size();
  return total / templates_.size();
}

std::string PayloadGenerator::span_id(uint64_t g) const {
  std::string s(8, '\0');
  put_be64(s.data(), (g + 1) ^ span_mask_);
  return s;
}

std::string PayloadGenerator::trace_id(uint64_t t) const {
  std::string s(16, '\0');
  put_be64(s.data(), trace_hi_);
  put_be64(s.data() + 8, t + 1);
  return s;
}

uint64_t PayloadGenerator::time_ns(uint64_t g) const { return base_time_ns_ + g * 1000; }

bool PayloadGenerator::build_variant(uint64_t variant_seed, Template* out) const {
  Rng rng(variant_seed);
  const size_t n = options_.items_per_request;
  const bool json = options_.format == Format::json;

  // Each placeholder: its protobuf bytes (what the message holds), its text in JSON, its meaning.
  struct Placeholder {
    std::string proto;
    std::string json;
    Kind kind;
    uint32_t local;
  };
  std::vector<Placeholder> places;
  auto id_placeholder = [&](size_t len, Kind kind, uint32_t local) {
    std::string b = random_bytes(rng, len);
    places.push_back({b, "\"" + hex(b) + "\"", kind, local});
    return b;
  };
  auto time_placeholder = [&](uint32_t local) {
    uint64_t v = base_time_ns_ + (rng() & ((1ULL << 40) - 1));
    std::string b(8, '\0');
    put_le64(b.data(), v);
    places.push_back({b, "\"" + std::to_string(v) + "\"", Kind::time, local});
    return v;
  };
  const uint64_t t0 = base_time_ns_;

  std::string bytes;
  switch (options_.signal) {
    case otlp::Signal::traces: {
      col::trace::v1::ExportTraceServiceRequest req;
      auto* rs = req.add_resource_spans();
      fill_resource(rng, variant_seed, rs->mutable_resource()->mutable_attributes());
      auto* ss = rs->add_scope_spans();
      fill_scope(ss->mutable_scope());
      for (size_t i = 0; i < n; ++i) {
        const size_t k = i % kSpansPerTrace;
        auto* span = ss->add_spans();
        span->set_trace_id(id_placeholder(16, Kind::trace_id, static_cast<uint32_t>(i / kSpansPerTrace)));
        span->set_span_id(id_placeholder(8, Kind::span_id, static_cast<uint32_t>(i)));
        if (k > 0) span->set_parent_span_id(id_placeholder(8, Kind::parent_span_id, static_cast<uint32_t>(i)));
        const std::string& route = pick(rng, kRoutes);
        span->set_name(k == 0 ? pick(rng, kMethods) + " " + route : "SELECT orders." + std::to_string(k));
        span->set_kind(k == 0 ? tr::Span::SPAN_KIND_SERVER : (k % 2 ? tr::Span::SPAN_KIND_CLIENT : tr::Span::SPAN_KIND_INTERNAL));
        span->set_flags(0x101);
        const uint64_t start = t0 + rng() % 1'000'000'000ULL;
        span->set_start_time_unix_nano(start);
        span->set_end_time_unix_nano(start + 1000 + rng() % 50'000'000ULL);
        fill_span_attributes(rng, span->mutable_attributes());
        for (int e = 0, events = 1 + static_cast<int>(rng() % 2); e < events; ++e) {
          auto* ev = span->add_events();
          ev->set_time_unix_nano(start + 500 + rng() % 1000);
          ev->set_name(e == 0 ? "cache.lookup" : "exception");
          add_str(ev->mutable_attributes(), e == 0 ? "cache.key" : "exception.type",
                  e == 0 ? "k:" + std::to_string(rng() % 100000) : "std::runtime_error");
          add_int(ev->mutable_attributes(), "attempt", static_cast<int64_t>(rng() % 3));
        }
        const bool error = rng() % 10 == 0;
        span->mutable_status()->set_code(error ? tr::Status::STATUS_CODE_ERROR : tr::Status::STATUS_CODE_OK);
        if (error) span->mutable_status()->set_message("upstream returned 503");
      }
      bytes = req.SerializeAsString();
      if (json) {
        bytes.clear();
        otlp::message_to_json(req, &bytes);
      }
      break;
    }
    case otlp::Signal::metrics: {
      col::metrics::v1::ExportMetricsServiceRequest req;
      auto* rm = req.add_resource_metrics();
      fill_resource(rng, variant_seed, rm->mutable_resource()->mutable_attributes());
      auto* sm = rm->add_scope_metrics();
      fill_scope(sm->mutable_scope());
      size_t done = 0;
      for (int m = 0; done < n; ++m) {
        auto* metric = sm->add_metrics();
        const size_t points = std::min<size_t>(n - done, 1 + rng() % 4);
        auto point_attrs = [&](google::protobuf::RepeatedPtrField<common::KeyValue>* a) {
          add_str(a, "http.method", pick(rng, kMethods));
          add_str(a, "http.route", pick(rng, kRoutes));
          add_int(a, "http.status_code", pick(rng, kStatuses));
          if (rng() % 2) add_bool(a, "server.tls", rng() % 2 == 0);
        };
        switch (m % 3) {
          case 0: {  // monotonic cumulative sum
            metric->set_name("http.server.requests." + std::to_string(m));
            metric->set_unit("{request}");
            auto* sum = metric->mutable_sum();
            sum->set_aggregation_temporality(mt::AGGREGATION_TEMPORALITY_CUMULATIVE);
            sum->set_is_monotonic(true);
            for (size_t p = 0; p < points; ++p) {
              auto* dp = sum->add_data_points();
              point_attrs(dp->mutable_attributes());
              dp->set_start_time_unix_nano(t0 - 60'000'000'000ULL);
              dp->set_time_unix_nano(time_placeholder(static_cast<uint32_t>(done + p)));
              dp->set_as_int(static_cast<int64_t>(rng() % 1'000'000));
            }
            break;
          }
          case 1: {  // gauge
            metric->set_name("process.memory.usage." + std::to_string(m));
            metric->set_unit("By");
            auto* gauge = metric->mutable_gauge();
            for (size_t p = 0; p < points; ++p) {
              auto* dp = gauge->add_data_points();
              point_attrs(dp->mutable_attributes());
              dp->set_time_unix_nano(time_placeholder(static_cast<uint32_t>(done + p)));
              dp->set_as_double(static_cast<double>(rng() % 1'000'000'000) / 7.0);
            }
            break;
          }
          default: {  // explicit-bucket histogram
            metric->set_name("http.server.request.duration." + std::to_string(m));
            metric->set_unit("s");
            auto* h = metric->mutable_histogram();
            h->set_aggregation_temporality(mt::AGGREGATION_TEMPORALITY_CUMULATIVE);
            static const double kBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
            for (size_t p = 0; p < points; ++p) {
              auto* dp = h->add_data_points();
              point_attrs(dp->mutable_attributes());
              dp->set_start_time_unix_nano(t0 - 60'000'000'000ULL);
              dp->set_time_unix_nano(time_placeholder(static_cast<uint32_t>(done + p)));
              uint64_t count = 0;
              for (double b : kBounds) dp->add_explicit_bounds(b);
              for (size_t b = 0; b <= std::size(kBounds); ++b) {
                uint64_t c = rng() % 100;
                count += c;
                dp->add_bucket_counts(c);
              }
              dp->set_count(count);
              dp->set_sum(static_cast<double>(count) * 0.042);
              dp->set_min(0.001);
              dp->set_max(7.5);
            }
            break;
          }
        }
        metric->set_description("generated by otlpd-loadgen");
        done += points;
      }
      bytes = req.SerializeAsString();
      if (json) {
        bytes.clear();
        otlp::message_to_json(req, &bytes);
      }
      break;
    }
    case otlp::Signal::logs: {
      col::logs::v1::ExportLogsServiceRequest req;
      auto* rl = req.add_resource_logs();
      fill_resource(rng, variant_seed, rl->mutable_resource()->mutable_attributes());
      auto* sl = rl->add_scope_logs();
      fill_scope(sl->mutable_scope());
      static const std::vector<std::pair<lg::SeverityNumber, std::string>> kSeverities = {
          {lg::SEVERITY_NUMBER_INFO, "INFO"}, {lg::SEVERITY_NUMBER_INFO, "INFO"}, {lg::SEVERITY_NUMBER_DEBUG, "DEBUG"},
          {lg::SEVERITY_NUMBER_WARN, "WARN"}, {lg::SEVERITY_NUMBER_ERROR, "ERROR"}};
      for (size_t i = 0; i < n; ++i) {
        auto* rec = sl->add_log_records();
        rec->set_time_unix_nano(time_placeholder(static_cast<uint32_t>(i)));
        rec->set_observed_time_unix_nano(t0 + rng() % 1'000'000'000ULL);
        const auto& sev = pick(rng, kSeverities);
        rec->set_severity_number(sev.first);
        rec->set_severity_text(sev.second);
        const std::string& route = pick(rng, kRoutes);
        rec->mutable_body()->set_string_value(pick(rng, kMethods) + " " + route + " completed in " +
                                              std::to_string(rng() % 5000) + " ms for user-" +
                                              std::to_string(rng() % 1000000));
        auto* a = rec->mutable_attributes();
        add_str(a, "http.route", route);
        add_int(a, "http.status_code", pick(rng, kStatuses));
        add_str(a, "enduser.id", "user-" + std::to_string(rng() % 1000000));
        add_double(a, "duration_ms", static_cast<double>(rng() % 100000) / 10.0);
        if (rng() % 2) add_bool(a, "retry", rng() % 2 == 0);
        add_str(a, "logger.name", "com.example.http.AccessLog");
        rec->set_flags(1);
        rec->set_trace_id(id_placeholder(16, Kind::trace_id, static_cast<uint32_t>(i)));
        rec->set_span_id(id_placeholder(8, Kind::span_id, static_cast<uint32_t>(i)));
      }
      bytes = req.SerializeAsString();
      if (json) {
        bytes.clear();
        otlp::message_to_json(req, &bytes);
      }
      break;
    }
  }

  // Find each placeholder exactly once; its offset is where make() writes the real value.
  Template t;
  t.sites.reserve(places.size());
  for (const auto& p : places) {
    const std::string& needle = json ? p.json : p.proto;
    size_t at = bytes.find(needle);
    if (at == std::string::npos || bytes.find(needle, at + 1) != std::string::npos) return false;
    t.sites.push_back({json ? at + 1 : at, p.kind, p.local});  // JSON: skip the opening quote
  }
  t.bytes = std::move(bytes);
  *out = std::move(t);
  return true;
}

void PayloadGenerator::patch(const Template& t, uint64_t index, std::string* out) const {
  out->assign(t.bytes);
  char* data = out->data();
  const uint64_t n = options_.items_per_request;
  const uint64_t first_item = index * n;
  // Logs carry one trace per record (their trace context); spans group kSpansPerTrace per trace.
  const bool logs = options_.signal == otlp::Signal::logs;
  const uint64_t first_trace = logs ? first_item : index * traces_per_request_;
  const bool json = options_.format == Format::json;
  char buf[16];
  for (const Site& s : t.sites) {
    switch (s.kind) {
      case Kind::trace_id:
        put_be64(buf, trace_hi_);
        put_be64(buf + 8, first_trace + s.local + 1);
        if (json) put_hex(data + s.offset, buf, 16); else std::memcpy(data + s.offset, buf, 16);
        break;
      case Kind::span_id:
      case Kind::parent_span_id: {
        uint64_t item = s.local;
        if (s.kind == Kind::parent_span_id) {
          const uint64_t trace_start = item - item % kSpansPerTrace;
          item = trace_start + (item % kSpansPerTrace - 1) / 2;
        }
        put_be64(buf, (first_item + item + 1) ^ span_mask_);
        if (json) put_hex(data + s.offset, buf, 8); else std::memcpy(data + s.offset, buf, 8);
        break;
      }
      case Kind::time: {
        const uint64_t v = time_ns(first_item + s.local);
        if (json) put_dec19(data + s.offset, v); else put_le64(data + s.offset, v);
        break;
      }
    }
  }
}

void PayloadGenerator::make(uint64_t index, std::string* out) const {
  patch(templates_[index % templates_.size()], index, out);
}

}  // namespace otlpd::loadgen
