// Tests for the file exporter: config parsing, JSON and proto output, rotation, the shared writer.
#include "exporters/file/file_exporter.h"

#include <stdlib.h>

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <google/protobuf/util/message_differencer.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/json_codec.h"
#include "pipeline/telemetry.h"

namespace otlpd {
namespace {

namespace fs = std::filesystem;
using opentelemetry::proto::collector::logs::v1::ExportLogsServiceRequest;
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

// A fresh directory under /tmp, removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "otlpd-file-test-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

ExportTraceServiceRequest trace_request(const std::string& span_name) {
  ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("checkout");
  auto* span = rs->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x01'));
  span->set_span_id(std::string(8, '\x02'));
  span->set_name(span_name);
  span->set_start_time_unix_nano(1'700'000'000'000'000'000ull);
  span->set_end_time_unix_nano(1'700'000'000'500'000'000ull);
  return req;
}

std::string log_request_bytes(const std::string& body) {
  ExportLogsServiceRequest req;
  auto* rec = req.add_resource_logs()->add_scope_logs()->add_log_records();
  rec->mutable_body()->set_string_value(body);
  return req.SerializeAsString();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Sends one batch and returns the status handed to done (FileSender calls done inline).
Status send_sync(Sender& sender, Signal signal, std::string payload) {
  std::promise<Status> result;
  auto future = result.get_future();
  sender.send(make_batch(signal, std::move(payload), 1), Clock::now() + std::chrono::seconds(5),
              [&](Status s) { result.set_value(std::move(s)); });
  REQUIRE(future.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  return future.get();
}

struct Parsed {
  config::Errors errors;
  std::unique_ptr<FileExporterConfig> config;
};

Parsed parse_yaml(const std::string& yaml) {
  Parsed p;
  config::Node node(YAML::Load(yaml), "exporters.file", &p.errors);
  ComponentConfigPtr cfg = FileExporterFactory().parse(node);
  p.config.reset(static_cast<FileExporterConfig*>(cfg.release()));
  return p;
}

std::shared_ptr<FileWriter> make_writer(const std::string& path) {
  FileWriter::Options o;
  o.path = path;
  return std::make_shared<FileWriter>(o);
}

}  // namespace

TEST_CASE("file config: defaults and every key", "[file]") {
  Parsed p = parse_yaml(R"(
path: /var/log/otlpd/out.jsonl
format: proto
flush_interval: 2s
timeout: 7s
rotation:
  max_megabytes: 10
  max_days: 3
  max_backups: 4
  localtime: true
)");
  REQUIRE(p.errors.to_string() == "");
  CHECK(p.config->path == "/var/log/otlpd/out.jsonl");
  CHECK(p.config->format == FileFormat::proto);
  CHECK(p.config->flush_interval == std::chrono::milliseconds(2000));
  CHECK(p.config->exporter.timeout == std::chrono::milliseconds(7000));
  REQUIRE(p.config->rotation.has_value());
  CHECK(p.config->rotation->max_megabytes == 10);
  CHECK(p.config->rotation->max_days == 3);
  CHECK(p.config->rotation->max_backups == 4);
  CHECK(p.config->rotation->localtime == true);

  Parsed d = parse_yaml("path: out.jsonl\n");
  REQUIRE(d.errors.empty());
  CHECK(d.config->format == FileFormat::json);
  CHECK_FALSE(d.config->rotation.has_value());
  CHECK(d.config->flush_interval == std::chrono::milliseconds(1000));

  Parsed r = parse_yaml("path: out.jsonl\nrotation: {}\n");
  REQUIRE(r.errors.empty());
  REQUIRE(r.config->rotation.has_value());
  CHECK(r.config->rotation->max_megabytes == 100);
  CHECK(r.config->rotation->max_days == 0);
  CHECK(r.config->rotation->max_backups == 100);
  CHECK(r.config->rotation->localtime == false);
  CHECK(FileWriter::options_from(*r.config).max_bytes == 100ull * 1024 * 1024);
}

TEST_CASE("file config: errors name their key", "[file]") {
  CHECK(parse_yaml("format: json\n").errors.to_string() == "exporters.file.path: required");
  CHECK(parse_yaml("path: a\nformat: xml\n").errors.to_string() ==
        "exporters.file.format: invalid value \"xml\" (expected one of: json, proto)");
  CHECK(parse_yaml("path: a\nbogus: 1\n").errors.to_string() == "exporters.file.bogus: unknown key");
  CHECK(parse_yaml("path: a\nrotation: {max_megabytes: 0}\n").errors.to_string() ==
        "exporters.file.rotation.max_megabytes: must be between 1 and 1048576, got 0");
  CHECK(parse_yaml("path: a\nrotation: {max_backup: 3}\n").errors.to_string() ==
        "exporters.file.rotation.max_backup: unknown key");
  CHECK(parse_yaml("path: a\nflush_interval: 0\n").errors.to_string() ==
        "exporters.file.flush_interval: must be positive");
}

TEST_CASE("file json: one OTLP/JSON request per line, round trip", "[file]") {
  TempDir dir;
  FileSender sender(Signal::traces, FileFormat::json, make_writer(dir.file("out.jsonl")));
  REQUIRE(sender.start().is_ok());

  ExportTraceServiceRequest first = trace_request("GET /cart");
  ExportTraceServiceRequest second = trace_request("POST /pay");
  REQUIRE(send_sync(sender, Signal::traces, first.SerializeAsString()).is_ok());
  REQUIRE(send_sync(sender, Signal::traces, second.SerializeAsString()).is_ok());

  std::string text = read_file(dir.file("out.jsonl"));
  CHECK(text.back() == '\n');
  std::vector<std::string> lines = split_lines(text);
  REQUIRE(lines.size() == 2);
  const ExportTraceServiceRequest* expected[] = {&first, &second};
  for (size_t i = 0; i < 2; ++i) {
    ExportTraceServiceRequest back;
    REQUIRE(otlp::json_to_message(lines[i], back) == "");
    CHECK(google::protobuf::util::MessageDifferencer::Equals(back, *expected[i]));
  }
}

TEST_CASE("file json: malformed protobuf is a permanent error and writes nothing", "[file]") {
  TempDir dir;
  FileSender sender(Signal::traces, FileFormat::json, make_writer(dir.file("out.jsonl")));
  REQUIRE(sender.start().is_ok());
  Status s = send_sync(sender, Signal::traces, std::string("\x0a\x7f\x01", 3));  // length 127, 1 byte present
  CHECK(s.code() == Status::Code::invalid_argument);
  CHECK_FALSE(s.retryable());
  CHECK(read_file(dir.file("out.jsonl")).empty());
}

TEST_CASE("file proto: 4-byte big-endian length then the request bytes", "[file]") {
  TempDir dir;
  FileSender sender(Signal::logs, FileFormat::proto, make_writer(dir.file("out.bin")));
  REQUIRE(sender.start().is_ok());
  std::string a = log_request_bytes("first");
  std::string b = log_request_bytes(std::string(300, 'x'));  // length needs two bytes
  REQUIRE(send_sync(sender, Signal::logs, a).is_ok());
  REQUIRE(send_sync(sender, Signal::logs, b).is_ok());

  std::string text = read_file(dir.file("out.bin"));
  REQUIRE(text.size() == 8 + a.size() + b.size());
  auto length_at = [&](size_t at) {
    return (uint32_t(uint8_t(text[at])) << 24) | (uint32_t(uint8_t(text[at + 1])) << 16) |
           (uint32_t(uint8_t(text[at + 2])) << 8) | uint32_t(uint8_t(text[at + 3]));
  };
  CHECK(length_at(0) == a.size());
  CHECK(text.substr(4, a.size()) == a);
  CHECK(length_at(4 + a.size()) == b.size());
  CHECK(text.substr(8 + a.size()) == b);
}

TEST_CASE("file: a missing directory fails start() naming the path", "[file]") {
  TempDir dir;
  std::string path = dir.file("no-such-dir/out.jsonl");
  FileSender sender(Signal::traces, FileFormat::json, make_writer(path));
  Status s = sender.start();
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.message() == "cannot open " + path + ": No such file or directory");
  CHECK_FALSE(fs::exists(dir.path / "no-such-dir"));
}

TEST_CASE("file: appends to an existing file", "[file]") {
  TempDir dir;
  std::string path = dir.file("out.bin");
  { std::ofstream(path) << "old"; }
  FileSender sender(Signal::logs, FileFormat::proto, make_writer(path));
  REQUIRE(sender.start().is_ok());
  REQUIRE(send_sync(sender, Signal::logs, "ab").is_ok());
  CHECK(read_file(path) == std::string("old\0\0\0\x02" "ab", 9));
}

TEST_CASE("file rotation: backups named by time, oldest beyond max_backups deleted", "[file]") {
  TempDir dir;
  FileWriter::Options o;
  o.path = dir.file("out.bin");
  o.rotate = true;
  o.max_bytes = 100;  // each record below is 60 bytes: every second record rotates
  o.max_backups = 3;
  auto writer = std::make_shared<FileWriter>(o);
  FileSender sender(Signal::logs, FileFormat::proto, writer);
  REQUIRE(sender.start().is_ok());

  for (int i = 0; i < 10; ++i) {
    REQUIRE(send_sync(sender, Signal::logs, std::string(56, static_cast<char>('a' + i))).is_ok());
  }

  std::vector<std::string> backups;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    std::string name = e.path().filename().string();
    if (name != "out.bin") backups.push_back(name);
  }
  std::sort(backups.begin(), backups.end());
  REQUIRE(backups.size() == 3);
  for (const auto& name : backups) {
    // out-YYYY-MM-DDTHH-MM-SS.mmm.bin
    CHECK(name.size() == std::string("out-2024-01-02T03-04-05.678.bin").size());
    CHECK(name.substr(0, 4) == "out-");
    CHECK(name[14] == 'T');
    CHECK(name.substr(name.size() - 4) == ".bin");
  }
  // The newest three backups hold records 7, 8 and 9 (g, h, i); the live file holds j.
  CHECK(read_file(dir.file(backups[0])).substr(4) == std::string(56, 'g'));
  CHECK(read_file(dir.file(backups[1])).substr(4) == std::string(56, 'h'));
  CHECK(read_file(dir.file(backups[2])).substr(4) == std::string(56, 'i'));
  CHECK(read_file(o.path).substr(4) == std::string(56, 'j'));
}

TEST_CASE("file rotation: a record bigger than max_bytes gets a file of its own", "[file]") {
  TempDir dir;
  FileWriter::Options o;
  o.path = dir.file("out.bin");
  o.rotate = true;
  o.max_bytes = 10;
  FileWriter writer(o);
  REQUIRE(writer.write({"0123456789abcdef"}).is_ok());  // empty file: written whole, no rotation
  REQUIRE(writer.write({"xyz"}).is_ok());               // rotates first
  CHECK(read_file(o.path) == "xyz");
  size_t files = std::distance(fs::directory_iterator(dir.path), fs::directory_iterator());
  CHECK(files == 2);
}

TEST_CASE("file rotation: max_days deletes old backups on open, leaves other files", "[file]") {
  TempDir dir;
  { std::ofstream(dir.file("out-2001-01-01T00-00-00.000.bin")) << "old"; }
  { std::ofstream(dir.file("out-notatime.bin")) << "keep"; }
  { std::ofstream(dir.file("other-2001-01-01T00-00-00.000.bin")) << "keep"; }
  FileWriter::Options o;
  o.path = dir.file("out.bin");
  o.rotate = true;
  o.max_days = 1;
  o.max_backups = 0;
  FileWriter writer(o);
  REQUIRE(writer.open().is_ok());
  CHECK_FALSE(fs::exists(dir.file("out-2001-01-01T00-00-00.000.bin")));
  CHECK(fs::exists(dir.file("out-notatime.bin")));
  CHECK(fs::exists(dir.file("other-2001-01-01T00-00-00.000.bin")));
}

TEST_CASE("file: exporters of one path share one writer; lines never interleave", "[file]") {
  TempDir dir;
  FileExporterFactory factory;
  Parsed a = parse_yaml("path: " + dir.file("out.jsonl") + "\n");
  Parsed b = parse_yaml("path: " + (dir.path / "." / "out.jsonl").string() + "\n");
  REQUIRE(a.errors.empty());
  auto w1 = factory.writer_for(*a.config);
  auto w2 = factory.writer_for(*b.config);
  CHECK(w1 == w2);

  auto traces = std::make_unique<FileSender>(Signal::traces, FileFormat::json, w1);
  auto logs = std::make_unique<FileSender>(Signal::logs, FileFormat::json, w2);
  REQUIRE(traces->start().is_ok());
  REQUIRE(logs->start().is_ok());
  // Big lines so that any interleaving of two writes would show as a line that does not parse.
  std::string span_bytes = trace_request(std::string(20000, 's')).SerializeAsString();
  std::string log_bytes = log_request_bytes(std::string(20000, 'l'));
  constexpr int kPerThread = 200;
  auto run = [&](Sender* sender, Signal signal, const std::string* bytes) {
    for (int i = 0; i < kPerThread; ++i) {
      sender->send(make_batch(signal, *bytes, 1), Clock::now() + std::chrono::seconds(5),
                   [](Status s) { REQUIRE(s.is_ok()); });
    }
  };
  std::thread t1(run, traces.get(), Signal::traces, &span_bytes);
  std::thread t2(run, logs.get(), Signal::logs, &log_bytes);
  t1.join();
  t2.join();

  std::vector<std::string> lines = split_lines(read_file(dir.file("out.jsonl")));
  REQUIRE(lines.size() == 2 * kPerThread);
  int span_lines = 0;
  int log_lines = 0;
  for (const auto& line : lines) {
    ExportTraceServiceRequest t;
    ExportLogsServiceRequest l;
    if (line.find("resourceSpans") != std::string::npos || line.find("resource_spans") != std::string::npos) {
      REQUIRE(otlp::json_to_message(line, t) == "");
      CHECK(t.SerializeAsString() == span_bytes);
      ++span_lines;
    } else {
      REQUIRE(otlp::json_to_message(line, l) == "");
      CHECK(l.SerializeAsString() == log_bytes);
      ++log_lines;
    }
  }
  CHECK(span_lines == kPerThread);
  CHECK(log_lines == kPerThread);

  // Once every user is gone the next exporter gets a new writer.
  w1.reset();
  w2.reset();
  traces.reset();
  logs.reset();
  auto w3 = factory.writer_for(*a.config);
  CHECK(w3.use_count() == 1);
}

TEST_CASE("file factory: create() builds an exporter for each signal over one file", "[file]") {
  TempDir dir;
  boost::asio::io_context io;
  Telemetry telemetry;
  Host host{io, telemetry};
  FileExporterFactory factory;
  Parsed p = parse_yaml("path: " + dir.file("out.jsonl") + "\n");
  REQUIRE(p.errors.empty());
  std::vector<ExporterPtr> exporters;
  for (Signal s : {Signal::traces, Signal::metrics, Signal::logs}) {
    exporters.push_back(factory.create(ComponentId{"file", ""}, *p.config, s, host));
    REQUIRE(exporters.back() != nullptr);
    CHECK(exporters.back()->start().is_ok());
  }
  CHECK(fs::exists(dir.file("out.jsonl")));
  for (auto& e : exporters) e->shutdown(Clock::now() + std::chrono::seconds(1));
}

}  // namespace otlpd
