#include "config/sources.h"

#include "config/node.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace otlpd::config {

namespace {

constexpr const char* kRedacted = "[REDACTED]";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool names_secret(const std::string& key) {
  const std::string k = lower(key);
  for (const char* word : {"token", "password", "secret", "authorization", "api_key", "apikey", "bearer"}) {
    if (k.find(word) != std::string::npos) return true;
  }
  return false;
}

// Splits "a::b::c" or "a.b.c" into keys; empty when a key is empty.
std::vector<std::string> split_key_path(const std::string& path) {
  const std::string separator = path.find("::") != std::string::npos ? "::" : ".";
  std::vector<std::string> keys;
  size_t start = 0;
  for (;;) {
    const size_t at = path.find(separator, start);
    keys.push_back(path.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (keys.back().empty()) return {};
    if (at == std::string::npos) return keys;
    start = at + separator.size();
  }
}

// {k1: {k2: ... {kn: value}}}
YAML::Node nest(const std::vector<std::string>& keys, const YAML::Node& value) {
  YAML::Node node = value;
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
    YAML::Node map(YAML::NodeType::Map);
    map[*it] = node;
    node = map;
  }
  return node;
}

}  // namespace

YAML::Node merge_trees(const YAML::Node& base, const YAML::Node& over) {
  if (!base || !base.IsMap() || !over.IsMap()) return YAML::Clone(over);
  // Keys keep the order they first appear in.
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& entry : base) {
    const std::string key = entry.first.Scalar();
    const YAML::Node replacement = over[key];
    out[key] = replacement ? merge_trees(entry.second, replacement) : YAML::Clone(entry.second);
  }
  for (const auto& entry : over) {
    const std::string key = entry.first.Scalar();
    if (!base[key]) out[key] = YAML::Clone(entry.second);
  }
  return out;
}

bool load_sources(const Sources& sources, YAML::Node* out, Errors* errors) {
  const size_t errors_before = errors->size();
  YAML::Node merged;
  for (const auto& file : sources.files) {
    std::ifstream in(file);
    if (!in) {
      errors->add("", "cannot read config file " + file);
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    try {
      YAML::Node doc = YAML::Load(text.str());
      // Merging walks the tree: an alias cycle or a complex key must be an error first.
      if (!check_shape(doc, "", errors)) continue;
      if (doc && !doc.IsNull()) merged = merge_trees(merged, doc);
    } catch (const YAML::Exception& e) {
      errors->add("", file + ": invalid YAML: " + e.what());
    }
  }
  for (const auto& set : sources.sets) {
    const size_t eq = set.find('=');
    const auto keys = eq == std::string::npos ? std::vector<std::string>{} : split_key_path(set.substr(0, eq));
    if (keys.empty()) {
      errors->add("", "--set " + set + ": expected KEY=VALUE with KEY like processors::batch::timeout");
      continue;
    }
    YAML::Node value;
    try {
      value = YAML::Load(set.substr(eq + 1));
      if (!check_shape(value, "", errors)) continue;
    } catch (const YAML::Exception& e) {
      errors->add("", "--set " + set + ": invalid value: " + e.what());
      continue;
    }
    merged = merge_trees(merged, nest(keys, value));
  }
  *out = merged;
  return errors->size() == errors_before;
}

YAML::Node redacted(const YAML::Node& root) {
  if (!root || !root.IsMap()) {
    if (root && root.IsSequence()) {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& item : root) out.push_back(redacted(item));
      return out;
    }
    return YAML::Clone(root);
  }
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& entry : root) {
    const std::string key = entry.first.Scalar();
    if (lower(key) == "headers" && entry.second.IsMap()) {
      YAML::Node headers(YAML::NodeType::Map);
      for (const auto& h : entry.second) headers[h.first.Scalar()] = kRedacted;
      out[key] = headers;
    } else if (names_secret(key) && !entry.second.IsMap()) {
      out[key] = kRedacted;
    } else {
      out[key] = redacted(entry.second);
    }
  }
  return out;
}

}  // namespace otlpd::config
