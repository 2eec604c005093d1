// Which threads run the shared io_context. Waiting on one of them stalls every connection, timer
// and exporter send it serves, so code that could wait (batch `when_full: block`) asks first.
#pragma once

namespace otlpd {

// Called once by each I/O thread when it starts.
void mark_io_thread();
bool on_io_thread();

}  // namespace otlpd
