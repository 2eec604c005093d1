// The otlp receiver's gRPC side, driven by a real gRPC client with the generated typed stubs.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.grpc.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.grpc.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "pipeline/telemetry.h"
#include "receivers/otlp/otlp_receiver.h"

using namespace otlpd;
namespace col = opentelemetry::proto::collector;

namespace {

// Records what it is given and answers with a scripted Status.
class ScriptedConsumer : public Consumer {
 public:
  Status consume(BatchPtr batch) override {
    std::lock_guard lock(mu);
    batches.push_back(batch);
    return answer;
  }
  std::mutex mu;
  std::vector<BatchPtr> batches;
  Status answer;
};

struct Fixture {
  Fixture(bool with_metrics = true) {
    consumers.traces = traces;
    if (with_metrics) consumers.metrics = metrics;
    consumers.logs = logs;
    OtlpReceiverConfig config;
    config.grpc = GrpcServerSettings{};
    config.grpc->endpoint = "127.0.0.1:0";
    config.grpc->max_recv_msg_size_mib = 1;
    receiver = std::make_unique<OtlpReceiver>(ComponentId{"otlp", ""}, config, consumers, host);
    REQUIRE(receiver->start().is_ok());
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(receiver->grpc_port()),
                                       grpc::InsecureChannelCredentials());
    trace_stub = col::trace::v1::TraceService::NewStub(channel);
    metrics_stub = col::metrics::v1::MetricsService::NewStub(channel);
    logs_stub = col::logs::v1::LogsService::NewStub(channel);
  }
  ~Fixture() { receiver->shutdown(Clock::now() + std::chrono::seconds(2)); }

  std::unique_ptr<grpc::ClientContext> context(bool gzip = false) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (gzip) ctx->set_compression_algorithm(GRPC_COMPRESS_GZIP);
    return ctx;
  }

  boost::asio::io_context io;
  Telemetry telemetry;
  Host host{io, telemetry};
  std::shared_ptr<ScriptedConsumer> traces = std::make_shared<ScriptedConsumer>();
  std::shared_ptr<ScriptedConsumer> metrics = std::make_shared<ScriptedConsumer>();
  std::shared_ptr<ScriptedConsumer> logs = std::make_shared<ScriptedConsumer>();
  ReceiverConsumers consumers;
  std::unique_ptr<OtlpReceiver> receiver;
  std::unique_ptr<col::trace::v1::TraceService::Stub> trace_stub;
  std::unique_ptr<col::metrics::v1::MetricsService::Stub> metrics_stub;
  std::unique_ptr<col::logs::v1::LogsService::Stub> logs_stub;
};

col::trace::v1::ExportTraceServiceRequest traces_request(int spans) {
  col::trace::v1::ExportTraceServiceRequest req;
  auto* ss = req.add_resource_spans()->add_scope_spans();
  for (int i = 0; i < spans; ++i) {
    auto* span = ss->add_spans();
    span->set_trace_id(std::string(16, static_cast<char>(i + 1)));
    span->set_span_id(std::string(8, static_cast<char>(i + 1)));
    span->set_name("span-" + std::to_string(i));
  }
  return req;
}

}  // namespace

TEST_CASE("gRPC Export delivers the client's exact bytes and counts", "[receiver][grpc]") {
  Fixture f;
  for (bool gzip : {false, true}) {
    auto req = traces_request(3);
    col::trace::v1::ExportTraceServiceResponse resp;
    grpc::Status s = f.trace_stub->Export(f.context(gzip).get(), req, &resp);
    REQUIRE(s.ok());
    CHECK_FALSE(resp.has_partial_success());
  }
  REQUIRE(f.traces->batches.size() == 2);
  for (const auto& b : f.traces->batches) {
    CHECK(b->signal == Signal::traces);
    CHECK(b->items == 3);
    CHECK(b->payload == traces_request(3).SerializeAsString());
  }
  CHECK(f.telemetry.value("otlpd_receiver_accepted_items",
                          {{"receiver", "otlp"}, {"transport", "grpc"}, {"signal", "traces"}}) == 6);
}

TEST_CASE("gRPC logs and metrics reach their own consumers", "[receiver][grpc]") {
  Fixture f;
  col::logs::v1::ExportLogsServiceRequest logs;
  auto* sl = logs.add_resource_logs()->add_scope_logs();
  for (int i = 0; i < 4; ++i) sl->add_log_records()->mutable_body()->set_string_value("hello");
  col::logs::v1::ExportLogsServiceResponse logs_resp;
  REQUIRE(f.logs_stub->Export(f.context().get(), logs, &logs_resp).ok());
  col::metrics::v1::ExportMetricsServiceRequest metrics;
  auto* m = metrics.add_resource_metrics()->add_scope_metrics()->add_metrics();
  m->set_name("requests");
  m->mutable_sum()->add_data_points()->set_as_int(5);
  m->mutable_sum()->add_data_points()->set_as_int(6);
  col::metrics::v1::ExportMetricsServiceResponse metrics_resp;
  REQUIRE(f.metrics_stub->Export(f.context().get(), metrics, &metrics_resp).ok());
  REQUIRE(f.logs->batches.size() == 1);
  CHECK(f.logs->batches[0]->items == 4);
  REQUIRE(f.metrics->batches.size() == 1);
  CHECK(f.metrics->batches[0]->items == 2);
  CHECK(f.traces->batches.empty());
}

TEST_CASE("a signal without a pipeline answers UNIMPLEMENTED", "[receiver][grpc]") {
  Fixture f(/*with_metrics=*/false);
  col::metrics::v1::ExportMetricsServiceRequest req;
  col::metrics::v1::ExportMetricsServiceResponse resp;
  grpc::Status s = f.metrics_stub->Export(f.context().get(), req, &resp);
  CHECK(s.error_code() == grpc::StatusCode::UNIMPLEMENTED);
}

TEST_CASE("a malformed request is INVALID_ARGUMENT and reaches nobody", "[receiver][grpc]") {
  Fixture f;
  grpc::GenericStub stub(grpc::CreateChannel("127.0.0.1:" + std::to_string(f.receiver->grpc_port()),
                                             grpc::InsecureChannelCredentials()));
  std::string garbage("\x0a\xff\x01zz", 5);  // field 1, length 255, 2 bytes follow
  grpc::Slice slice(garbage);
  grpc::ByteBuffer request(&slice, 1), response;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<grpc::Status> result;
  auto ctx = f.context();
  stub.UnaryCall(ctx.get(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", grpc::StubOptions(),
                 &request, &response, [&](grpc::Status s) {
                   std::lock_guard lock(mu);
                   result = s;
                   cv.notify_all();
                 });
  std::unique_lock lock(mu);
  REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return result.has_value(); }));
  CHECK(result->error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(result->error_message() ==
        "malformed traces request: request: field length 255 exceeds the 2 bytes remaining");
  CHECK(f.traces->batches.empty());
}

TEST_CASE("a full pipeline answers UNAVAILABLE with RetryInfo", "[receiver][grpc]") {
  Fixture f;
  f.traces->answer = Status::unavailable("queue full", std::chrono::milliseconds(2500));
  col::trace::v1::ExportTraceServiceResponse resp;
  grpc::Status s = f.trace_stub->Export(f.context().get(), traces_request(2), &resp);
  REQUIRE(s.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(s.error_message() == "queue full");
  google::rpc::Status details;
  REQUIRE(details.ParseFromString(s.error_details()));
  REQUIRE(details.details_size() == 1);
  google::rpc::RetryInfo retry;
  REQUIRE(details.details(0).UnpackTo(&retry));
  CHECK(retry.retry_delay().seconds() == 2);
  CHECK(retry.retry_delay().nanos() == 500'000'000);
  CHECK(f.telemetry.value("otlpd_receiver_refused_items",
                          {{"receiver", "otlp"}, {"transport", "grpc"}, {"signal", "traces"}}) == 2);
}

TEST_CASE("dropped items come back as partial_success", "[receiver][grpc]") {
  Fixture f;
  f.traces->answer = Status::partial(3, "batch queue full; dropped");
  col::trace::v1::ExportTraceServiceResponse resp;
  REQUIRE(f.trace_stub->Export(f.context().get(), traces_request(3), &resp).ok());
  CHECK(resp.partial_success().rejected_spans() == 3);
  CHECK(resp.partial_success().error_message() == "batch queue full; dropped");
}

TEST_CASE("a message over max_recv_msg_size_mib is RESOURCE_EXHAUSTED", "[receiver][grpc]") {
  Fixture f;
  auto req = traces_request(1);
  req.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->set_name(std::string(1100 * 1024, 'x'));
  col::trace::v1::ExportTraceServiceResponse resp;
  grpc::Status s = f.trace_stub->Export(f.context().get(), req, &resp);
  CHECK(s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(f.traces->batches.empty());
}

TEST_CASE("binding a port in use fails with the endpoint in the message", "[receiver][grpc]") {
  Fixture first;
  boost::asio::io_context io;
  Telemetry telemetry;
  Host host{io, telemetry};
  OtlpReceiverConfig config;
  config.grpc = GrpcServerSettings{};
  config.grpc->endpoint = "127.0.0.1:" + std::to_string(first.receiver->grpc_port());
  OtlpReceiver second(ComponentId{"otlp", "second"}, config, first.consumers, host);
  Status s = second.start();
  CHECK_FALSE(s.is_ok());
  CHECK(s.message() == "cannot listen for gRPC on " + config.grpc->endpoint);
}

namespace {
// Holds every caller inside consume() until released.
class GateConsumer : public Consumer {
 public:
  Status consume(BatchPtr) override {
    std::unique_lock lock(mu);
    ++entered;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
    return Status::ok();
  }
  void release() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
  bool wait_entered() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return entered > 0; });
  }
  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;
  bool open = false;
};
}  // namespace

TEST_CASE("grpc receiver: shutdown while a handler is still running waits for it, then stops cleanly", "[grpc]") {
  boost::asio::io_context io;
  Telemetry telemetry;
  Host host{io, telemetry};
  auto gate = std::make_shared<GateConsumer>();
  ReceiverConsumers consumers;
  consumers.traces = gate;
  OtlpReceiverConfig config;
  config.grpc = GrpcServerSettings{};
  config.grpc->endpoint = "127.0.0.1:0";
  OtlpReceiver receiver(ComponentId{"otlp", ""}, config, consumers, host);
  REQUIRE(receiver.start().is_ok());
  auto stub = col::trace::v1::TraceService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(receiver.grpc_port()), grpc::InsecureChannelCredentials()));
  grpc::Status client_status;
  std::thread client([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    col::trace::v1::ExportTraceServiceResponse resp;
    client_status = stub->Export(&ctx, traces_request(3), &resp);
  });
  REQUIRE(gate->wait_entered());
  // The handler answers only after shutdown's deadline has passed: shutdown waits for it and the
  // late answer must not touch the closed completion queue.
  const auto deadline = Clock::now() + std::chrono::milliseconds(100);
  std::thread releaser([&] {
    std::this_thread::sleep_until(deadline + std::chrono::milliseconds(200));  // the fault: a late handler
    gate->release();
  });
  receiver.shutdown(deadline);
  releaser.join();
  client.join();
  CHECK_FALSE(client_status.ok());  // cancelled by the shutdown deadline
  CHECK(gate->entered == 1);
}
