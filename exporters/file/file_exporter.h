// The `file` exporter: writes each batch to a local file, as the Collector's fileexporter does.
//
// Formats: `json` writes one OTLP/JSON Export<Signal>ServiceRequest per line; `proto` writes each
// request as a 4-byte big-endian length followed by its protobuf bytes. Optional size-based rotation
// follows the Collector's (lumberjack) naming: `<name>-<YYYY-MM-DDTHH-MM-SS.mmm><ext>`.
//
// Ownership and threads: the factory keeps a path -> weak_ptr<FileWriter> map so the traces, metrics
// and logs exporters writing the same path share one FileWriter (one open file); each FileSender holds
// a shared_ptr to it and the last one to go closes the file. FileWriter::write() may be called from
// any thread: a mutex covers each whole record, so records never interleave. FileSender::send() runs
// on whatever thread the QueuedExporter calls it from (an io_context thread) and blocks it only for
// the write(2) itself; done() is called inline.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "exporters/common/exporter_settings.h"
#include "exporters/common/sender.h"
#include "pipeline/registry.h"

namespace otlpd {

enum class FileFormat { json, proto };

struct FileRotationConfig {
  int64_t max_megabytes = 100;  // rotate before the file would grow past this size
  int64_t max_days = 0;         // delete backups older than this many days; 0 keeps them regardless of age
  int64_t max_backups = 100;    // keep at most this many backups, deleting the oldest; 0 keeps all
  bool localtime = false;       // backup names use local time instead of UTC
};

struct FileExporterConfig : ComponentConfig {
  std::string path;                             // required; the directory must exist
  FileFormat format = FileFormat::json;         // json: OTLP/JSON lines; proto: length-prefixed protobuf
  std::optional<FileRotationConfig> rotation;   // no rotation unless the `rotation` key is present
  // Accepted for Collector compatibility. Every batch is handed to the kernel with write(2) before
  // send() returns (no user-space buffer), so there is nothing to flush; fsync is not done.
  std::chrono::milliseconds flush_interval{1000};
  ExporterSettings exporter;
};

// One open file, shared by every FileSender writing the same path. Thread-safe.
class FileWriter {
 public:
  struct Options {
    std::string path;
    bool rotate = false;
    uint64_t max_bytes = 100ull << 20;  // in bytes so tests can rotate at small sizes
    int64_t max_days = 0;
    int64_t max_backups = 100;
    bool localtime = false;
  };
  static Options options_from(const FileExporterConfig& config);

  explicit FileWriter(Options options);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Opens the file for appending (creating it) unless already open. Idempotent; any thread.
  Status open();
  // Writes the concatenation of `parts` as one record, rotating first when rotation is on and the
  // record would take the file past max_bytes (a record bigger than max_bytes gets a file of its own).
  // On a failed write the file is cut back to where the record began.
  Status write(std::initializer_list<std::string_view> parts);
  const std::string& path() const { return options_.path; }

 private:
  Status open_locked();
  Status rotate_locked();
  void prune_backups_locked();
  std::string backup_name_locked();

  const Options options_;
  std::mutex mu_;  // guards everything below; held for each whole record
  int fd_ = -1;
  uint64_t size_ = 0;  // current file size, to decide when to rotate
  std::chrono::system_clock::time_point last_backup_time_{};  // keeps backup names increasing
};

// Converts each batch to the configured format and appends it through a shared FileWriter.
class FileSender : public Sender {
 public:
  FileSender(Signal signal, FileFormat format, std::shared_ptr<FileWriter> writer);

  Status start() override;  // opens the file; a missing directory is an error naming the path
  void send(BatchPtr batch, Clock::time_point deadline, Done done) override;

 private:
  Status write_json(const Batch& batch);
  Status write_proto(const Batch& batch);

  const Signal signal_;
  const FileFormat format_;
  std::shared_ptr<FileWriter> writer_;
};

class FileExporterFactory : public ExporterFactory {
 public:
  std::string_view type() const override { return "file"; }
  std::string_view description() const override {
    return "writes OTLP/JSON lines or length-prefixed protobuf to a file, with rotation";
  }
  ComponentConfigPtr parse(config::Node& node) const override;
  ExporterPtr create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                     Host& host) const override;

  // The writer for config.path, shared with every exporter created for the same (normalised) path
  // while any of them lives; the first one's rotation settings apply. Thread-safe.
  std::shared_ptr<FileWriter> writer_for(const FileExporterConfig& config) const;

 private:
  mutable std::mutex mu_;  // guards writers_
  mutable std::map<std::string, std::weak_ptr<FileWriter>> writers_;
};

}  // namespace otlpd
