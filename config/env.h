// Environment expansion in config values: ${env:VAR} and ${VAR} (the Collector's forms), $$ for a
// literal $. Applied to every scalar of a parsed YAML tree, so a value cannot change the structure.
#pragma once

#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "config/errors.h"

namespace otlpd::config {

// Expands one value; an unset variable expands to "". A malformed reference ("${" without "}", or a
// bad name) is an error at `path`.
std::string expand_env(std::string_view value, const std::string& path, Errors& errors);
// Expands every scalar in `root`, in place.
void expand_env_tree(YAML::Node root, const std::string& path, Errors& errors);

}  // namespace otlpd::config
