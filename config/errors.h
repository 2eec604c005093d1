// Config errors: every problem found in a config file, each with the YAML path it is about.
#pragma once

#include <string>
#include <vector>

namespace otlpd::config {

struct Error {
  std::string path;     // e.g. "exporters.otlp/primary.endpoint"
  std::string message;  // e.g. "required"
};

class Errors {
 public:
  void add(std::string path, std::string message) { list_.push_back({std::move(path), std::move(message)}); }
  bool empty() const { return list_.empty(); }
  size_t size() const { return list_.size(); }
  const std::vector<Error>& list() const { return list_; }
  // One line per error: "path: message".
  std::string to_string() const {
    std::string out;
    for (const auto& e : list_) {
      if (!out.empty()) out += '\n';
      out += e.path.empty() ? e.message : e.path + ": " + e.message;
    }
    return out;
  }

 private:
  std::vector<Error> list_;
};

}  // namespace otlpd::config
