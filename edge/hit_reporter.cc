#include "edge/hit_reporter.h"

#include <algorithm>

#include "edge/field_encoding.h"
#include "platform/core/log.h"

namespace kurt::edge {
namespace {

// Worth another try with the same hits: the service did not answer, or not in time.
bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

}  // namespace

std::string EncodeCachedHit(
    absl::string_view request, absl::Time time,
    const std::vector<std::pair<absl::string_view, std::string>>& metadata) {
  // kurt.api.v1.CachedRedirects.Hit: request = 1, time = 2, metadata = 3 (map entries).
  std::string hit;
  hit.reserve(request.size() + 24 + 8 * metadata.size());
  AppendLengthDelimited(1, request, &hit);
  const int64_t micros = absl::ToUnixMicros(time);
  int64_t seconds = micros / 1000000;
  int64_t nanos = micros % 1000000 * 1000;
  if (nanos < 0) {
    seconds -= 1;
    nanos += 1000000000;
  }
  AppendLengthDelimited(2, EncodeSecondsNanos(seconds, static_cast<int32_t>(nanos)), &hit);
  std::string entry;
  for (const auto& [key, value] : metadata) {
    entry.clear();
    AppendLengthDelimited(1, key, &entry);
    AppendLengthDelimited(2, value, &entry);
    AppendLengthDelimited(3, entry, &hit);
  }
  return hit;
}

HitReporter::HitReporter(HitReporterOptions options, HitSender* sender, metrics::Registry* registry)
    : options_(options), sender_(sender) {
  auto& hits = registry->AddCounter(
      "kurt_edge_cached_hits_total",
      "Redirects answered from the edge's cache, by whether their service heard of them",
      {"outcome"});
  reported_ = &hits.WithLabels({"reported"});
  dropped_ = &hits.WithLabels({"dropped"});
  for (size_t i = 0; i < std::max<size_t>(1, options_.senders); ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

HitReporter::~HitReporter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) {
    t.join();
  }
  // The last round could not send these (the service is unreachable): they are lost.
  for (const auto& m : methods_) {
    if (m->pending == 0) {
      continue;
    }
    for (Batch& b : m->batches) {
      Finish(b, false);
    }
    dropped_->Increment(static_cast<double>(m->pending));
    KURT_LOG(kError, "cached redirects not reported before shutdown; dropped",
             {"method", m->method}, {"hits", m->pending});
  }
}

int HitReporter::AddMethod(std::string service, std::string method) {
  std::lock_guard<std::mutex> lock(mu_);
  auto m = std::make_unique<Method>();
  m->service = std::move(service);
  m->method = std::move(method);
  methods_.push_back(std::move(m));
  return static_cast<int>(methods_.size()) - 1;
}

void HitReporter::Add(int id, absl::string_view hit, Done done) {
  bool wake;
  Done release;
  {
    std::unique_lock<std::mutex> lock(mu_);
    Method& m = *methods_[id];
    if (m.pending >= options_.max_pending || m.pending_bytes >= options_.max_pending_bytes) {
      dropped_->Increment();
      lock.unlock();
      if (done != nullptr) {
        std::move(done)(false);
      }
      return;
    }
    if (done != nullptr && (m.failing || stop_)) {
      // The service has been unreachable for longer than a hold: the redirect goes out now and
      // its hit waits with the others (at least once, in this process only).
      release = std::move(done);
      done = nullptr;
    }
    if (m.batches.empty() || Full(m.batches.back())) {
      m.batches.emplace_back();
    }
    Batch& b = m.batches.back();
    const size_t before = b.hits.size();
    AppendLengthDelimited(1, hit, &b.hits);
    ++b.count;
    ++m.pending;
    m.pending_bytes += b.hits.size() - before;
    wake = Full(b);
    if (done != nullptr) {
      if (b.waiters.empty()) {
        b.held_since = absl::Now();
      }
      b.waiters.push_back(std::move(done));
      wake = in_round_ < threads_.size();  // else a round under way sends this batch next
    }
  }
  if (wake) {
    wake_.notify_one();
  }
  if (release != nullptr) {
    std::move(release)(false);
  }
}

void HitReporter::Finish(Batch& batch, bool reported) {
  for (Done& done : batch.waiters) {
    std::move(done)(reported);
  }
  batch.waiters.clear();
}

void HitReporter::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  // A round that begins after this call, and every round under way, must have finished.
  const uint64_t until = rounds_started_ + 1;
  flush_ = true;
  wake_.notify_one();
  flushed_.wait(lock, [&] { return last_round_finished_ >= until && in_round_ == 0; });
}

size_t HitReporter::Pending(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  return methods_[id]->pending;
}

bool HitReporter::Full(const Batch& batch) const {
  return batch.count >= options_.max_batch || batch.hits.size() >= options_.max_batch_bytes;
}

bool HitReporter::AnyFull() const {
  // Only the last batch of a method takes hits: any before it is full.
  return std::any_of(methods_.begin(), methods_.end(), [&](const auto& m) {
    return m->batches.size() > 1 || (!m->batches.empty() && Full(m->batches.back()));
  });
}

bool HitReporter::AnyHeld() const {
  return std::any_of(methods_.begin(), methods_.end(), [](const auto& m) {
    return std::any_of(m->batches.begin(), m->batches.end(),
                       [](const Batch& b) { return !b.waiters.empty(); });
  });
}

void HitReporter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto interval =
      absl::ToChronoNanoseconds(std::max(options_.interval, absl::Milliseconds(10)));
  const auto hold_retry = absl::ToChronoNanoseconds(options_.hold_retry);
  bool backing_off = false;
  while (true) {
    // After a failed call, wait out the interval even when hits pile up; held hits wait only
    // hold_retry.
    if (backing_off && AnyHeld()) {
      wake_.wait_for(lock, hold_retry, [&] { return stop_ || flush_; });
    } else {
      wake_.wait_for(lock, interval,
                     [&] { return stop_ || flush_ || (!backing_off && (AnyFull() || AnyHeld())); });
    }
    const bool stopping = stop_;
    flush_ = false;
    const uint64_t round = ++rounds_started_;
    ++in_round_;
    backing_off = !SendPending(lock, stopping ? options_.shutdown_timeout : options_.timeout);
    --in_round_;
    last_round_finished_ = std::max(last_round_finished_, round);
    flushed_.notify_all();
    if (stopping) {
      return;
    }
  }
}

bool HitReporter::SendPending(std::unique_lock<std::mutex>& lock, absl::Duration timeout) {
  bool all_sent = true;
  // Methods are only added before the first hit, so the vector does not change while unlocked.
  for (size_t i = 0; i < methods_.size(); ++i) {
    Method& m = *methods_[i];
    while (!m.batches.empty()) {
      Batch batch = std::move(m.batches.front());
      m.batches.pop_front();
      m.pending -= batch.count;
      m.pending_bytes -= batch.hits.size();
      const bool held = !batch.waiters.empty();
      lock.unlock();
      grpc::Status status = sender_->Send(
          m.service, m.method, batch.hits,
          held ? std::min(timeout, std::max(batch.held_since + options_.hold_timeout - absl::Now(),
                                            absl::Milliseconds(1)))
               : timeout);
      const bool retry = Retryable(status.error_code());
      const bool expired = held && absl::Now() >= batch.held_since + options_.hold_timeout;
      if (status.ok() || !retry || expired) {
        Finish(batch, status.ok());  // the redirects go out
      }
      lock.lock();
      if (status.ok()) {
        m.failing = false;
        reported_->Increment(static_cast<double>(batch.count));
        continue;
      }
      if (retry) {
        // Back in front, whole, for the next round (new hits went to batches behind it). Past
        // the hold its redirects went out: until a call succeeds, new hits are not held.
        m.failing = m.failing || expired;
        m.pending += batch.count;
        m.pending_bytes += batch.hits.size();
        m.batches.push_front(std::move(batch));
        KURT_LOG(kWarn, "cached redirects not reported yet; trying again", {"method", m.method},
                 {"hits", m.pending}, {"error", status.error_message()});
        all_sent = false;
        break;
      }
      dropped_->Increment(static_cast<double>(batch.count));
      KURT_LOG(kError, "cached redirects refused; dropped", {"method", m.method},
               {"hits", batch.count}, {"code", static_cast<int>(status.error_code())},
               {"error", status.error_message()});
    }
  }
  return all_sent;
}

}  // namespace kurt::edge
