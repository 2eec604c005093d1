#include "config/node.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace otlpd::config {

namespace {
// yaml-cpp's Node::operator= rebinds or mutates the shared tree depending on state, so nodes here
// are only ever copy-constructed.
bool map_or_null(const YAML::Node& n) { return !n || n.IsNull() || n.IsMap(); }
}  // namespace

Node::Node(YAML::Node yaml, std::string path, Errors* errors)
    : yaml_(map_or_null(yaml) ? yaml : YAML::Node()), path_(std::move(path)), errors_(errors) {
  if (!map_or_null(yaml)) errors_->add(path_, "expected a mapping");
}

std::string Node::key_path(std::string_view key) const {
  const std::string shown = key.empty() ? std::string("\"\"") : std::string(key);  // an empty key still names a place
  return path_.empty() ? shown : path_ + "." + shown;
}

namespace {

struct ShapeWalk {
  Errors* errors;
  size_t values = 0;  // nodes visited, aliases counted each time they are reached
};

bool check_shape_at(const YAML::Node& n, const std::string& path, int depth, ShapeWalk* walk) {
  const std::string shown_path = path.empty() ? "(top level)" : path;
  if (depth > kMaxDepth) {
    walk->errors->add(shown_path, "nested deeper than " + std::to_string(kMaxDepth) +
                                      " levels (or an alias that contains itself)");
    return false;
  }
  if (++walk->values > kMaxValues) {
    // Aliases share nodes, so a few hundred bytes can stand for billions of values; everything
    // after this walk would visit each of them.
    walk->errors->add(shown_path, "more than " + std::to_string(kMaxValues) + " values once aliases are expanded");
    return false;
  }
  auto child = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
  bool ok = true;
  if (n.IsMap()) {
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) {
        walk->errors->add(shown_path, "a mapping key must be a plain value, not a list or mapping");
        ok = false;
        continue;
      }
      const std::string key = kv.first.Scalar().empty() ? "\"\"" : kv.first.Scalar();
      if (!check_shape_at(kv.second, child(key), depth + 1, walk)) return false;
    }
  } else if (n.IsSequence()) {
    size_t i = 0;
    for (const auto& item : n) {
      if (!check_shape_at(item, path + "[" + std::to_string(i++) + "]", depth + 1, walk)) return false;
    }
  }
  return ok;
}

}  // namespace

bool check_shape(const YAML::Node& root, std::string_view source, Errors* errors) {
  const size_t before = errors->size();
  ShapeWalk walk{errors};
  check_shape_at(root, std::string(source), 0, &walk);
  return errors->size() == before;
}

void Node::error(std::string_view key, std::string message) const { errors_->add(key_path(key), std::move(message)); }

YAML::Node Node::lookup(std::string_view key) {
  known_.emplace(key);
  if (is_null()) return YAML::Node();
  // yaml-cpp's operator[] on a const node does not insert; a missing key gives an invalid node.
  const YAML::Node& map = yaml_;
  YAML::Node value = map[std::string(key)];
  if (!value) return YAML::Node();
  return value;
}

bool Node::has(std::string_view key) const {
  if (is_null()) return false;
  const YAML::Node& map = yaml_;
  return static_cast<bool>(map[std::string(key)]);
}

YAML::Node Node::scalar(std::string_view key) {
  YAML::Node node = lookup(key);
  if (node.IsNull()) return node;
  if (!node.IsScalar()) {
    error(key, "expected a single value");
    return YAML::Node();
  }
  return node;
}

void Node::read(std::string_view key, std::string& out) {
  YAML::Node n = scalar(key);
  if (!n.IsNull()) out = n.Scalar();
}

void Node::read(std::string_view key, bool& out) {
  YAML::Node n = scalar(key);
  if (n.IsNull()) return;
  const std::string& s = n.Scalar();
  if (s == "true" || s == "True" || s == "TRUE") {
    out = true;
  } else if (s == "false" || s == "False" || s == "FALSE") {
    out = false;
  } else {
    error(key, "invalid value \"" + s + "\" (expected true or false)");
  }
}

void Node::read(std::string_view key, int64_t& out) {
  YAML::Node n = scalar(key);
  if (n.IsNull()) return;
  const std::string& s = n.Scalar();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    error(key, "invalid value \"" + s + "\" (expected an integer)");
    return;
  }
  out = v;
}

void Node::read(std::string_view key, uint64_t& out) {
  YAML::Node n = scalar(key);
  if (n.IsNull()) return;
  const std::string& s = n.Scalar();
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    error(key, "invalid value \"" + s + "\" (expected a non-negative integer)");
    return;
  }
  out = v;
}

void Node::read(std::string_view key, double& out) {
  YAML::Node n = scalar(key);
  if (n.IsNull()) return;
  const std::string& s = n.Scalar();
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || errno != 0 || !std::isfinite(v)) {
    error(key, "invalid value \"" + s + "\" (expected a number)");
    return;
  }
  out = v;
}

void Node::read(std::string_view key, std::vector<std::string>& out) {
  YAML::Node n = lookup(key);
  if (n.IsNull()) return;
  if (!n.IsSequence()) {
    error(key, "expected a list");
    return;
  }
  std::vector<std::string> values;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) {
      error(std::string(key) + "[" + std::to_string(i) + "]", "expected a single value");
      continue;
    }
    values.push_back(n[i].Scalar());
  }
  out = std::move(values);
}

void Node::read(std::string_view key, std::map<std::string, std::string>& out) {
  YAML::Node n = lookup(key);
  if (n.IsNull()) return;
  if (!n.IsMap()) {
    error(key, "expected a mapping");
    return;
  }
  for (const auto& kv : n) {
    std::string k = kv.first.Scalar();
    if (!kv.second.IsScalar()) {
      error(std::string(key) + "." + k, "expected a single value");
      continue;
    }
    out[k] = kv.second.Scalar();
  }
}

bool parse_duration(std::string_view text, std::chrono::milliseconds* out) {
  if (text == "0") {
    *out = std::chrono::milliseconds(0);
    return true;
  }
  size_t unit_at = 0;
  while (unit_at < text.size() && (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  if (unit_at == 0 || unit_at == text.size()) return false;
  std::string number(text.substr(0, unit_at));
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size()) return false;
  std::string_view unit = text.substr(unit_at);
  double ms_per_unit = 0;
  if (unit == "ms") ms_per_unit = 1;
  else if (unit == "s") ms_per_unit = 1000;
  else if (unit == "m") ms_per_unit = 60'000;
  else if (unit == "h") ms_per_unit = 3'600'000;
  else if (unit == "us" || unit == "µs") ms_per_unit = 0.001;
  else if (unit == "ns") ms_per_unit = 0.000001;
  else return false;
  double ms = value * ms_per_unit;
  if (!std::isfinite(ms) || ms > 1e15) return false;
  *out = std::chrono::milliseconds(static_cast<int64_t>(std::llround(ms)));
  return true;
}

void Node::read_duration(std::string_view key, std::chrono::milliseconds& out) {
  YAML::Node n = scalar(key);
  if (n.IsNull()) return;
  std::chrono::milliseconds v{};
  if (!parse_duration(n.Scalar(), &v)) {
    error(key, "invalid duration \"" + n.Scalar() + "\" (expected a number with a unit, e.g. 200ms, 5s, 1m)");
    return;
  }
  out = v;
}

void Node::check_range(std::string_view key, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    error(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                   std::to_string(value));
  }
}

Node Node::child(std::string_view key) { return Node(lookup(key), key_path(key), errors_); }

namespace {
void write_canonical(const YAML::Node& n, std::string& out) {
  if (!n || n.IsNull()) {
    out += "~";
  } else if (n.IsScalar()) {
    out += YAML::Dump(n);
  } else if (n.IsSequence()) {
    out += "[";
    for (const auto& item : n) {
      write_canonical(item, out);
      out += ",";
    }
    out += "]";
  } else {
    std::map<std::string, YAML::Node> sorted;
    for (const auto& kv : n) sorted.emplace(kv.first.Scalar(), kv.second);
    out += "{";
    for (const auto& [key, value] : sorted) {
      out += YAML::Dump(YAML::Node(key)) + ":";
      write_canonical(value, out);
      out += ",";
    }
    out += "}";
  }
}
}  // namespace

std::string Node::fingerprint() const {
  std::string out;
  write_canonical(yaml_, out);
  return out;
}

std::vector<std::pair<std::string, Node>> Node::entries() {
  std::vector<std::pair<std::string, Node>> out;
  if (is_null()) return out;
  for (const auto& kv : yaml_) {
    std::string key = kv.first.Scalar();
    known_.insert(key);
    out.emplace_back(key, Node(kv.second, key_path(key), errors_));
  }
  return out;
}

void Node::finish() {
  if (is_null()) return;
  for (const auto& kv : yaml_) {
    std::string key = kv.first.Scalar();
    if (!known_.count(key)) errors_->add(key_path(key), "unknown key");
  }
}

}  // namespace otlpd::config
