#include "config/env.h"

#include <cctype>
#include <cstdlib>

namespace otlpd::config {

namespace {
bool valid_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}
}  // namespace

std::string expand_env(std::string_view value, const std::string& path, Errors& errors) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c != '$' || i + 1 == value.size()) {
      out += c;
      continue;
    }
    if (value[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (value[i + 1] != '{') {
      out += c;
      continue;
    }
    size_t close = value.find('}', i + 2);
    if (close == std::string_view::npos) {
      errors.add(path, "unterminated ${ in \"" + std::string(value) + "\"");
      return std::string(value);
    }
    std::string_view ref = value.substr(i + 2, close - i - 2);
    if (ref.substr(0, 4) == "env:") ref.remove_prefix(4);
    if (!valid_name(ref)) {
      errors.add(path, "invalid environment variable name \"" + std::string(ref) + "\"");
      return std::string(value);
    }
    if (const char* env = std::getenv(std::string(ref).c_str())) out += env;
    i = close;
  }
  return out;
}

void expand_env_tree(YAML::Node root, const std::string& path, Errors& errors) {
  if (!root) return;
  if (root.IsScalar()) {
    const std::string& s = root.Scalar();
    if (s.find('$') != std::string::npos) root = expand_env(s, path, errors);
    return;
  }
  if (root.IsSequence()) {
    for (size_t i = 0; i < root.size(); ++i) expand_env_tree(root[i], path + "[" + std::to_string(i) + "]", errors);
    return;
  }
  if (root.IsMap()) {
    for (auto kv : root) {
      const std::string key = kv.first.Scalar().empty() ? "\"\"" : kv.first.Scalar();  // as Node::key_path shows it
      expand_env_tree(kv.second, path.empty() ? key : path + "." + key, errors);
    }
  }
}

}  // namespace otlpd::config
