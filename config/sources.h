// Config sources: the files (`--config`, repeatable) and overrides (`--set`) one config is made of,
// merged into one YAML tree before it is parsed, as the Collector does: mappings merge key by key
// with later files winning; anything else (a list, a value) is replaced whole. Then each
// `--set KEY=VALUE` is applied, KEY a path of mapping keys joined by "::" (the Collector's form)
// or by "." ("processors.batch.timeout=2s", "exporters::otlp/x::endpoint=host:4317"); VALUE is read
// as YAML, so "[a, b]" is a list.
//
// redacted() is for `otlpd print-config`: a copy with values that may be secrets replaced.
// Used from the main thread at start-up.
#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/errors.h"

namespace otlpd::config {

struct Sources {
  std::vector<std::string> files;  // in order; later ones override earlier ones
  std::vector<std::string> sets;   // KEY=VALUE, applied after every file
};

// A new tree: `over` merged onto `base` (neither is modified).
YAML::Node merge_trees(const YAML::Node& base, const YAML::Node& over);

// Reads and merges every source. Errors (unreadable file, invalid YAML, malformed --set) name the
// file or the --set; false when there is any.
bool load_sources(const Sources& sources, YAML::Node* out, Errors* errors);

// A copy of `root` in which the values of `headers` mappings and of keys that name secrets
// (token, password, secret, authorization, api_key, apikey, bearer) read "[REDACTED]".
YAML::Node redacted(const YAML::Node& root);

}  // namespace otlpd::config
