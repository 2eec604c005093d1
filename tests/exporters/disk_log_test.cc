// Tests for DiskLog, the persistent sending queue's storage: records come back after a reopen in
// order and intact; finished ones do not; torn tails and flipped bytes are cut or skipped and
// counted without losing the good records around them; the byte bound refuses; segments go once
// finished; a second process cannot open the same directory.
#include "exporters/common/disk_log.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <iterator>

namespace otlpd {
namespace {

namespace fs = std::filesystem;
constexpr size_t kHeader = 16;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/otlpd-disklog-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string payload_of(int i) { return "payload-" + std::to_string(i) + std::string(static_cast<size_t>(i % 7) * 10, 'x'); }

std::unique_ptr<DiskLog> open_log(const fs::path& dir, DiskLogRecovery* recovery, uint64_t max_bytes = 0,
                                  uint64_t segment_bytes = 8u << 20) {
  DiskLogOptions options;
  options.directory = dir.string();
  options.max_bytes = max_bytes;
  options.segment_bytes = segment_bytes;
  std::string error;
  auto log = DiskLog::open(options, recovery, &error);
  INFO(error);
  REQUIRE(log);
  return log;
}

std::vector<fs::path> files_with(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == suffix) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void overwrite(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

std::vector<std::string> read_all(DiskLog& log, const DiskLogRecovery& recovery) {
  std::vector<std::string> out;
  for (const auto& ref : recovery.pending) {
    std::string p;
    REQUIRE(log.read(ref, &p).is_ok());
    out.push_back(p);
  }
  return out;
}

TEST_CASE("records written before a reopen come back in order, intact, with their item counts", "[disk_log]") {
  TempDir dir;
  DiskLogRecovery recovery;
  {
    auto log = open_log(dir.path, &recovery);
    CHECK(recovery.pending.empty());
    for (int i = 0; i < 20; ++i) {
      RecordRef ref;
      REQUIRE(log->append(payload_of(i), static_cast<uint32_t>(i + 1), &ref).is_ok());
      std::string back;
      REQUIRE(log->read(ref, &back).is_ok());
      CHECK(back == payload_of(i));
    }
  }  // closed without finishing anything: as if the process stopped
  auto log = open_log(dir.path, &recovery);
  REQUIRE(recovery.pending.size() == 20);
  CHECK(recovery.pending_items == 210);  // 1 + 2 + ... + 20
  CHECK(recovery.corrupted_regions == 0);
  CHECK(recovery.cut_bytes == 0);
  auto payloads = read_all(*log, recovery);
  for (int i = 0; i < 20; ++i) {
    CHECK(payloads[static_cast<size_t>(i)] == payload_of(i));
    CHECK(recovery.pending[static_cast<size_t>(i)].items == static_cast<uint32_t>(i + 1));
  }
}

TEST_CASE("finished records are not replayed; a segment whose records are all finished is deleted", "[disk_log]") {
  TempDir dir;
  DiskLogRecovery recovery;
  std::vector<RecordRef> refs;
  {
    auto log = open_log(dir.path, &recovery, 0, 256);  // small segments: several files
    for (int i = 0; i < 30; ++i) {
      RecordRef ref;
      REQUIRE(log->append(payload_of(i), 1, &ref).is_ok());
      refs.push_back(ref);
    }
    CHECK(files_with(dir.path, ".log").size() > 3);
    for (int i = 0; i < 30; ++i) {
      if (i != 7 && i != 25) log->finish(refs[static_cast<size_t>(i)]);
    }
    // Only the segments of records 7 and 25 and the one appends go to are left.
    std::set<uint64_t> expected{refs[7].segment, refs[25].segment, refs.back().segment};
    CHECK(files_with(dir.path, ".log").size() == expected.size());
  }
  auto log = open_log(dir.path, &recovery);
  REQUIRE(recovery.pending.size() == 2);
  auto payloads = read_all(*log, recovery);
  CHECK(payloads[0] == payload_of(7));
  CHECK(payloads[1] == payload_of(25));
  for (const auto& ref : recovery.pending) log->finish(ref);
  // Everything finished: only the new, empty segment remains.
  auto logs = files_with(dir.path, ".log");
  REQUIRE(logs.size() == 1);
  CHECK(fs::file_size(logs[0]) == 0);
}

TEST_CASE("a tail torn mid-record is cut off and counted; the records before it are replayed", "[disk_log]") {
  TempDir dir;
  DiskLogRecovery recovery;
  {
    auto log = open_log(dir.path, &recovery);
    for (int i = 0; i < 5; ++i) {
      RecordRef ref;
      REQUIRE(log->append(payload_of(i), 1, &ref).is_ok());
    }
  }
  auto logs = files_with(dir.path, ".log");
  REQUIRE(logs.size() == 1);
  const std::string data = slurp(logs[0]);
  const size_t last = kHeader + payload_of(4).size();
  const size_t torn_at = data.size() - last + 9;  // 9 bytes into the last record's header
  overwrite(logs[0], data.substr(0, torn_at));

  auto log = open_log(dir.path, &recovery);
  REQUIRE(recovery.pending.size() == 4);
  CHECK(recovery.corrupted_regions == 1);
  CHECK(recovery.cut_bytes == 9);
  CHECK(fs::file_size(logs[0]) == data.size() - last);  // the file no longer holds the torn bytes
  auto payloads = read_all(*log, recovery);
  CHECK(payloads.back() == payload_of(3));
}

TEST_CASE("a flipped byte spoils only its own record; the records after it are replayed", "[disk_log]") {
  TempDir dir;
  DiskLogRecovery recovery;
  std::vector<RecordRef> refs;
  {
    auto log = open_log(dir.path, &recovery);
    for (int i = 0; i < 6; ++i) {
      RecordRef ref;
      REQUIRE(log->append(payload_of(i), 1, &ref).is_ok());
      refs.push_back(ref);
    }
  }
  auto logs = files_with(dir.path, ".log");
  REQUIRE(logs.size() == 1);
  std::string data = slurp(logs[0]);

  SECTION("in the payload") {
    data[refs[2].offset + kHeader + 3] ^= 0x20;
    overwrite(logs[0], data);
    auto log = open_log(dir.path, &recovery);
    REQUIRE(recovery.pending.size() == 5);
    CHECK(recovery.corrupted_regions == 1);
    CHECK(recovery.cut_bytes == kHeader + refs[2].length);
    auto payloads = read_all(*log, recovery);
    CHECK(payloads == std::vector<std::string>{payload_of(0), payload_of(1), payload_of(3), payload_of(4),
                                               payload_of(5)});
  }
  SECTION("in the length field") {
    data[refs[1].offset + 4] ^= 0x40;  // the length now points past the record
    overwrite(logs[0], data);
    auto log = open_log(dir.path, &recovery);
    REQUIRE(recovery.pending.size() == 5);
    CHECK(recovery.corrupted_regions == 1);
    CHECK(recovery.cut_bytes == kHeader + refs[1].length);
    auto payloads = read_all(*log, recovery);
    CHECK(payloads.front() == payload_of(0));
    CHECK(payloads[1] == payload_of(2));
  }
  SECTION("a file of garbage yields nothing and no crash") {
    std::string garbage(4096, '\0');
    for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>((i * 131 + 7) & 0xff);
    garbage.replace(100, 4, "OTQ1");  // a magic with nonsense after it
    overwrite(logs[0], garbage);
    auto log = open_log(dir.path, &recovery);
    CHECK(recovery.pending.empty());
    CHECK(recovery.cut_bytes == garbage.size());
    CHECK_FALSE(fs::exists(logs[0]));  // nothing left in it: the segment is gone
  }
}

TEST_CASE("torn or spoilt ack entries replay their record (a duplicate, never a loss)", "[disk_log]") {
  TempDir dir;
  DiskLogRecovery recovery;
  {
    auto log = open_log(dir.path, &recovery);
    std::vector<RecordRef> refs;
    for (int i = 0; i < 4; ++i) {
      RecordRef ref;
      REQUIRE(log->append(payload_of(i), 1, &ref).is_ok());
      refs.push_back(ref);
    }
    for (const auto& ref : refs) log->finish(ref);
  }
  auto acks = files_with(dir.path, ".ack");
  REQUIRE(acks.size() == 1);
  std::string data = slurp(acks[0]);
  REQUIRE(data.size() == 32);
  data[8 + 5] ^= 0x01;            // entry 1's check no longer matches
  overwrite(acks[0], data.substr(0, 28));  // entry 3 torn
  auto log = open_log(dir.path, &recovery);
  auto payloads = read_all(*log, recovery);
  CHECK(payloads == std::vector<std::string>{payload_of(1), payload_of(3)});
}

TEST_CASE("the byte bound refuses appends until finished records free their segments", "[disk_log]") {
  TempDir dir;
  DiskLogRecovery recovery;
  const std::string payload(1000, 'p');
  auto log = open_log(dir.path, &recovery, 8 * (kHeader + 1000), 2 * (kHeader + 1000));
  std::vector<RecordRef> refs;
  for (int i = 0; i < 8; ++i) {
    RecordRef ref;
    REQUIRE(log->append(payload, 1, &ref).is_ok());
    refs.push_back(ref);
  }
  CHECK(log->disk_bytes() == 8 * (kHeader + 1000));
  RecordRef ref;
  Status full = log->append(payload, 1, &ref);
  CHECK(full.code() == Status::Code::resource_exhausted);
  log->finish(refs[0]);
  CHECK(log->append(payload, 1, &ref).code() == Status::Code::resource_exhausted);  // its segment holds refs[1]
  log->finish(refs[1]);
  CHECK(log->disk_bytes() == 6 * (kHeader + 1000));
  CHECK(log->append(payload, 1, &ref).is_ok());
}

TEST_CASE("a record given up on is copied to set-aside.log and not replayed", "[disk_log]") {
  TempDir dir;
  DiskLogRecovery recovery;
  {
    auto log = open_log(dir.path, &recovery);
    RecordRef keep, poison;
    REQUIRE(log->append("keep", 1, &keep).is_ok());
    REQUIRE(log->append("poison", 3, &poison).is_ok());
    CHECK(log->set_aside(poison, "poison"));
  }
  auto log = open_log(dir.path, &recovery);
  CHECK(read_all(*log, recovery) == std::vector<std::string>{"keep"});
  const std::string aside = slurp(dir.path / "set-aside.log");
  REQUIRE(aside.size() == kHeader + 6);
  CHECK(aside.substr(0, 4) == "OTQ1");
  CHECK(aside.substr(kHeader) == "poison");
}

TEST_CASE("a directory in use by another DiskLog cannot be opened", "[disk_log]") {
  TempDir dir;
  DiskLogRecovery recovery;
  auto first = open_log(dir.path, &recovery);
  DiskLogOptions options;
  options.directory = dir.path.string();
  std::string error;
  CHECK_FALSE(DiskLog::open(options, &recovery, &error));
  CHECK(error.find("in use by another process") != std::string::npos);
  first.reset();
  CHECK(DiskLog::open(options, &recovery, &error));
}

}  // namespace
}  // namespace otlpd
