// config::Node: typed, path-aware reading of one YAML mapping into a component's config struct.
//
// Each read_* marks its key as known and leaves `out` untouched when the key is absent, so a
// struct's in-class defaults stay. A bad value is recorded in the shared Errors with its full path;
// finish() records every key nobody read as unknown. Not thread-safe; used while loading config.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/errors.h"

namespace otlpd::config {

class Node {
 public:
  Node(YAML::Node yaml, std::string path, Errors* errors);

  // True when the key was absent or written as null (`batch:` with nothing after it).
  bool is_null() const { return !yaml_ || yaml_.IsNull(); }
  const std::string& path() const { return path_; }
  Errors& errors() const { return *errors_; }
  // The same content in one canonical text (mapping keys sorted): equal texts, equal configs.
  std::string fingerprint() const;

  // Whether the key is written (even as null); does not mark it known.
  bool has(std::string_view key) const;

  void read(std::string_view key, std::string& out);
  void read(std::string_view key, bool& out);
  void read(std::string_view key, int64_t& out);
  void read(std::string_view key, uint64_t& out);
  void read(std::string_view key, double& out);
  void read(std::string_view key, std::vector<std::string>& out);
  void read(std::string_view key, std::map<std::string, std::string>& out);
  // "200ms", "5s", "1.5s", "1m", "1h", "250us"; 0 alone is allowed.
  void read_duration(std::string_view key, std::chrono::milliseconds& out);
  // One of the listed names.
  template <typename E>
  void read_enum(std::string_view key, E& out, std::initializer_list<std::pair<std::string_view, E>> names);
  // Checks min <= out <= max for an integer read earlier (error names the key).
  void check_range(std::string_view key, int64_t value, int64_t min, int64_t max);

  // A nested mapping; a null Node when absent (reading from it keeps defaults).
  Node child(std::string_view key);
  // Every (key, value) of this mapping, all marked known; for maps keyed by component ids.
  std::vector<std::pair<std::string, Node>> entries();

  void error(std::string_view key, std::string message) const;
  void error_here(std::string message) const { errors_->add(path_, std::move(message)); }
  // Records "unknown key" for every key no read_*/child/entries call asked for.
  void finish();

 private:
  YAML::Node lookup(std::string_view key);
  std::string key_path(std::string_view key) const;
  // The key's value when it is a single value; a null node when absent (or not a scalar: error).
  YAML::Node scalar(std::string_view key);

  YAML::Node yaml_;
  std::string path_;
  Errors* errors_;
  std::set<std::string, std::less<>> known_;
};

// Checks what the rest of the config code assumes of a parsed document: every mapping key is a
// plain scalar (not `? [a]`), and nothing nests deeper than kMaxDepth levels, which also catches
// an alias that contains itself (`a: &x {b: *x}`) before anything walks it forever, and no more
// than kMaxValues values once aliases are expanded (a "billion laughs" document of nested aliases
// would otherwise take hours to walk). Each problem is an error naming its path; false when there
// was one.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxValues = 100000;
bool check_shape(const YAML::Node& root, std::string_view source, Errors* errors);

// Parses "5s"-style durations; false when malformed.
bool parse_duration(std::string_view text, std::chrono::milliseconds* out);

template <typename E>
void Node::read_enum(std::string_view key, E& out, std::initializer_list<std::pair<std::string_view, E>> names) {
  YAML::Node n = scalar(key);
  if (n.IsNull()) return;
  const std::string text = n.Scalar();
  std::string allowed;
  for (const auto& [name, value] : names) {
    if (name == text) {
      out = value;
      return;
    }
    if (name.empty()) continue;  // an accepted spelling of a default, not worth listing
    if (!allowed.empty()) allowed += ", ";
    allowed += name;
  }
  error(key, "invalid value \"" + text + "\" (expected one of: " + allowed + ")");
}

}  // namespace otlpd::config
