#include "daemon/metrics_server.h"

#include <sys/resource.h>

#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "pipeline/memory_limiter.h"

#ifndef OTLPD_VERSION
#define OTLPD_VERSION "unknown"
#endif

namespace otlpd {

// ---------------------------------------------------------------------------------------------
// Exposition

namespace {

// The Collector's item noun per signal; anything else keeps its `_items` name.
std::optional<std::string_view> item_noun(std::string_view signal) {
  if (signal == "traces") return "spans";
  if (signal == "metrics") return "metric_points";
  if (signal == "logs") return "log_records";
  return std::nullopt;
}

bool name_char(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (c == ':') return colon_ok;
  return !first && c >= '0' && c <= '9';
}

// Metric names may hold colons, label names not; an invalid character becomes `_`.
std::string valid_name(std::string_view name, bool colon_ok) {
  std::string out;
  out.reserve(name.size() + 1);
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) out += '_';
  for (char c : name) out += name_char(c, out.empty(), colon_ok) ? c : '_';
  return out;
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Shortest text that reads back as the same double: "5", "0.25", "1e+21".
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

const char* type_name(Telemetry::Kind kind) { return kind == Telemetry::Kind::gauge ? "gauge" : "counter"; }

}  // namespace

PromSample expose(const Telemetry::Sample& sample) {
  PromSample out{sample.name, sample.labels, static_cast<double>(sample.value), sample.kind, {}};
  constexpr std::string_view kSuffix = "_items";
  const std::string_view name = sample.name;
  auto signal = sample.labels.find("signal");
  if (signal == sample.labels.end() || name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return out;
  auto noun = item_noun(signal->second);
  if (!noun) return out;
  out.name = std::string(name.substr(0, name.size() - kSuffix.size())) + "_" + std::string(*noun);
  out.labels.erase("signal");
  return out;
}

std::string render_prometheus(const std::vector<PromSample>& samples) {
  struct Family {
    Telemetry::Kind kind;
    std::string help;
    std::map<Telemetry::Labels, double> series;  // map: sorted by labels, equal ones summed
  };
  std::map<std::string, Family> families;  // map: sorted by name
  for (const auto& s : samples) {
    Telemetry::Labels labels;
    for (const auto& [k, v] : s.labels) labels[valid_name(k, false)] = v;
    auto [it, added] = families.try_emplace(valid_name(s.name, true), Family{s.kind, s.help, {}});
    (void)added;  // a family's kind and help come from its first sample
    it->second.series[labels] += s.value;
  }
  std::string out;
  for (const auto& [name, family] : families) {
    std::string help = family.help.empty()
                           ? std::string("otlpd internal ") + type_name(family.kind) + "."
                           : family.help;
    out += "# HELP " + name + " " + escape_help(help) + "\n";
    out += "# TYPE " + name + " " + type_name(family.kind) + "\n";
    for (const auto& [labels, value] : family.series) {
      out += name;
      if (!labels.empty()) {
        out += '{';
        bool first = true;
        for (const auto& [k, v] : labels) {
          if (!first) out += ',';
          first = false;
          out += k + "=\"" + escape_label_value(v) + "\"";
        }
        out += '}';
      }
      out += ' ' + format_value(value) + '\n';
    }
  }
  return out;
}

std::vector<PromSample> process_samples(Clock::time_point process_start) {
  using Kind = Telemetry::Kind;
  std::vector<PromSample> out;
  out.push_back({"otlpd_process_memory_rss", {}, static_cast<double>(resident_memory_bytes()), Kind::gauge,
                 "Resident memory of the otlpd process, in bytes."});
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    auto seconds = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    out.push_back({"otlpd_process_cpu_seconds", {}, seconds(usage.ru_utime) + seconds(usage.ru_stime), Kind::counter,
                   "CPU time (user and system) used by the otlpd process, in seconds."});
  }
  const std::chrono::duration<double> up = Clock::now() - process_start;
  out.push_back({"otlpd_process_uptime", {}, up.count(), Kind::counter, "Seconds since otlpd started."});
  out.push_back({"otlpd_build_info", {{"version", OTLPD_VERSION}}, 1, Kind::gauge, "The otlpd build; always 1."});
  return out;
}

std::string metrics_page(const Telemetry& telemetry, Clock::time_point process_start) {
  std::vector<PromSample> samples = process_samples(process_start);
  for (const auto& s : telemetry.snapshot()) samples.push_back(expose(s));
  return render_prometheus(samples);
}

// ---------------------------------------------------------------------------------------------
// MetricsServer

namespace {

constexpr const char* kMetricsPath = "/metrics";

AdminRoutes metrics_routes(const Telemetry& telemetry, Clock::time_point process_start) {
  AdminRoutes routes;
  routes[kMetricsPath] = [&telemetry, process_start] {
    return AdminReply{200, kPrometheusContentType, metrics_page(telemetry, process_start), {}};
  };
  return routes;
}

}  // namespace

MetricsServer::MetricsServer(boost::asio::io_context& io, std::string address, const Telemetry& telemetry,
                             Clock::time_point process_start)
    : server_(io, std::move(address), metrics_routes(telemetry, process_start),
              std::string("not found; otlpd serves its metrics at ") + kMetricsPath) {}

Status MetricsServer::start() { return server_.start(); }

uint16_t MetricsServer::port() const { return server_.port(); }

std::string MetricsServer::url() const { return server_.url(kMetricsPath); }

void MetricsServer::stop() { server_.stop(); }

}  // namespace otlpd
