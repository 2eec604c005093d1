#include <catch2/catch.hpp>

#include <random>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/wire.h"

using namespace otlpd::otlp;
namespace col = opentelemetry::proto::collector;
namespace metrics = opentelemetry::proto::metrics::v1;

namespace {

std::string id_bytes(uint64_t n, size_t width) {
  std::string s(width, '\0');
  for (size_t i = 0; i < 8 && i < width; ++i) s[width - 1 - i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// Random shape: 1-3 resources, 0-3 scopes each, 0-40 spans each; span ids count up from 1.
col::trace::v1::ExportTraceServiceRequest random_traces(std::mt19937& rng, uint64_t* next_id) {
  col::trace::v1::ExportTraceServiceRequest req;
  int resources = 1 + static_cast<int>(rng() % 3);
  for (int r = 0; r < resources; ++r) {
    auto* rs = req.add_resource_spans();
    auto* attr = rs->mutable_resource()->add_attributes();
    attr->set_key("service.name");
    attr->mutable_value()->set_string_value("svc-" + std::to_string(r));
    rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
    int scopes = static_cast<int>(rng() % 4);
    for (int s = 0; s < scopes; ++s) {
      auto* ss = rs->add_scope_spans();
      ss->mutable_scope()->set_name("scope-" + std::to_string(s));
      int spans = static_cast<int>(rng() % 41);
      for (int i = 0; i < spans; ++i) {
        auto* span = ss->add_spans();
        span->set_trace_id(id_bytes(*next_id, 16));
        span->set_span_id(id_bytes((*next_id)++, 8));
        span->set_name("op");
        span->set_start_time_unix_nano(1'700'000'000'000'000'000ULL);
        auto* a = span->add_attributes();
        a->set_key("http.status_code");
        a->mutable_value()->set_int_value(200);
      }
    }
  }
  return req;
}

std::vector<std::string> span_ids(const col::trace::v1::ExportTraceServiceRequest& req) {
  std::vector<std::string> ids;
  for (const auto& rs : req.resource_spans())
    for (const auto& ss : rs.scope_spans())
      for (const auto& span : ss.spans()) ids.push_back(span.span_id());
  return ids;
}

col::metrics::v1::ExportMetricsServiceRequest metrics_request() {
  col::metrics::v1::ExportMetricsServiceRequest req;
  auto* sm = req.add_resource_metrics()->add_scope_metrics();
  auto* gauge = sm->add_metrics();
  gauge->set_name("g");
  for (int i = 0; i < 7; ++i) gauge->mutable_gauge()->add_data_points()->set_as_int(i);
  auto* sum = sm->add_metrics();
  sum->set_name("s");
  sum->mutable_sum()->set_is_monotonic(true);
  sum->mutable_sum()->set_aggregation_temporality(metrics::AGGREGATION_TEMPORALITY_CUMULATIVE);
  for (int i = 0; i < 5; ++i) sum->mutable_sum()->add_data_points()->set_as_double(i + 0.5);
  auto* hist = sm->add_metrics();
  hist->set_name("h");
  for (int i = 0; i < 3; ++i) hist->mutable_histogram()->add_data_points()->set_count(10 + i);
  auto* exp = sm->add_metrics();
  exp->set_name("e");
  exp->mutable_exponential_histogram()->add_data_points()->set_count(4);
  auto* summary = sm->add_metrics();
  summary->set_name("q");
  summary->mutable_summary()->add_data_points()->set_count(2);
  summary->mutable_summary()->add_data_points()->set_count(3);
  return req;
}

}  // namespace

TEST_CASE("count_items agrees with protobuf's parser on random trace requests", "[wire]") {
  std::mt19937 rng(42);
  uint64_t next_id = 1;
  for (int round = 0; round < 200; ++round) {
    auto req = random_traces(rng, &next_id);
    std::string bytes = req.SerializeAsString();
    WalkResult r = count_items(Signal::traces, bytes);
    REQUIRE(r.ok);
    CHECK(r.items == span_ids(req).size());
  }
}

TEST_CASE("count_items counts metric data points of every metric type", "[wire]") {
  WalkResult r = count_items(Signal::metrics, metrics_request().SerializeAsString());
  REQUIRE(r.ok);
  CHECK(r.items == 7 + 5 + 3 + 1 + 2);
}

TEST_CASE("count_items counts log records", "[wire]") {
  col::logs::v1::ExportLogsServiceRequest req;
  for (int r = 0; r < 2; ++r) {
    auto* sl = req.add_resource_logs()->add_scope_logs();
    for (int i = 0; i < 9; ++i) sl->add_log_records()->mutable_body()->set_string_value("line");
  }
  WalkResult w = count_items(Signal::logs, req.SerializeAsString());
  REQUIRE(w.ok);
  CHECK(w.items == 18);
}

TEST_CASE("an empty request holds zero items", "[wire]") {
  WalkResult r = count_items(Signal::traces, "");
  CHECK(r.ok);
  CHECK(r.items == 0);
}

TEST_CASE("malformed requests are rejected with where it went wrong", "[wire]") {
  std::mt19937 rng(7);
  uint64_t next_id = 1;
  auto req = random_traces(rng, &next_id);
  while (span_ids(req).empty()) req = random_traces(rng, &next_id);
  std::string bytes = req.SerializeAsString();

  SECTION("truncated") {
    WalkResult r = count_items(Signal::traces, bytes.substr(0, bytes.size() - 3));
    CHECK_FALSE(r.ok);
    CHECK(r.error.rfind("request: field length ", 0) == 0);
  }
  SECTION("a length pointing past the end") {
    std::string bad;
    append_tag(&bad, 1, 2);
    append_varint(&bad, 900);
    bad += "abc";
    WalkResult r = count_items(Signal::traces, bad);
    CHECK_FALSE(r.ok);
    CHECK(r.error == "request: field length 900 exceeds the 3 bytes remaining");
  }
  SECTION("a resource_spans field that is not a message") {
    std::string bad;
    append_tag(&bad, 1, 0);
    append_varint(&bad, 5);
    WalkResult r = count_items(Signal::traces, bad);
    CHECK_FALSE(r.ok);
    CHECK(r.error == "request: field 1 has wire type 0, expected a message");
  }
  SECTION("garbage inside a span") {
    std::string span_garbage = "\xff\xff\xff";
    std::string scope;
    append_tag(&scope, 2, 2);
    append_varint(&scope, span_garbage.size());
    scope += span_garbage;
    std::string resource;
    append_tag(&resource, 2, 2);
    append_varint(&resource, scope.size());
    resource += scope;
    std::string request;
    append_tag(&request, 1, 2);
    append_varint(&request, resource.size());
    request += resource;
    WalkResult r = count_items(Signal::traces, request);
    CHECK_FALSE(r.ok);
    CHECK(r.error == "resource_spans[0].scope_spans[0].spans[0]: malformed protobuf");
  }
  SECTION("random bytes never crash") {
    std::mt19937 noise(99);
    for (int i = 0; i < 2000; ++i) {
      std::string junk(noise() % 64, '\0');
      for (auto& c : junk) c = static_cast<char>(noise());
      for (Signal s : {Signal::traces, Signal::metrics, Signal::logs}) (void)count_items(s, junk);
    }
  }
}

TEST_CASE("split_items cuts traces into valid requests keeping order and envelopes", "[wire]") {
  std::mt19937 rng(1234);
  uint64_t next_id = 1;
  for (int round = 0; round < 100; ++round) {
    auto req = random_traces(rng, &next_id);
    std::string bytes = req.SerializeAsString();
    const size_t total = span_ids(req).size();
    const size_t max = 1 + rng() % 30;
    const size_t first = 1 + rng() % max;
    std::vector<Piece> pieces;
    split_items(Signal::traces, bytes, first, max, &pieces);

    std::vector<std::string> seen;
    size_t sum = 0;
    for (size_t i = 0; i < pieces.size(); ++i) {
      col::trace::v1::ExportTraceServiceRequest piece;
      REQUIRE(piece.ParseFromString(pieces[i].bytes));
      auto ids = span_ids(piece);
      CHECK(ids.size() == pieces[i].items);
      CHECK(count_items(Signal::traces, pieces[i].bytes).items == pieces[i].items);
      // Every piece is full except the last; the first holds `first`.
      if (i + 1 < pieces.size()) CHECK(pieces[i].items == (i == 0 ? first : max));
      CHECK(pieces[i].items <= (i == 0 ? first : max));
      for (const auto& rs : piece.resource_spans()) {
        CHECK(rs.resource().attributes(0).key() == "service.name");
        CHECK(rs.schema_url() == "https://opentelemetry.io/schemas/1.21.0");
        for (const auto& ss : rs.scope_spans()) {
          CHECK(ss.spans_size() > 0);
          CHECK(ss.scope().name().rfind("scope-", 0) == 0);
        }
      }
      seen.insert(seen.end(), ids.begin(), ids.end());
      sum += pieces[i].items;
    }
    CHECK(sum == total);
    CHECK(seen == span_ids(req));
  }
}

TEST_CASE("a reused Splitter cuts every request exactly as a fresh one does", "[wire]") {
  std::mt19937 rng(99);
  uint64_t next_id = 1;
  Splitter reused;
  for (int round = 0; round < 200; ++round) {
    const std::string bytes = random_traces(rng, &next_id).SerializeAsString();
    const size_t max = 1 + rng() % 30;
    const size_t first = 1 + rng() % max;
    std::vector<Piece> fresh;
    split_items(Signal::traces, bytes, first, max, &fresh);
    auto pieces = reused.split(Signal::traces, bytes, first, max);
    REQUIRE(pieces.size() == fresh.size());
    for (size_t i = 0; i < pieces.size(); ++i) {
      CHECK(pieces[i].bytes == fresh[i].bytes);
      CHECK(pieces[i].items == fresh[i].items);
    }
  }
}

TEST_CASE("split_items cuts metrics at data points and repeats the metric", "[wire]") {
  auto req = metrics_request();
  std::vector<Piece> pieces;
  split_items(Signal::metrics, req.SerializeAsString(), 4, 4, &pieces);
  REQUIRE(pieces.size() == 5);  // 18 points: 4,4,4,4,2
  std::vector<std::string> names_per_piece;
  int64_t gauge_values = 0;
  size_t points = 0;
  for (const auto& p : pieces) {
    col::metrics::v1::ExportMetricsServiceRequest piece;
    REQUIRE(piece.ParseFromString(p.bytes));
    std::string names;
    for (const auto& m : piece.resource_metrics(0).scope_metrics(0).metrics()) {
      names += m.name();
      if (m.has_gauge()) {
        for (const auto& dp : m.gauge().data_points()) gauge_values += dp.as_int();
        points += static_cast<size_t>(m.gauge().data_points_size());
      }
      if (m.has_sum()) {
        CHECK(m.sum().is_monotonic());
        CHECK(m.sum().aggregation_temporality() == metrics::AGGREGATION_TEMPORALITY_CUMULATIVE);
        points += static_cast<size_t>(m.sum().data_points_size());
      }
      if (m.has_histogram()) points += static_cast<size_t>(m.histogram().data_points_size());
      if (m.has_exponential_histogram()) points += static_cast<size_t>(m.exponential_histogram().data_points_size());
      if (m.has_summary()) points += static_cast<size_t>(m.summary().data_points_size());
    }
    names_per_piece.push_back(names);
  }
  CHECK(names_per_piece == std::vector<std::string>{"g", "gs", "s", "he", "q"});
  CHECK(gauge_values == 0 + 1 + 2 + 3 + 4 + 5 + 6);
  CHECK(points == 18);
}

TEST_CASE("split_items with room for everything returns one piece equal in content", "[wire]") {
  std::mt19937 rng(5);
  uint64_t next_id = 1;
  auto req = random_traces(rng, &next_id);
  while (span_ids(req).empty()) req = random_traces(rng, &next_id);
  std::vector<Piece> pieces;
  split_items(Signal::traces, req.SerializeAsString(), 1000, 1000, &pieces);
  REQUIRE(pieces.size() == 1);
  col::trace::v1::ExportTraceServiceRequest back;
  REQUIRE(back.ParseFromString(pieces[0].bytes));
  CHECK(span_ids(back) == span_ids(req));
}
