// The components compiled into otlpd, registered explicitly (no static-initialiser registration).
#pragma once

#include "pipeline/registry.h"

namespace otlpd {

void register_builtins(Registry& registry);

}  // namespace otlpd
