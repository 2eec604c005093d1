// DiskLog: the storage of a persistent sending queue — an append-only log of checksummed records
// in a directory of its own, with a list of finished records next to each segment.
//
// Files: segments "<16-digit sequence>.log" hold records; "<sequence>.ack" lists which records of
// that segment are finished (delivered, or given up on and counted). A record is
//   magic "OTQ1" | payload length u32 | items u32 | crc32 u32 | payload      (little-endian)
// where the crc covers length, items and payload. An ack entry is the record's offset (u32) and its
// complement, so a torn or flipped entry is recognised and ignored (the record is then sent again:
// a duplicate, never a loss).
//
// append() returns once the record is written to the file (and, with fsync_each, on disk), so its
// client may be answered: the data survives the process being killed. A segment is deleted when it
// is no longer appended to and all its records are finished. open() reads every segment back and
// returns the unfinished records in order for replay. A record failing its checksum, or any bytes
// that are not a record, are skipped and counted; an unreadable tail is cut off (the file
// truncated), never a crash. Appends always go to a new segment after open().
//
// "LOCK" (flock) keeps a second process from using the directory. "set-aside.log" receives, in the
// same record format, records given up on for good, so an operator can inspect them.
//
// Thread-safety: every method may be called from any thread; one mutex guards the state. read()
// runs its pread outside the mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/status.h"

namespace otlpd {

struct DiskLogOptions {
  std::string directory;
  bool create_directory = true;
  bool fsync_each = false;             // fdatasync after every append
  uint64_t max_bytes = 0;              // bound on the segments' total size; 0: none
  uint64_t segment_bytes = 8u << 20;   // a segment is closed for appends beyond this size
};

// Where a record lives; what the caller keeps to read it back and to finish it.
struct RecordRef {
  uint64_t segment = 0;
  uint32_t offset = 0;  // of the record's header in its segment
  uint32_t length = 0;  // payload bytes
  uint32_t items = 0;
};

// What open() found.
struct DiskLogRecovery {
  std::vector<RecordRef> pending;  // unfinished records, oldest first
  uint64_t pending_items = 0;
  uint64_t corrupted_regions = 0;  // runs of bytes that were not valid records (each skipped or cut)
  uint64_t cut_bytes = 0;          // bytes in those runs
  uint64_t segments = 0;           // segment files found
};

class DiskLog {
 public:
  // Opens (creating when allowed) the directory, takes its lock and recovers what it holds.
  // Null with *error set when the directory is unusable or locked by another process.
  static std::unique_ptr<DiskLog> open(const DiskLogOptions& options, DiskLogRecovery* recovery,
                                       std::string* error);
  ~DiskLog();
  DiskLog(const DiskLog&) = delete;
  DiskLog& operator=(const DiskLog&) = delete;

  // Writes one record. resource_exhausted when it would take the log past max_bytes (a record is
  // always admitted into an empty log); internal on an I/O error (nothing is left half-written).
  Status append(std::string_view payload, uint32_t items, RecordRef* out);
  // Reads a record's payload back, checking its checksum (data_loss when it no longer matches).
  Status read(const RecordRef& ref, std::string* payload) const;
  // Marks a record finished; its segment goes once all its records are finished.
  void finish(const RecordRef& ref);
  // Copies a record given up on to set-aside.log (while that stays under max_bytes, or 64 MiB
  // without a bound), then finishes it. False when it was not copied (full or I/O error).
  bool set_aside(const RecordRef& ref, std::string_view payload);
  // Flushes appended records and ack entries to disk (the fsync_interval timer calls this).
  void sync();

  // Total size of the segments on disk.
  uint64_t disk_bytes() const;
  const std::string& directory() const { return options_.directory; }

 private:
  struct Segment;
  explicit DiskLog(DiskLogOptions options);
  bool take_lock(std::string* error);
  Status recover(DiskLogRecovery* recovery);
  void recover_segment(uint64_t sequence, DiskLogRecovery* recovery);
  // Under mu_: starts a new segment for appends.
  Status roll_locked();
  // Under mu_: deletes the segment when nothing in it is pending any more.
  void maybe_delete_locked(uint64_t sequence);
  std::string segment_path(uint64_t sequence, const char* suffix) const;

  const DiskLogOptions options_;
  int lock_fd_ = -1;
  int set_aside_fd_ = -1;

  mutable std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<Segment>> segments_;
  uint64_t active_ = 0;  // sequence of the segment appends go to; 0: none yet
  uint64_t disk_bytes_ = 0;
};

}  // namespace otlpd
