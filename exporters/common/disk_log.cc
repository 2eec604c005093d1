#include "exporters/common/disk_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

namespace otlpd {

namespace {

constexpr char kMagic[4] = {'O', 'T', 'Q', '1'};
constexpr size_t kHeaderBytes = 16;
constexpr size_t kAckBytes = 8;
constexpr uint64_t kSetAsideBoundWithoutMax = uint64_t{64} << 20;

void put_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t get_u32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

uint32_t record_crc(uint32_t length, uint32_t items, std::string_view payload) {
  char fields[8];
  put_u32(fields, length);
  put_u32(fields + 4, items);
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(fields), sizeof fields);
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(payload.data()), payload.size());
  return static_cast<uint32_t>(crc);
}

void make_header(char* header, std::string_view payload, uint32_t items) {
  const auto length = static_cast<uint32_t>(payload.size());
  std::memcpy(header, kMagic, 4);
  put_u32(header + 4, length);
  put_u32(header + 8, items);
  put_u32(header + 12, record_crc(length, items, payload));
}

// The record starting at `at` in `data`, if there is a whole one with a matching checksum.
bool valid_record_at(std::string_view data, size_t at, uint32_t* length, uint32_t* items) {
  if (data.size() - at < kHeaderBytes || std::memcmp(data.data() + at, kMagic, 4) != 0) return false;
  const uint32_t len = get_u32(data.data() + at + 4);
  if (len > data.size() - at - kHeaderBytes) return false;
  const uint32_t n = get_u32(data.data() + at + 8);
  if (get_u32(data.data() + at + 12) != record_crc(len, n, data.substr(at + kHeaderBytes, len))) return false;
  *length = len;
  *items = n;
  return true;
}

// Writes all of `parts`, retrying short writes; false on error.
bool write_all(int fd, iovec* parts, int count) {
  while (count > 0) {
    ssize_t n = ::writev(fd, parts, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    auto left = static_cast<size_t>(n);
    while (count > 0 && left >= parts->iov_len) {
      left -= parts->iov_len;
      ++parts;
      --count;
    }
    if (count > 0) {
      parts->iov_base = static_cast<char*>(parts->iov_base) + left;
      parts->iov_len -= left;
    }
  }
  return true;
}

bool read_whole(int fd, std::string* out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  out->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = ::pread(fd, out->data() + done, out->size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

void sync_directory(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

struct DiskLog::Segment {
  int log_fd = -1;
  int ack_fd = -1;  // opened at the first finish()
  uint64_t bytes = 0;
  uint64_t records = 0;   // valid records in it
  uint64_t finished = 0;  // of those, finished
  bool dirty = false;     // ack entries not yet synced

  ~Segment() {
    if (log_fd >= 0) ::close(log_fd);
    if (ack_fd >= 0) ::close(ack_fd);
  }
};

DiskLog::DiskLog(DiskLogOptions options) : options_(std::move(options)) {}

DiskLog::~DiskLog() {
  sync();
  segments_.clear();
  if (set_aside_fd_ >= 0) ::close(set_aside_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::unique_ptr<DiskLog> DiskLog::open(const DiskLogOptions& options, DiskLogRecovery* recovery, std::string* error) {
  std::error_code ec;
  if (options.create_directory) std::filesystem::create_directories(options.directory, ec);
  if (!std::filesystem::is_directory(options.directory, ec)) {
    *error = "directory " + options.directory + " does not exist" +
             (options.create_directory ? " and cannot be created" + (ec ? ": " + ec.message() : "") : "");
    return nullptr;
  }
  auto log = std::unique_ptr<DiskLog>(new DiskLog(options));
  if (!log->take_lock(error)) return nullptr;
  *recovery = DiskLogRecovery{};
  Status s = log->recover(recovery);
  if (!s.is_ok()) {
    *error = s.message();
    return nullptr;
  }
  std::lock_guard lock(log->mu_);
  s = log->roll_locked();
  if (!s.is_ok()) {
    *error = s.message();
    return nullptr;
  }
  return log;
}

bool DiskLog::take_lock(std::string* error) {
  const std::string path = options_.directory + "/LOCK";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    *error = "cannot open " + path + ": " + errno_text();
    return false;
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    *error = "directory " + options_.directory + " is in use by another process";
    return false;
  }
  return true;
}

std::string DiskLog::segment_path(uint64_t sequence, const char* suffix) const {
  char name[32];
  std::snprintf(name, sizeof name, "%016llu%s", static_cast<unsigned long long>(sequence), suffix);
  return options_.directory + "/" + name;
}

Status DiskLog::recover(DiskLogRecovery* recovery) {
  std::vector<uint64_t> sequences;
  std::error_code ec;
  std::filesystem::directory_iterator listing(options_.directory, ec);
  if (ec) return Status::internal("cannot list " + options_.directory + ": " + ec.message());
  for (const auto& entry : listing) {
    const std::string name = entry.path().filename().string();
    if (name.size() != 20 || name.compare(16, 4, ".log") != 0) continue;
    if (!std::all_of(name.begin(), name.begin() + 16, [](char c) { return c >= '0' && c <= '9'; })) continue;
    sequences.push_back(std::stoull(name.substr(0, 16)));
  }
  std::sort(sequences.begin(), sequences.end());
  recovery->segments = sequences.size();
  for (uint64_t sequence : sequences) recover_segment(sequence, recovery);
  active_ = sequences.empty() ? 0 : sequences.back();
  return Status::ok();
}

void DiskLog::recover_segment(uint64_t sequence, DiskLogRecovery* recovery) {
  const std::string log_path = segment_path(sequence, ".log");
  const std::string ack_path = segment_path(sequence, ".ack");
  auto segment = std::make_unique<Segment>();
  segment->log_fd = ::open(log_path.c_str(), O_RDWR | O_CLOEXEC);
  std::string data;
  if (segment->log_fd < 0 || !read_whole(segment->log_fd, &data)) {
    spdlog::error("persistent queue {}: cannot read {}: {}; leaving it in place", options_.directory, log_path,
                  errno_text());
    return;
  }

  // Finished records, by offset. Entries that do not check out are ignored (their record is sent again).
  std::vector<uint32_t> finished;
  int ack_fd = ::open(ack_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ack_fd >= 0) {
    std::string acks;
    if (read_whole(ack_fd, &acks)) {
      for (size_t at = 0; at + kAckBytes <= acks.size(); at += kAckBytes) {
        const uint32_t offset = get_u32(acks.data() + at);
        if (get_u32(acks.data() + at + 4) == ~offset) finished.push_back(offset);
      }
    }
    ::close(ack_fd);
  }
  std::sort(finished.begin(), finished.end());

  size_t at = 0;
  size_t last_good_end = 0;
  while (at < data.size()) {
    uint32_t length = 0, items = 0;
    if (valid_record_at(data, at, &length, &items)) {
      const auto offset = static_cast<uint32_t>(at);
      ++segment->records;
      if (std::binary_search(finished.begin(), finished.end(), offset)) {
        ++segment->finished;
      } else {
        recovery->pending.push_back({sequence, offset, length, items});
        recovery->pending_items += items;
      }
      at += kHeaderBytes + length;
      last_good_end = at;
      continue;
    }
    // Not a record here: look for the next one that checks out (a flipped byte spoils one record;
    // the ones after it are still good).
    size_t next = at + 1;
    uint32_t l = 0, n = 0;
    while (next < data.size()) {
      const void* hit = std::memchr(data.data() + next, kMagic[0], data.size() - next);
      if (!hit) {
        next = data.size();
        break;
      }
      next = static_cast<const char*>(hit) - data.data();
      if (valid_record_at(data, next, &l, &n)) break;
      ++next;
    }
    ++recovery->corrupted_regions;
    recovery->cut_bytes += next - at;
    spdlog::warn("persistent queue {}: {} bytes at offset {} of {} are not a valid record; {}", options_.directory,
                 next - at, at, log_path, next < data.size() ? "skipped" : "cut off");
    at = next;
  }
  if (last_good_end < data.size() && ::ftruncate(segment->log_fd, static_cast<off_t>(last_good_end)) != 0) {
    spdlog::error("persistent queue {}: cannot cut {}: {}", options_.directory, log_path, errno_text());
  }
  segment->bytes = last_good_end;
  disk_bytes_ += segment->bytes;
  segments_[sequence] = std::move(segment);
  std::lock_guard lock(mu_);
  maybe_delete_locked(sequence);
}

Status DiskLog::roll_locked() {
  const uint64_t previous = active_;
  const uint64_t sequence = active_ + 1;
  const std::string path = segment_path(sequence, ".log");
  auto segment = std::make_unique<Segment>();
  // O_EXCL: never reuse the name of a segment that exists (it may hold records).
  segment->log_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (segment->log_fd < 0) return Status::internal("cannot create " + path + ": " + errno_text());
  ::unlink(segment_path(sequence, ".ack").c_str());  // a stale one would finish the new records
  if (options_.fsync_each) sync_directory(options_.directory);
  segments_[sequence] = std::move(segment);
  active_ = sequence;
  if (previous != 0) {
    // The interval sync only sees the active segment: the one closed now is synced here.
    auto closed = segments_.find(previous);
    if (closed != segments_.end() && !options_.fsync_each) ::fdatasync(closed->second->log_fd);
    maybe_delete_locked(previous);
  }
  return Status::ok();
}

Status DiskLog::append(std::string_view payload, uint32_t items, RecordRef* out) {
  const uint64_t record_bytes = kHeaderBytes + payload.size();
  if (payload.size() > UINT32_MAX - kHeaderBytes) return Status::too_large("record too large for the persistent queue");
  char header[kHeaderBytes];
  make_header(header, payload, items);  // outside the lock: the checksum is the costly part

  std::lock_guard lock(mu_);
  if (options_.max_bytes > 0 && disk_bytes_ > 0 && disk_bytes_ + record_bytes > options_.max_bytes) {
    return Status::resource_exhausted("persistent queue " + options_.directory + " is full (" +
                                      std::to_string(options_.max_bytes >> 20) + " MiB)");
  }
  Segment* segment = segments_.at(active_).get();
  if (segment->bytes > 0 && segment->bytes + record_bytes > options_.segment_bytes) {
    Status s = roll_locked();
    if (!s.is_ok()) return s;
    segment = segments_.at(active_).get();
  }
  iovec parts[2] = {{header, kHeaderBytes}, {const_cast<char*>(payload.data()), payload.size()}};
  if (!write_all(segment->log_fd, parts, 2) || (options_.fsync_each && ::fdatasync(segment->log_fd) != 0)) {
    std::string error = errno_text();
    // Leave no partial record behind, so later appends follow a whole one. If that fails too, the
    // next appends go to a new segment (recovery skips the partial bytes).
    if (::ftruncate(segment->log_fd, static_cast<off_t>(segment->bytes)) != 0) {
      spdlog::error("persistent queue {}: cannot undo a failed write: {}", options_.directory, errno_text());
      struct stat st {};
      if (::fstat(segment->log_fd, &st) == 0) {
        disk_bytes_ += static_cast<uint64_t>(st.st_size) - segment->bytes;
        segment->bytes = static_cast<uint64_t>(st.st_size);
      }
      if (!roll_locked().is_ok()) spdlog::error("persistent queue {}: cannot start a new segment", options_.directory);
    }
    return Status::internal("cannot write to persistent queue " + options_.directory + ": " + error);
  }
  *out = RecordRef{active_, static_cast<uint32_t>(segment->bytes), static_cast<uint32_t>(payload.size()), items};
  segment->bytes += record_bytes;
  ++segment->records;
  disk_bytes_ += record_bytes;
  return Status::ok();
}

Status DiskLog::read(const RecordRef& ref, std::string* payload) const {
  int fd;
  {
    std::lock_guard lock(mu_);
    auto it = segments_.find(ref.segment);
    if (it == segments_.end()) return Status::internal("persistent queue record of a deleted segment");
    fd = it->second->log_fd;  // stays open: the segment cannot go while this record is unfinished
  }
  std::string record(kHeaderBytes + ref.length, '\0');
  size_t done = 0;
  while (done < record.size()) {
    ssize_t n = ::pread(fd, record.data() + done, record.size() - done, static_cast<off_t>(ref.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::internal("cannot read persistent queue " + options_.directory + ": " + errno_text());
    done += static_cast<size_t>(n);
  }
  uint32_t length = 0, items = 0;
  if (!valid_record_at(record, 0, &length, &items) || length != ref.length) {
    return Status::internal("persistent queue record at offset " + std::to_string(ref.offset) + " of " +
                            segment_path(ref.segment, ".log") + " no longer matches its checksum");
  }
  payload->assign(record, kHeaderBytes, length);
  return Status::ok();
}

void DiskLog::finish(const RecordRef& ref) {
  std::lock_guard lock(mu_);
  auto it = segments_.find(ref.segment);
  if (it == segments_.end()) return;
  Segment& segment = *it->second;
  if (segment.ack_fd < 0) {
    const std::string path = segment_path(ref.segment, ".ack");
    segment.ack_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (segment.ack_fd < 0) spdlog::error("persistent queue: cannot open {}: {}", path, errno_text());
  }
  if (segment.ack_fd >= 0) {
    char entry[kAckBytes];
    put_u32(entry, ref.offset);
    put_u32(entry + 4, ~ref.offset);
    iovec part{entry, kAckBytes};
    if (!write_all(segment.ack_fd, &part, 1)) {
      spdlog::error("persistent queue {}: cannot record a finished record: {}", options_.directory, errno_text());
      // A partial entry would shift every later one out of line: cut back to whole entries.
      struct stat st {};
      if (::fstat(segment.ack_fd, &st) == 0 && ::ftruncate(segment.ack_fd, st.st_size - st.st_size % kAckBytes) != 0) {
        spdlog::error("persistent queue {}: cannot repair an ack file: {}", options_.directory, errno_text());
      }
    }
    segment.dirty = true;
  }
  ++segment.finished;
  maybe_delete_locked(ref.segment);
}

void DiskLog::maybe_delete_locked(uint64_t sequence) {
  auto it = segments_.find(sequence);
  if (it == segments_.end() || sequence == active_ || it->second->finished < it->second->records) return;
  disk_bytes_ -= it->second->bytes;
  segments_.erase(it);
  ::unlink(segment_path(sequence, ".log").c_str());
  ::unlink(segment_path(sequence, ".ack").c_str());
}

bool DiskLog::set_aside(const RecordRef& ref, std::string_view payload) {
  bool copied = false;
  {
    std::lock_guard lock(mu_);
    const std::string path = options_.directory + "/set-aside.log";
    if (set_aside_fd_ < 0) set_aside_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    struct stat st {};
    const uint64_t bound = options_.max_bytes > 0 ? options_.max_bytes : kSetAsideBoundWithoutMax;
    if (set_aside_fd_ >= 0 && ::fstat(set_aside_fd_, &st) == 0 &&
        static_cast<uint64_t>(st.st_size) + kHeaderBytes + payload.size() <= bound) {
      char header[kHeaderBytes];
      make_header(header, payload, ref.items);
      iovec parts[2] = {{header, kHeaderBytes}, {const_cast<char*>(payload.data()), payload.size()}};
      copied = write_all(set_aside_fd_, parts, 2);
    }
  }
  finish(ref);
  return copied;
}

void DiskLog::sync() {
  // Duplicates, synced outside the lock: appends are not held up by the disk, and a segment deleted
  // meanwhile cannot have its descriptor number reused under us.
  std::vector<int> fds;
  {
    std::lock_guard lock(mu_);
    auto active = segments_.find(active_);
    if (active != segments_.end()) fds.push_back(::dup(active->second->log_fd));
    for (auto& [sequence, segment] : segments_) {
      if (segment->dirty && segment->ack_fd >= 0) {
        fds.push_back(::dup(segment->ack_fd));
        segment->dirty = false;
      }
    }
  }
  for (int fd : fds) {
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::close(fd);
  }
  sync_directory(options_.directory);
}

uint64_t DiskLog::disk_bytes() const {
  std::lock_guard lock(mu_);
  return disk_bytes_;
}

}  // namespace otlpd
