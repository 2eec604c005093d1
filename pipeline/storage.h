// FileStorageSettings: a `file_storage` extension, the place persistent sending queues keep their
// logs. Filled by the config loader; read by exporters when they are created.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace otlpd {

// An `extensions: file_storage[/name]` entry: where persistent sending queues keep their logs.
struct FileStorageSettings {
  std::string directory = "/var/lib/otlpd/file_storage";
  bool create_directory = false;  // as the Collector: the directory must exist unless this is set
  bool fsync = false;             // true: every record is on disk before the client is answered
  // With fsync false: written records and acknowledgements reach the disk at least this often
  // (0: whenever the kernel writes them back). A killed process loses nothing either way; this
  // bounds what a power loss can take.
  std::chrono::milliseconds fsync_interval{1000};

  bool operator==(const FileStorageSettings&) const = default;
};

// Configured file_storage extensions by id as written ("file_storage", "file_storage/queues").
using FileStorages = std::map<std::string, FileStorageSettings>;

// True when an exporter's `sending_queue.storage` value names a file_storage extension
// ("file_storage" or "file_storage/<name>") rather than a directory.
inline bool is_storage_extension_id(const std::string& value) {
  return value == "file_storage" || value.rfind("file_storage/", 0) == 0;
}

}  // namespace otlpd
