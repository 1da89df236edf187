// Server-streaming RPCs: each message becomes a Server-Sent Event (`id:` from the message's
// event id field, `data:` its JSON), or a chunk of raw content when the stream carries
// google.api.HttpBody (the service's content-disposition metadata becoming that header). One
// message is read from the upstream only after the previous one was written to the client, so a
// slow client slows the stream instead of filling memory.
#include <atomic>
#include <deque>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "edge/edge.h"
#include "edge/edge_call.h"
#include "edge/status_mapping.h"

namespace kurt::edge {

namespace http = boost::beast::http;
namespace net = boost::asio;

// Lives until the upstream call is done and the client's response ended. The upstream call runs on
// Upstreams' completion queues (the unary calls' threads); its completions post everything to the
// connection's I/O thread, where the rest of its state is touched. Operations on the call: one
// write (the request, with the initial metadata and the half-close: a single batch), then one read
// at a time, then Finish once no read will follow (the last one failed, or the client left).
struct Edge::StreamCall : std::enable_shared_from_this<Edge::StreamCall> {
  StreamCall(Edge* edge, std::shared_ptr<Call> call)
      : edge(edge), call(std::move(call)), timer(this->call->exchange->executor()) {}

  // A completion of one of the call's operations, on the completion thread.
  struct Op final : Upstreams::Tag {
    Op(StreamCall* stream, void (StreamCall::*on)(bool)) : stream(stream), on(on) {}
    StreamCall* stream;
    void (StreamCall::*on)(bool);
    void Proceed(bool ok) override {
      StreamCall* s = stream;
      (s->*on)(ok);
      s->OpDone();  // may let the StreamCall (and this Op) go
    }
  };

  Edge* edge;
  std::shared_ptr<Call> call;
  // After `call`, so that it goes first: it lives in memory call->context owns.
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream;
  grpc::ByteBuffer request;
  grpc::ByteBuffer message;
  grpc::Status status;
  Op write_op{this, &StreamCall::OnWriteDone};
  Op read_op{this, &StreamCall::OnReadDone};
  Op finish_op{this, &StreamCall::OnFinishDone};
  std::atomic<int> pending_ops{0};
  bool finished = false;             // completion thread
  std::shared_ptr<StreamCall> self;  // set while an operation is pending
  net::steady_timer timer;

  bool sse = true;
  bool head_sent = false;
  bool head_pending = false;
  bool writing = false;
  bool read_outstanding = false;
  bool finish_started = false;
  bool upstream_done = false;
  bool client_gone = false;
  bool ended = false;
  std::string content_type;  // raw streams: from the first message
  struct Chunk {
    std::string data;
    bool then_read;
  };
  std::deque<Chunk> queue;

  void Begin(grpc::GenericStub* stub, const std::string& bytes) {
    sse = !call->route->response_is_http_body;
    request = ToByteBuffer(bytes);
    self = shared_from_this();
    call->exchange->OnClientGone([w = weak_from_this()] {
      if (auto s = w.lock()) {
        s->ClientGone();
      }
    });
    // The initial metadata waits for the request, and goes with it and the half-close.
    call->context->set_initial_metadata_corked(true);
    stream = edge->upstreams_->PrepareStream(stub, &*call->context, call->route->grpc_method);
    stream->StartCall(nullptr);
    pending_ops = 2;
    stream->Write(request, grpc::WriteOptions().set_last_message(), &write_op);
    read_outstanding = true;
    stream->Read(&message, &read_op);
    if (sse) {
      ArmTimer(edge->options_.sse_first_flush);
    }
  }

  // Completion thread.
  void OnWriteDone(bool /*ok*/) {}  // a failed write shows as the read's and Finish's failure
  void OnReadDone(bool ok) {
    std::string bytes = ok ? FromByteBuffer(message) : std::string();
    net::post(call->exchange->executor(),
              [s = shared_from_this(), ok, bytes = std::move(bytes)]() mutable {
                s->HandleRead(ok, bytes);
              });
  }
  void OnFinishDone(bool /*ok*/) { finished = true; }
  void OpDone() {
    if (pending_ops.fetch_sub(1) != 1 || !finished) {
      return;
    }
    // Nothing of gRPC's refers to this call any more.
    Edge* e = edge;
    e->Untrack(&*call->context);
    net::post(call->exchange->executor(), [s = std::move(self)] { s->HandleDone(s->status); });
    e->upstream_calls_.fetch_sub(1);
  }

  // I/O thread from here on.
  // No read follows: the call's status, once it has one.
  void StartFinish() {
    if (finish_started) {
      return;
    }
    finish_started = true;
    pending_ops.fetch_add(1);
    stream->Finish(&status, &finish_op);
  }

  void HandleRead(bool ok, const std::string& bytes) {
    read_outstanding = false;
    if (!ok || client_gone) {
      return StartFinish();
    }
    if (sse) {
      absl::StatusOr<HttpPayload> json = edge->transcoder_.StreamMessage(*call->route, bytes);
      if (!json.ok()) {
        call->context->TryCancel();
        return StartFinish();
      }
      std::string id = edge->transcoder_.EventId(*call->route, bytes);
      std::string event;
      if (!id.empty()) {
        absl::StrAppend(&event, "id: ", id, "\n");
      }
      absl::StrAppend(&event, "data: ", json->body, "\n\n");
      Enqueue(std::move(event), /*then_read=*/true);
    } else {
      absl::StatusOr<HttpPayload> raw = edge->transcoder_.StreamMessage(*call->route, bytes);
      if (content_type.empty() && raw.ok()) {
        content_type = raw->content_type;
      }
      Enqueue(raw.ok() ? std::move(raw->body) : std::string(), /*then_read=*/true);
    }
  }

  void HandleDone(const grpc::Status& status) {
    upstream_done = true;
    timer.cancel();
    if (client_gone) {
      return End();
    }
    if (!head_sent && !head_pending) {
      if (!status.ok()) {
        if (HttpStatusFromGrpc(status.error_code()) >= 500) {
          edge->route_states_[call->route->id].upstream_errors->Increment();
        }
        ended = true;
        return edge->SendGrpcError(call, status);
      }
      // A stream without a single message: an empty body.
      SendHead();
    }
    if (!status.ok() && sse) {
      std::string event = "event: error\ndata: ";
      grpc::Status shown = edge->PublicStatus(*call, status);
      event += edge->transcoder_.ErrorBody(shown.error_code(), shown.error_message(),
                                           shown.error_details());
      event += "\n\n";
      Enqueue(std::move(event), false);
    }
    MaybeEnd();
  }

  void ClientGone() {
    client_gone = true;
    timer.cancel();
    call->context->TryCancel();
    if (!read_outstanding) {
      StartFinish();
    }
  }

  void Enqueue(std::string data, bool then_read) {
    queue.push_back({std::move(data), then_read});
    if (!head_sent) {
      if (!head_pending) {
        SendHead();
      }
      return;
    }
    Pump();
  }

  void SendHead() {
    head_pending = true;
    HttpResponse head{http::status::ok, 11};
    if (sse) {
      head.set(http::field::content_type, "text/event-stream");
      head.set(http::field::cache_control, "no-cache");
      head.set("x-accel-buffering", "no");
    } else {
      head.set(http::field::content_type,
               content_type.empty() ? "application/octet-stream" : content_type);
      head.set(http::field::cache_control, "no-store");
      // A download's file name and disposition (attachment) come from the service, as initial
      // metadata: known by now, since a message has arrived after it.
      const auto& metadata = call->context->GetServerInitialMetadata();
      if (auto it = metadata.find("content-disposition"); it != metadata.end()) {
        head.set(http::field::content_disposition,
                 std::string(it->second.data(), it->second.size()));
      }
    }
    edge->AddCommonHeaders(*call, &head);
    edge->Record(*call, 200);
    call->exchange->StartStream(std::move(head), [s = shared_from_this()](bool ok) {
      s->head_sent = true;
      s->head_pending = false;
      if (!ok) {
        return s->ClientGone();
      }
      s->Pump();
      s->MaybeEnd();
    });
  }

  void Pump() {
    if (writing || queue.empty() || !head_sent) {
      return;
    }
    writing = true;
    bool then_read = queue.front().then_read;
    std::string data = std::move(queue.front().data);
    queue.pop_front();
    if (data.empty()) {  // nothing to write (an empty HttpBody message)
      net::post(call->exchange->executor(),
                [s = shared_from_this(), then_read] { s->Written(true, then_read); });
      return;
    }
    call->exchange->WriteChunk(std::move(data), [s = shared_from_this(), then_read](bool ok) {
      s->Written(ok, then_read);
    });
  }

  void Written(bool ok, bool then_read) {
    writing = false;
    if (!ok) {
      return ClientGone();
    }
    if (then_read && !client_gone && !upstream_done) {
      read_outstanding = true;
      pending_ops.fetch_add(1);
      stream->Read(&message, &read_op);
    }
    Pump();
    MaybeEnd();
  }

  void MaybeEnd() {
    if (upstream_done && head_sent && !writing && queue.empty()) {
      End();
    }
  }

  void End() {
    if (ended) {
      return;
    }
    ended = true;
    if (head_sent) {
      call->exchange->EndStream();
    }
  }

  void ArmTimer(absl::Duration after) {
    timer.expires_after(absl::ToChronoNanoseconds(after));
    timer.async_wait([s = shared_from_this()](boost::system::error_code ec) {
      if (ec || s->upstream_done || s->client_gone) {
        return;
      }
      if (!s->head_sent && !s->head_pending) {
        s->SendHead();
      } else if (s->head_sent && !s->writing && s->queue.empty()) {
        s->queue.push_back({": keepalive\n\n", false});
        s->Pump();
      }
      s->ArmTimer(s->edge->options_.sse_keepalive);
    });
  }
};

void Edge::StartStream(const std::shared_ptr<Call>& call, const std::string& request) {
  grpc::GenericStub* stub = upstreams_->Stub(call->route->service);
  if (stub == nullptr) {
    return SendError(call, 503, grpc::StatusCode::UNAVAILABLE,
                     absl::StrCat("no upstream configured for ", call->route->service));
  }
  MakeContext(*call);
  if (!Track(&*call->context, /*stream=*/true)) {
    return SendShuttingDown(call);
  }
  auto stream = std::make_shared<StreamCall>(this, call);
  upstream_calls_.fetch_add(1);
  stream->Begin(stub, request);
}

}  // namespace kurt::edge
