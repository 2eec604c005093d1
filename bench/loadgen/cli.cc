// Command-line parsing for otlpd-loadgen. Pure; see cli.h.
#include "bench/loadgen/cli.h"

#include <cstdlib>
#include <functional>
#include <map>

namespace otlpd::loadgen {

namespace {

bool parse_u64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18) return false;
  *out = std::stoull(s);
  return true;
}

bool parse_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || !(v >= 0)) return false;
  *out = v;
  return true;
}

// Options table: name -> (takes a value, apply). Flags take no value.
struct Opt {
  bool takes_value;
  std::function<bool(const std::string&)> apply;  // false: invalid value
};

std::string parse(const std::vector<std::string>& args, const std::map<std::string, Opt>& table) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::optional<std::string> value;
    if (name.rfind("--", 0) != 0) return "unexpected argument \"" + name + "\"";
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto it = table.find(name);
    if (it == table.end()) return "unknown option " + name;
    if (it->second.takes_value && !value) {
      if (i + 1 >= args.size()) return name + " needs a value";
      value = args[++i];
    }
    if (!it->second.takes_value && value) return name + " takes no value";
    if (!it->second.apply(value.value_or(""))) return "invalid value for " + name + ": \"" + value.value_or("") + "\"";
  }
  return "";
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  size_t unit_at = text.find_first_not_of("0123456789.");
  std::string number = text.substr(0, unit_at);
  std::string unit = unit_at == std::string::npos ? "s" : text.substr(unit_at);
  double v = 0;
  if (!parse_double(number, &v)) return std::nullopt;
  double ms;
  if (unit == "ms") ms = v;
  else if (unit == "s") ms = v * 1000;
  else if (unit == "m") ms = v * 60'000;
  else return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

std::string parse_send_args(const std::vector<std::string>& args, SendOptions* o) {
  auto positive = [](const std::string& s, size_t* out) {
    uint64_t v;
    if (!parse_u64(s, &v) || v == 0) return false;
    *out = static_cast<size_t>(v);
    return true;
  };
  bool endpoint_given = false;
  std::map<std::string, Opt> table = {
      {"--signal", {true, [&](const std::string& v) {
         auto s = otlp::parse_signal(v);
         if (s) o->signal = *s;
         return s.has_value();
       }}},
      {"--protocol", {true, [&](const std::string& v) {
         if (v == "grpc") o->protocol = Protocol::grpc;
         else if (v == "http-proto" || v == "http/protobuf") o->protocol = Protocol::http_proto;
         else if (v == "http-json" || v == "http/json") o->protocol = Protocol::http_json;
         else return false;
         return true;
       }}},
      {"--endpoint", {true, [&](const std::string& v) {
         endpoint_given = true;
         o->endpoint = v;
         return v.find(':') != std::string::npos;
       }}},
      {"--rate", {true, [&](const std::string& v) { return parse_double(v, &o->rate); }}},
      {"--duration", {true, [&](const std::string& v) {
         auto d = parse_duration(v);
         if (d) o->duration = *d;
         return d.has_value() && d->count() > 0;
       }}},
      {"--requests", {true, [&](const std::string& v) { return parse_u64(v, &o->requests) && o->requests > 0; }}},
      {"--connections", {true, [&](const std::string& v) { return positive(v, &o->connections); }}},
      {"--concurrency", {true, [&](const std::string& v) { return positive(v, &o->concurrency); }}},
      {"--items-per-request", {true, [&](const std::string& v) { return positive(v, &o->items_per_request); }}},
      {"--gzip", {false, [&](const std::string&) { return o->gzip = true; }}},
      {"--seed", {true, [&](const std::string& v) { return parse_u64(v, &o->seed); }}},
      {"--timeout", {true, [&](const std::string& v) {
         auto d = parse_duration(v);
         if (d) o->timeout = *d;
         return d.has_value() && d->count() > 0;
       }}},
      {"--threads", {true, [&](const std::string& v) { return positive(v, &o->threads); }}},
      {"--acked-file", {true, [&](const std::string& v) {
         o->acked_file = v;
         return !v.empty();
       }}},
  };
  std::string error = parse(args, table);
  if (!error.empty()) return error;
  if (!endpoint_given && o->protocol != Protocol::grpc) o->endpoint = "127.0.0.1:4318";
  return "";
}

std::string parse_sink_args(const std::vector<std::string>& args, SinkOptions* o) {
  std::map<std::string, Opt> table = {
      {"--grpc", {true, [&](const std::string& v) { o->grpc_endpoint = v; return true; }}},
      {"--http", {true, [&](const std::string& v) { o->http_endpoint = v; return true; }}},
      {"--mode", {true, [&](const std::string& v) {
         if (v == "ok") o->mode = SinkMode::ok;
         else if (v == "fail") o->mode = SinkMode::fail;
         else if (v == "stall") o->mode = SinkMode::stall;
         else if (v == "refuse") o->mode = SinkMode::refuse;
         else return false;
         return true;
       }}},
      {"--fail-rate", {true, [&](const std::string& v) { return parse_double(v, &o->fail_rate) && o->fail_rate <= 1.0; }}},
      {"--report-interval", {true, [&](const std::string& v) {
         auto d = parse_duration(v);
         if (d) o->report_interval = *d;
         return d.has_value();
       }}},
      {"--stall", {true, [&](const std::string& v) {
         auto d = parse_duration(v);
         if (d) o->stall = *d;
         return d.has_value();
       }}},
      {"--delay", {true, [&](const std::string& v) {
         auto d = parse_duration(v);
         if (d) o->delay = *d;
         return d.has_value();
       }}},
      {"--distinct", {false, [&](const std::string&) { return o->distinct = true; }}},
      {"--ids-file", {true, [&](const std::string& v) {
         o->ids_file = v;
         o->distinct = true;
         return !v.empty();
       }}},
      {"--ports-file", {true, [&](const std::string& v) { o->ports_file = v; return !v.empty(); }}},
      {"--threads", {true, [&](const std::string& v) {
         uint64_t n;
         if (!parse_u64(v, &n) || n == 0) return false;
         o->threads = static_cast<size_t>(n);
         return true;
       }}},
      {"--counts-only", {false, [](const std::string&) { return true; }}},
  };
  return parse(args, table);
}

std::string usage() {
  return R"(usage:
  otlpd-loadgen send [options]      generate OTLP load and report what the server acknowledged
    --signal traces|metrics|logs    (traces)
    --protocol grpc|http-proto|http-json   (grpc)
    --endpoint HOST:PORT            (127.0.0.1:4317 for grpc, 127.0.0.1:4318 for http)
    --rate N                        items/s; as fast as possible when absent
    --duration D                    run time, e.g. 10s, 500ms, 1m (10s)
    --requests N                    stop after N requests instead of a duration
    --connections C                 gRPC channels / HTTP connections (1)
    --concurrency K                 requests in flight per connection (1)
    --items-per-request N           spans, data points or log records per request (100)
    --gzip                          compress requests
    --seed S                        payload content seed (1)
    --timeout D                     per-request timeout (10s)
    --threads N                     HTTP client I/O threads (2)
    --acked-file F                  at exit, write the id of every item the server acknowledged to F
                                    in hex, one per line (the sink's --ids-file format)
  otlpd-loadgen sink [options]      count received OTLP until SIGTERM/SIGINT, then print RESULT
    --grpc HOST:PORT | none         (127.0.0.1:4317; port 0 picks one)
    --http HOST:PORT | none         (127.0.0.1:4318; port 0 picks one)
    --mode ok|fail|stall|refuse     (ok)
    --fail-rate F                   fail mode: fraction of requests failed (1.0)
    --report-interval D             a line per interval; 0 for none (1s)
    --stall D                       stall mode: how long to hold each request (30s)
    --delay D                       ok, fail, refuse: hold each request D, then answer (0: at once)
    --distinct                      also count distinct and duplicate accepted items (by their ids)
    --ids-file F                    with --distinct (implied): write every distinct item id in hex to F
                                    at exit, one per line
    --ports-file F                  also write "grpc=PORT http=PORT" to F
    --threads N                     gRPC and HTTP server threads, each (4)
    --counts-only                   only count items (the default)
)";
}

}  // namespace otlpd::loadgen
