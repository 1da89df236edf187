// Tells services about the redirects the edge answered from its own cache, so that they see every
// redirect although the hot ones never leave the edge (kurt-links counts each as a click). A
// redirect route names the RPC that hears of them: (kurt.api.v1.http_redirect).cached_hits_method,
// which takes a kurt.api.v1.CachedRedirects.
//
// Add() only appends the hit, already in wire format, to the last batch of its method (a new one
// once that holds max_batch hits or max_batch_bytes): the I/O threads call it for every cached
// answer. A thread of the reporter's own sends each method's batches, oldest first, every
// `interval`, or sooner once a batch is full.
// - A call that fails UNAVAILABLE or DEADLINE_EXCEEDED (the service restarting, unreachable or
//   overloaded) keeps its batch in front; it goes again the next round. The service may have taken
//   it before failing (it died before answering, or Kafka acknowledged after the deadline): then
//   its hits are published twice, each with its click id, and analytics counts each once.
// - Any other failure (the service refuses the batch, or does not have the method) drops it.
// - At most max_pending hits and max_pending_bytes wait per method; beyond that new hits are
//   dropped.
// - A hit added with a `done` callback is held: its redirect has not gone out yet, and goes out
//   when its service has it (done(true)). Such a batch is sent at once, not after the interval,
//   and says so (CachedRedirects.held: the service publishes it at once, where it may gather
//   the others for a few milliseconds): while calls are under way the next batch fills, so hits
//   are committed in groups. A retryable failure tries again after hold_retry (the channel
//   picks another replica). Past hold_timeout, or when the service refuses the batch, the
//   redirects go out all the same (done(false)): the service being down must not take the
//   cached redirects down with it. The hits of a batch past its hold stay queued as above, and
//   until a call succeeds again new hits are not held (done(false) at once). Such hits are
//   first written to the spool (spool_path) and sent again by the next reporter on the file, so
//   a killed edge loses no click of a redirect it answered; without a spool it loses those
//   whose service was unreachable (or whose Kafka was slower than the hold) at the time. Their
//   redirects go out once the spool is synced: a thread of the spool's own syncs (fdatasync)
//   whatever was written since its last sync, then lets those redirects go, so that no I/O
//   thread waits for the disk and one sync serves many hits. Callbacks never run under the
//   reporter's lock.
// Every hit ends in kurt_edge_cached_hits_total{outcome="reported"|"dropped"}; the destructor (the
// edge shutting down) sends what is pending once more, with a shorter deadline, and puts what
// still did not go in the spool (counts it as dropped without one).
// Add is thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "grpcpp/support/status.h"
#include "platform/core/metrics.h"

namespace kurt::edge {

struct HitReporterOptions {
  absl::Duration interval = absl::Milliseconds(500);  // at least 10 ms
  size_t max_batch = 2000;
  size_t max_batch_bytes = 1 << 20;  // well under gRPC's 4 MB message limit
  size_t max_pending = 200000;
  size_t max_pending_bytes = 64 << 20;
  // Deadline of one call: longer than the service needs to make a batch durable (links waits for
  // Kafka), so that a slow broker delays reports rather than repeating them.
  absl::Duration timeout = absl::Seconds(30);
  // Deadline of the calls of the last round (the edge shutting down within its grace period).
  absl::Duration shutdown_timeout = absl::Seconds(5);
  // Held hits (Add with `done`): how long they may wait for their service, and the pause
  // between tries.
  absl::Duration hold_timeout = absl::Seconds(1);
  absl::Duration hold_retry = absl::Milliseconds(20);
  // Threads that send batches, each one call at a time. Held hits wait for their call, so more
  // than one keeps several batches in flight; batches may then arrive out of order.
  size_t senders = 1;
  // A file that keeps the hits whose redirects went out before their service had them (past
  // the hold, or while the service was failing), and at shutdown those not reported yet: each is
  // written and synced before its redirect goes out, and sent again by the next reporter on the
  // same file (the edge restarted; its click id makes the second copy count once). The file is
  // emptied once every hit in it was reported. "": none (such hits live in memory only).
  std::string spool_path;
  // How the spool is synced: 0 on success, else -1 and errno (nullptr: fdatasync). Tests slow
  // it down.
  std::function<int(int fd)> spool_sync;
};

// The call that delivers a batch: Upstreams in the edge, a fake in tests.
class HitSender {
 public:
  virtual ~HitSender() = default;
  // Sends `batch` (a serialized kurt.api.v1.CachedRedirects) to `method` ("/pkg.Service/Method")
  // of `service`; returns when it is answered.
  virtual grpc::Status Send(const std::string& service, const std::string& method,
                            const std::string& batch, absl::Duration timeout) = 0;
};

// One cached redirect as a kurt.api.v1.CachedRedirects.Hit, in wire format.
std::string EncodeCachedHit(
    absl::string_view request, absl::Time time,
    absl::Span<const std::pair<absl::string_view, absl::string_view>> metadata);
// The same, appended to `out` in parts without a string in between (the edge encodes each hit
// into a buffer its thread keeps): first the request and the time, then each metadata entry.
void AppendCachedHitStart(absl::string_view request, absl::Time time, std::string* out);
void AppendCachedHitMetadata(absl::string_view key, absl::string_view value, std::string* out);

class HitReporter {
 public:
  HitReporter(HitReporterOptions options, HitSender* sender, metrics::Registry* registry);
  ~HitReporter();
  HitReporter(const HitReporter&) = delete;
  HitReporter& operator=(const HitReporter&) = delete;

  // Before the first Add, from one thread: a destination; returns its number for Add.
  int AddMethod(std::string service, std::string method);
  // Called once, when the redirect may go out: whether the service has the hit by then.
  using Done = absl::AnyInvocable<void(bool reported) &&>;
  // Queues one hit (EncodeCachedHit) for method `id`. With `done`, the hit is held (see above);
  // when it cannot even be queued (too many pending), done(false) runs before Add returns; when
  // it is not held (the service is failing), done(false) runs once the hit is in the spool (on
  // the spool's thread), or before Add returns without a spool.
  void Add(int id, absl::string_view hit, Done done = nullptr);
  // Sends what is pending now and returns when that is done (tests).
  void Flush();
  // Hits waiting for method `id`.
  size_t Pending(int id);

 private:
  struct Batch {
    std::string hits;  // repeated `hits` entries: a serialized CachedRedirects
    size_t count = 0;
    std::vector<Done> waiters;  // of held hits
    absl::Time held_since;      // when the first held hit came
    size_t spooled = 0;         // of its hits, those in the spool
  };
  struct Method {
    std::string service;
    std::string method;
    std::deque<Batch> batches;  // oldest first; only the last one takes new hits
    size_t pending = 0;         // hits in `batches`
    bool failing = false;       // a held batch outlived its hold; no call succeeded since
    size_t pending_bytes = 0;
  };

  void Run();
  // Sends each method's batches, oldest first; false when one stays after a failure worth
  // trying again. Called with `lock` held; releases it during each call.
  bool SendPending(std::unique_lock<std::mutex>& lock, absl::Duration timeout);
  // The batch takes no more hits.
  bool Full(const Batch& batch) const;
  // A method has a batch that takes no more hits.
  bool AnyFull() const;
  // A method has a batch with held hits.
  bool AnyHeld() const;
  // Runs each callback (freeing it as soon as it ran) and empties `dones`.
  static void RunCallbacks(std::vector<Done>& dones, bool reported);
  // The held batches of `m` waiting behind one that just failed (they are not sent this round)
  // whose hold has passed: their hits are written to the spool and kept, their redirects go out
  // once it is synced (done(false), AfterSync), and `m` is failing. Called with `lock` held;
  // releases it to hand the callbacks over.
  void ReleaseExpiredHolds(std::unique_lock<std::mutex>& lock, Method& m);
  // Appends hits (repeated `hits` entries) of `method` to the spool, not synced yet (SyncSpool,
  // AfterSync); false when there is no spool or it could not be written (logged).
  bool Spool(const Method& method, absl::string_view hits, size_t count);
  // Writes `b`'s hits to the spool before its redirects go out unreported, unless all are in it
  // already. Hits written one by one before (Add, while failing) are written again: their click
  // ids make the copies count once. Only those not counted before are counted.
  void SpoolRest(const Method& m, Batch& b);
  // Makes what was written to the spool so far durable; false (logged) when it failed. The hits
  // stay counted as spooled either way (their redirects go out all the same): after a failed
  // sync the disk may have lost them.
  bool SyncSpool();
  // Runs each of `dones` (done(false): their redirects go out unreported) once what was written
  // to the spool before this call is synced, on the spool's thread; at once without a spool.
  void AfterSync(std::vector<Done> dones);
  // The spool's thread: syncs for the redirects waiting on it, many at once.
  void SyncLoop();
  // `count` spooled hits were reported (or dropped for good): the spool is emptied once none is
  // left.
  void Unspool(size_t count);
  // Reads the spool a previous reporter left (constructor).
  void ReadSpool();

  const HitReporterOptions options_;
  HitSender* sender_;
  metrics::Counter* reported_;
  metrics::Counter* dropped_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::vector<std::unique_ptr<Method>> methods_;
  bool stop_ = false;
  bool flush_ = false;
  size_t in_round_ = 0;               // threads sending now
  uint64_t rounds_started_ = 0;       // sending rounds begun so far, numbered from 1
  uint64_t last_round_finished_ = 0;  // the number of the latest round that finished
  std::vector<std::thread> threads_;

  // The spool: its records are (method, hits, count); read at start until AddMethod claims them.
  struct Spooled {
    std::string method;  // "service method"
    std::string hits;
    size_t count = 0;
  };
  std::mutex spool_mu_;  // after mu_ when both are held
  int spool_fd_ = -1;
  size_t spooled_unreported_ = 0;   // guarded by spool_mu_
  std::vector<Spooled> recovered_;  // guarded by mu_
  metrics::Counter* spooled_ = nullptr;
  // The redirects that go out after the next sync; the spool's thread (spool_fd_ >= 0).
  std::mutex sync_mu_;  // taken alone
  std::condition_variable sync_wake_;
  std::vector<Done> unsynced_;  // guarded by sync_mu_
  bool sync_stop_ = false;      // guarded by sync_mu_
  std::thread syncer_;
};

}  // namespace kurt::edge
