#include "pipeline/io_thread.h"

namespace otlpd {

namespace {
thread_local bool is_io_thread = false;
}

void mark_io_thread() { is_io_thread = true; }
bool on_io_thread() { return is_io_thread; }

}  // namespace otlpd
