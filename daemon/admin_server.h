// AdminServer: the small HTTP/1.1 server behind otlpd's own endpoints (self-metrics, health
// check). Boost.Beast, keep-alive, GET and HEAD only, bounded requests and connections. It serves
// a fixed table of routes, exact path -> handler; a query string is ignored. Another path gets 404
// with the owner's `not_found` text, another method on a route 405 (Allow: GET, HEAD). A HEAD gets
// the headers the GET would get (Content-Length included) and no body.
//
// Threads and ownership: the server runs on the caller's io_context, which one or more threads
// run. All of its state (acceptor, connections) lives on one strand, so it needs no mutex; these
// endpoints are polled rarely and answer cheaply, so serialising requests costs nothing. Handlers
// run on that strand; the server owns them (and what they capture by value) until every pending
// I/O handler is gone, so what they reference must outlive the threads running the io_context.
// start(), port(), url() and stop() are called from one control thread, never from an I/O thread
// (stop() waits for the strand).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipeline/status.h"

namespace boost::asio {
class io_context;
}

namespace otlpd {

// What a route answers.
struct AdminReply {
  unsigned status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // more headers (name, value)
};

// Called on the server's strand for each GET or HEAD of its path.
using AdminHandler = std::function<AdminReply()>;
using AdminRoutes = std::map<std::string, AdminHandler, std::less<>>;  // exact path, e.g. "/metrics"

class AdminServer {
 public:
  // `address` is "host:port", "[v6]:port" or ":port" (all IPv4 interfaces); a host name is
  // resolved (IPv4 first), port 0 picks a free port. `not_found` is the body of a 404 (it can say
  // where the pages are); a newline is appended.
  AdminServer(boost::asio::io_context& io, std::string address, AdminRoutes routes, std::string not_found);
  // Stops if the owner did not (call stop() while the io_context still runs: it waits for it).
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Resolves, binds and listens, then accepts on the io_context. Returns quickly; an error Status
  // naming the address (e.g. "bind 127.0.0.1:8888: Address already in use") when it fails, having
  // undone its work.
  Status start();
  // The bound port, and "http://HOST:PORT" + `path`; valid after a successful start().
  uint16_t port() const;
  std::string url(std::string_view path) const;
  // Stops accepting and closes every connection (a response being written is cut). Waits, up to
  // a couple of seconds, until that happened on the strand. Idempotent.
  void stop();

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace otlpd
