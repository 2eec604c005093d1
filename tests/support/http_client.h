// A blocking HTTP/1.1 test client on one connection (Boost.Beast), for tests of otlpd's own
// endpoints. Every operation is bounded by a 5 s deadline, so a silent server fails the test
// instead of hanging it. One thread uses a client. Header-only.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace otlpd::test {

class HttpClient {
 public:
  using tcp = boost::asio::ip::tcp;
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  // Connects, or throws std::runtime_error.
  explicit HttpClient(const tcp::endpoint& server) : stream_(io_) {
    stream_.expires_after(kDeadline);
    boost::beast::error_code ec;
    stream_.async_connect(server, [&](boost::beast::error_code e) { ec = e; });
    drive();
    if (ec) throw std::runtime_error("connect to port " + std::to_string(server.port()) + ": " + ec.message());
  }
  explicit HttpClient(uint16_t port) : HttpClient(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port)) {}

  struct Reply {
    boost::beast::error_code error;
    Response response;
    unsigned status() const { return response.result_int(); }
    std::string header(boost::beast::http::field f) const { return std::string(response[f]); }
  };

  // Sends `req` (Host and Content-Length set here) and reads the response.
  Reply send(Request req) {
    namespace http = boost::beast::http;
    req.set(http::field::host, "127.0.0.1");
    req.prepare_payload();
    Reply reply;
    stream_.expires_after(kDeadline);
    http::async_write(stream_, req, [&](boost::beast::error_code ec, size_t) { reply.error = ec; });
    drive();
    if (reply.error) return reply;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    parser.skip(req.method() == http::verb::head);  // a HEAD answer has a Content-Length but no body
    stream_.expires_after(kDeadline);
    http::async_read(stream_, buffer_, parser, [&](boost::beast::error_code ec, size_t) { reply.error = ec; });
    drive();
    if (!reply.error) reply.response = parser.release();
    return reply;
  }

  Reply request(boost::beast::http::verb method, const std::string& target) {
    return send(Request(method, target, 11));
  }

  // True when the server closes the connection (end of stream) within the deadline.
  bool closed_by_server() {
    boost::beast::error_code result;
    char byte;
    stream_.expires_after(kDeadline);
    stream_.async_read_some(boost::asio::buffer(&byte, 1), [&](boost::beast::error_code ec, size_t) { result = ec; });
    drive();
    return result == boost::asio::error::eof || result == boost::asio::error::connection_reset;
  }

 private:
  static constexpr std::chrono::seconds kDeadline{5};

  void drive() {
    io_.restart();
    io_.run();
  }

  boost::asio::io_context io_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
};

}  // namespace otlpd::test
