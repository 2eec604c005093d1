#include "otlp/wire.h"

#include <array>

namespace otlpd::otlp {

namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

// A bounds-checked cursor over one message's bytes.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}

  bool done() const { return p_ == end_; }
  const char* position() const { return p_; }

  bool varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      uint8_t b = static_cast<uint8_t>(*p_++);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *out = v;
        return true;
      }
    }
    return false;
  }

  // Reads one field; for length-delimited fields `value` is the payload, otherwise the raw bytes.
  bool field(uint32_t* number, uint32_t* wire_type, std::string_view* value) {
    uint64_t key;
    if (!varint(&key)) return false;
    *number = static_cast<uint32_t>(key >> 3);
    *wire_type = static_cast<uint32_t>(key & 7);
    if (*number == 0 || (key >> 3) > 0x1fffffff) return false;
    const char* start = p_;
    switch (*wire_type) {
      case kVarint: {
        uint64_t ignored;
        if (!varint(&ignored)) return false;
        break;
      }
      case kFixed64:
        if (end_ - p_ < 8) return false;
        p_ += 8;
        break;
      case kFixed32:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        break;
      case kLengthDelimited: {
        uint64_t len;
        if (!varint(&len)) return false;
        if (len > static_cast<uint64_t>(end_ - p_)) {
          overrun_ = len;
          available_ = static_cast<size_t>(end_ - p_);
          return false;
        }
        start = p_;
        p_ += len;
        break;
      }
      default:  // groups are not used by OTLP
        return false;
    }
    *value = std::string_view(start, static_cast<size_t>(p_ - start));
    return true;
  }

  // After a failed field(): the declared length that did not fit, and the bytes there were.
  uint64_t overrun() const { return overrun_; }
  size_t available() const { return available_; }

 private:
  const char* p_;
  const char* end_;
  uint64_t overrun_ = 0;
  size_t available_ = 0;
};

// The nesting of one signal. levels[i] describes the message at depth i (0 = the request): which of
// its fields hold its children, and what they are called. At the last level the children are items.
struct Level {
  const char* name;
  std::array<uint32_t, 5> child_fields;  // 0 = unused slot
  size_t child_count;
};

constexpr Level kTraceLevels[] = {
    {"resource_spans", {1}, 1},
    {"scope_spans", {2}, 1},
    {"spans", {2}, 1},
};
constexpr Level kLogLevels[] = {
    {"resource_logs", {1}, 1},
    {"scope_logs", {2}, 1},
    {"log_records", {2}, 1},
};
// Metric data points sit in one of the data oneof fields (gauge, sum, histogram,
// exponential_histogram, summary), each of which holds `repeated data_points = 1`.
constexpr Level kMetricLevels[] = {
    {"resource_metrics", {1}, 1},
    {"scope_metrics", {2}, 1},
    {"metrics", {2}, 1},
    {"data", {5, 7, 9, 10, 11}, 5},
    {"data_points", {1}, 1},
};

struct Schema {
  const Level* levels;
  size_t depth;  // levels[depth-1] is the item level
};

Schema schema_for(Signal s) {
  switch (s) {
    case Signal::traces: return {kTraceLevels, 3};
    case Signal::metrics: return {kMetricLevels, 5};
    case Signal::logs: return {kLogLevels, 3};
  }
  return {kTraceLevels, 3};
}

bool is_child(const Level& level, uint32_t field) {
  for (size_t i = 0; i < level.child_count; ++i) {
    if (level.child_fields[i] == field) return true;
  }
  return false;
}

// Checks that `msg` is a well-formed sequence of fields (one level; items are not decoded deeper).
bool well_formed(std::string_view msg) {
  Reader r(msg);
  uint32_t number, type;
  std::string_view value;
  while (!r.done()) {
    if (!r.field(&number, &type, &value)) return false;
  }
  return true;
}

// Walks the message at `level_index` (the message whose children are levels[level_index]).
bool walk(const Schema& schema, size_t level_index, std::string_view msg, std::string& where, WalkResult* result) {
  const Level& level = schema.levels[level_index];
  Reader r(msg);
  size_t child_index = 0;
  uint32_t number, type;
  std::string_view value;
  while (!r.done()) {
    if (!r.field(&number, &type, &value)) {
      result->ok = false;
      result->error = where.empty() ? "request" : where;
      if (r.overrun()) {
        result->error += ": field length " + std::to_string(r.overrun()) + " exceeds the " + std::to_string(r.available()) +
                         " bytes remaining";
      } else {
        result->error += ": malformed protobuf field";
      }
      return false;
    }
    if (!is_child(level, number)) continue;
    if (type != kLengthDelimited) {
      result->ok = false;
      result->error = (where.empty() ? std::string("request") : where) + ": field " + std::to_string(number) +
                      " has wire type " + std::to_string(type) + ", expected a message";
      return false;
    }
    size_t saved = where.size();
    if (!where.empty()) where += '.';
    where += level.name;
    where += '[' + std::to_string(child_index++) + ']';
    bool ok;
    if (level_index + 1 == schema.depth) {
      ok = well_formed(value);
      if (ok) {
        ++result->items;
      } else {
        result->ok = false;
        result->error = where + ": malformed protobuf";
      }
    } else {
      ok = walk(schema, level_index + 1, value, where, result);
    }
    if (!ok) return false;
    where.resize(saved);
  }
  return true;
}

// Greedy cutter: keeps one open frame per level (the envelope fields plus the children taken so
// far); when the current piece is full, all open frames are closed into a finished request and
// reopened empty with the same envelopes.
struct Frame {
  uint32_t field = 0;            // field number of this message in its parent
  std::string envelope;          // its non-child fields, as raw wire bytes
  std::string body;              // children taken into the current piece
};

// Writes into reused storage: frames and pieces keep their buffers' capacity from earlier cuts,
// and pieces [0, *used) are this cut's output.
class Cutter {
 public:
  Cutter(const Schema& schema, size_t first_max, size_t max, std::vector<Frame>& frames, std::vector<Piece>& out,
         size_t* used)
      : schema_(schema), budget_(first_max == 0 ? max : first_max), max_(max), frames_(frames), out_(out),
        used_(used) {
    if (frames_.size() < schema.depth) frames_.resize(schema.depth);
    *used_ = 0;
  }

  void cut(std::string_view request) {
    descend(0, request);
    flush();
  }

 private:
  void descend(size_t level_index, std::string_view msg) {
    const Level& level = schema_.levels[level_index];
    Frame& frame = frames_[level_index];
    // Envelope first, so every piece repeats it.
    frame.envelope.clear();
    frame.body.clear();
    Reader r(msg);
    uint32_t number, type;
    std::string_view value;
    const char* start = r.position();
    while (!r.done() && r.field(&number, &type, &value)) {
      if (!is_child(level, number)) frame.envelope.append(start, static_cast<size_t>(r.position() - start));
      start = r.position();
    }
    Reader children(msg);
    while (!children.done() && children.field(&number, &type, &value)) {
      if (!is_child(level, number) || type != kLengthDelimited) continue;
      if (level_index + 1 == schema_.depth) {
        if (items_ == budget_) flush();
        append_tag(&frame.body, number, kLengthDelimited);
        append_varint(&frame.body, value.size());
        frame.body.append(value);
        ++items_;
      } else {
        frames_[level_index + 1].field = number;
        descend(level_index + 1, value);
        close(level_index + 1);
      }
    }
  }

  // Moves frame `i`'s content (if it carries any child) into its parent's body.
  void close(size_t i) {
    Frame& f = frames_[i];
    if (f.body.empty()) return;
    Frame& parent = frames_[i - 1];
    append_tag(&parent.body, f.field, kLengthDelimited);
    append_varint(&parent.body, f.envelope.size() + f.body.size());
    parent.body.append(f.envelope);
    parent.body.append(f.body);
    f.body.clear();
  }

  void flush() {
    if (items_ == 0) return;
    for (size_t i = schema_.depth - 1; i > 0; --i) close(i);
    if (*used_ == out_.size()) out_.emplace_back();
    Piece& piece = out_[(*used_)++];
    piece.bytes.swap(frames_[0].body);  // the piece's old buffer becomes the next body
    piece.items = items_;
    frames_[0].body.clear();
    items_ = 0;
    budget_ = max_;
  }

  const Schema schema_;
  size_t budget_;
  const size_t max_;
  std::vector<Frame>& frames_;
  std::vector<Piece>& out_;
  size_t* used_;
  size_t items_ = 0;
};

}  // namespace

void append_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void append_tag(std::string* out, uint32_t field, uint32_t wire_type) { append_varint(out, (uint64_t(field) << 3) | wire_type); }

WalkResult count_items(Signal signal, std::string_view request) {
  WalkResult result;
  std::string where;
  walk(schema_for(signal), 0, request, where, &result);
  return result;
}

struct Splitter::Scratch {
  std::vector<Frame> frames;
  std::vector<Piece> pieces;
  size_t used = 0;
};

Splitter::Splitter() : scratch_(std::make_unique<Scratch>()) {}
Splitter::~Splitter() = default;

std::span<const Piece> Splitter::split(Signal signal, std::string_view request, size_t first_max_items,
                                       size_t max_items) {
  if (max_items == 0) max_items = SIZE_MAX;
  Cutter cutter(schema_for(signal), first_max_items, max_items, scratch_->frames, scratch_->pieces, &scratch_->used);
  cutter.cut(request);
  return std::span<const Piece>(scratch_->pieces.data(), scratch_->used);
}

void split_items(Signal signal, std::string_view request, size_t first_max_items, size_t max_items,
                 std::vector<Piece>* out) {
  Splitter splitter;
  for (const Piece& piece : splitter.split(signal, request, first_max_items, max_items)) out->push_back(piece);
}

}  // namespace otlpd::otlp
