#include "edge/hit_reporter.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "edge/field_encoding.h"
#include "platform/core/log.h"

namespace kurt::edge {
namespace {

// kurt.api.v1.CachedRedirects.held = true (field 2, a varint), after the hits: a held batch
// tells its service that redirects wait for it. Held batches are small (each is sent as soon as
// it has a hit), so the copy that adds it costs little.
constexpr absl::string_view kHeldField("\x10\x01", 2);

// Worth another try with the same hits: the service did not answer, or not in time.
bool Retryable(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

}  // namespace

namespace {

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// A length-delimited field's size (field numbers below 16: a one-byte tag).
size_t LengthDelimitedSize(size_t bytes) { return 1 + VarintSize(bytes) + bytes; }

void AppendLength(size_t n, std::string* out) {
  while (n >= 0x80) {
    out->push_back(static_cast<char>(n | 0x80));
    n >>= 7;
  }
  out->push_back(static_cast<char>(n));
}

}  // namespace

void AppendCachedHitStart(absl::string_view request, absl::Time time, std::string* out) {
  // kurt.api.v1.CachedRedirects.Hit: request = 1, time = 2, metadata = 3 (map entries).
  AppendLengthDelimited(1, request, out);
  const int64_t micros = absl::ToUnixMicros(time);
  int64_t seconds = micros / 1000000;
  int64_t nanos = micros % 1000000 * 1000;
  if (nanos < 0) {
    seconds -= 1;
    nanos += 1000000000;
  }
  // google.protobuf.Timestamp {seconds = 1; nanos = 2}, zero fields omitted.
  const size_t size = (seconds != 0 ? 1 + VarintSize(static_cast<uint64_t>(seconds)) : 0) +
                      (nanos != 0 ? 1 + VarintSize(static_cast<uint64_t>(nanos)) : 0);
  out->push_back(static_cast<char>((2 << 3) | 2));
  AppendLength(size, out);
  if (seconds != 0) {
    AppendVarintField(1, static_cast<uint64_t>(seconds), out);
  }
  if (nanos != 0) {
    AppendVarintField(2, static_cast<uint64_t>(nanos), out);
  }
}

void AppendCachedHitMetadata(absl::string_view key, absl::string_view value, std::string* out) {
  // A map entry {key = 1; value = 2}.
  out->push_back(static_cast<char>((3 << 3) | 2));
  AppendLength(LengthDelimitedSize(key.size()) + LengthDelimitedSize(value.size()), out);
  AppendLengthDelimited(1, key, out);
  AppendLengthDelimited(2, value, out);
}

std::string EncodeCachedHit(
    absl::string_view request, absl::Time time,
    absl::Span<const std::pair<absl::string_view, absl::string_view>> metadata) {
  std::string hit;
  AppendCachedHitStart(request, time, &hit);
  for (const auto& [key, value] : metadata) {
    AppendCachedHitMetadata(key, value, &hit);
  }
  return hit;
}

HitReporter::HitReporter(HitReporterOptions options, HitSender* sender, metrics::Registry* registry)
    : options_(std::move(options)), sender_(sender) {
  auto& hits = registry->AddCounter(
      "kurt_edge_cached_hits_total",
      "Redirects answered from the edge's cache, by whether their service heard of them",
      {"outcome"});
  reported_ = &hits.WithLabels({"reported"});
  dropped_ = &hits.WithLabels({"dropped"});
  spooled_ = &registry
                  ->AddCounter("kurt_edge_cached_hits_spooled_total",
                               "Cached hits written to the spool: their redirect went out before "
                               "their service had them, or the edge stopped first")
                  .Get();
  if (!options_.spool_path.empty()) {
    ReadSpool();
  }
  if (spool_fd_ >= 0) {
    syncer_ = std::thread([this] { SyncLoop(); });
  }
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
  if (syncer_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(sync_mu_);
      sync_stop_ = true;  // after one more sync for the redirects still waiting for one
    }
    sync_wake_.notify_one();
    syncer_.join();
  }
  // The last round could not send these (the service is unreachable): kept in the spool for
  // the next start, or lost without one. Held redirects still waiting go out after the sync.
  bool written = false;
  for (const auto& m : methods_) {
    if (m->pending == 0) {
      continue;
    }
    size_t kept = 0;
    for (Batch& b : m->batches) {
      if (b.spooled == b.count) {
        kept += b.count;
      } else if (Spool(*m, b.hits, b.count - b.spooled)) {
        kept += b.count;
        written = true;
      }
    }
    if (kept > 0) {
      KURT_LOG(kWarn, "cached redirects not reported before shutdown; kept in the spool",
               {"method", m->method}, {"hits", kept}, {"spool", options_.spool_path});
    }
    if (m->pending > kept) {
      dropped_->Increment(static_cast<double>(m->pending - kept));
      KURT_LOG(kError, "cached redirects not reported before shutdown; dropped",
               {"method", m->method}, {"hits", m->pending - kept});
    }
  }
  if (written) {
    SyncSpool();
  }
  for (const auto& m : methods_) {
    for (Batch& b : m->batches) {
      RunCallbacks(b.waiters, false);
    }
  }
  if (spool_fd_ >= 0) {
    close(spool_fd_);
  }
}

namespace {

void AppendU32(uint32_t v, std::string* out) {
  char b[4];
  std::memcpy(b, &v, 4);
  out->append(b, 4);
}

bool ReadU32(absl::string_view* in, uint32_t* v) {
  if (in->size() < 4) {
    return false;
  }
  std::memcpy(v, in->data(), 4);
  in->remove_prefix(4);
  return true;
}

bool ReadBytes(absl::string_view* in, absl::string_view* out) {
  uint32_t n = 0;
  if (!ReadU32(in, &n) || in->size() < n) {
    return false;
  }
  *out = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

}  // namespace

void HitReporter::ReadSpool() {
  spool_fd_ = open(options_.spool_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (spool_fd_ < 0) {
    KURT_LOG(kError, "cannot open the cached hits' spool; hits live in memory only",
             {"spool", options_.spool_path}, {"error", std::strerror(errno)});
    return;
  }
  std::string data;
  char buf[1 << 16];
  for (ssize_t n; (n = pread(spool_fd_, buf, sizeof(buf), static_cast<off_t>(data.size()))) > 0;) {
    data.append(buf, static_cast<size_t>(n));
  }
  // Records: method, count, hits. A torn last record (a write cut short) is cut off.
  absl::string_view in(data);
  size_t good = 0;
  size_t hits = 0;
  while (!in.empty()) {
    absl::string_view method;
    absl::string_view blob;
    uint32_t count = 0;
    if (!ReadBytes(&in, &method) || !ReadU32(&in, &count) || !ReadBytes(&in, &blob)) {
      break;
    }
    good = data.size() - in.size();
    recovered_.push_back(Spooled{std::string(method), std::string(blob), count});
    hits += count;
  }
  if (good < data.size() && ftruncate(spool_fd_, static_cast<off_t>(good)) != 0) {
    KURT_LOG(kError, "cannot cut the spool's torn record", {"spool", options_.spool_path},
             {"error", std::strerror(errno)});
  }
  spooled_unreported_ = hits;
  if (hits > 0) {
    KURT_LOG(kWarn, "cached redirects of a previous run, from the spool: sending them",
             {"hits", hits}, {"spool", options_.spool_path});
  } else if (good == 0 && ftruncate(spool_fd_, 0) != 0) {
    KURT_LOG(kError, "cannot empty the spool", {"spool", options_.spool_path});
  }
}

bool HitReporter::Spool(const Method& method, absl::string_view hits, size_t count) {
  if (spool_fd_ < 0 || count == 0) {
    return spool_fd_ >= 0;
  }
  std::string record;
  const std::string name = method.service + " " + method.method;
  AppendU32(static_cast<uint32_t>(name.size()), &record);
  record += name;
  AppendU32(static_cast<uint32_t>(count), &record);
  AppendU32(static_cast<uint32_t>(hits.size()), &record);
  record.append(hits.data(), hits.size());
  std::lock_guard<std::mutex> lock(spool_mu_);
  for (absl::string_view rest(record); !rest.empty();) {
    const ssize_t n = write(spool_fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      KURT_LOG(kError, "cannot write the cached hits' spool", {"spool", options_.spool_path},
               {"error", std::strerror(errno)});
      return false;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  spooled_unreported_ += count;
  spooled_->Increment(static_cast<double>(count));
  return true;
}

bool HitReporter::SyncSpool() {
  const int rc =
      options_.spool_sync != nullptr ? options_.spool_sync(spool_fd_) : fdatasync(spool_fd_);
  if (rc != 0) {
    KURT_LOG(kError, "cannot sync the cached hits' spool", {"spool", options_.spool_path},
             {"error", std::strerror(errno)});
    return false;
  }
  return true;
}

void HitReporter::RunCallbacks(std::vector<Done>& dones, bool reported) {
  for (Done& done : dones) {
    std::move(done)(reported);
    done = nullptr;  // what it holds (the call) goes now, not after the others
  }
  dones.clear();
}

void HitReporter::AfterSync(std::vector<Done> dones) {
  if (spool_fd_ < 0) {
    RunCallbacks(dones, false);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    for (Done& done : dones) {
      unsynced_.push_back(std::move(done));
    }
  }
  sync_wake_.notify_one();
}

void HitReporter::SyncLoop() {
  std::unique_lock<std::mutex> lock(sync_mu_);
  while (true) {
    sync_wake_.wait(lock, [&] { return sync_stop_ || !unsynced_.empty(); });
    if (unsynced_.empty()) {
      return;  // stopping, and no redirect waits
    }
    // Their hits were written before they were queued: the sync that starts now covers them,
    // and those queued meanwhile wait for the next one.
    std::vector<Done> dones;
    dones.swap(unsynced_);
    lock.unlock();
    SyncSpool();  // a failure is logged; the redirects go out all the same
    RunCallbacks(dones, false);
    lock.lock();
  }
}

void HitReporter::Unspool(size_t count) {
  std::lock_guard<std::mutex> lock(spool_mu_);
  spooled_unreported_ -= std::min(count, spooled_unreported_);
  if (spooled_unreported_ == 0 && spool_fd_ >= 0 && ftruncate(spool_fd_, 0) != 0) {
    KURT_LOG(kError, "cannot empty the spool", {"spool", options_.spool_path},
             {"error", std::strerror(errno)});
  }
}

int HitReporter::AddMethod(std::string service, std::string method) {
  std::lock_guard<std::mutex> lock(mu_);
  auto m = std::make_unique<Method>();
  m->service = std::move(service);
  m->method = std::move(method);
  // The spooled hits of a previous run for this method, first in line.
  const std::string name = m->service + " " + m->method;
  for (Spooled& r : recovered_) {
    if (r.method != name || r.count == 0) {
      continue;
    }
    if (m->batches.empty() || Full(m->batches.back())) {
      m->batches.emplace_back();
    }
    Batch& b = m->batches.back();
    b.hits += r.hits;
    b.count += r.count;
    b.spooled += r.count;
    m->pending += r.count;
    m->pending_bytes += r.hits.size();
    r.count = 0;
  }
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
    if (release != nullptr &&
        Spool(m, absl::string_view(b.hits).substr(before), 1)) {  // before it goes out
      ++b.spooled;
    }
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
    std::vector<Done> released;
    released.push_back(std::move(release));
    AfterSync(std::move(released));  // its hit is written above; the redirect goes out once synced
  }
}

void HitReporter::SpoolRest(const Method& m, Batch& b) {
  if (b.spooled < b.count && Spool(m, b.hits, b.count - b.spooled)) {
    b.spooled = b.count;
  }
}

void HitReporter::ReleaseExpiredHolds(std::unique_lock<std::mutex>& lock, Method& m) {
  const absl::Time now = absl::Now();
  std::vector<Done> released;
  for (Batch& b : m.batches) {
    if (b.waiters.empty() || now < b.held_since + options_.hold_timeout) {
      continue;
    }
    SpoolRest(m, b);  // as for a held batch whose own call failed past its hold
    for (Done& done : b.waiters) {
      released.push_back(std::move(done));
    }
    b.waiters.clear();
    m.failing = true;
  }
  if (released.empty()) {
    return;
  }
  lock.unlock();
  AfterSync(std::move(released));
  lock.lock();
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
          m.service, m.method, held ? absl::StrCat(batch.hits, kHeldField) : batch.hits,
          held ? std::min(timeout, std::max(batch.held_since + options_.hold_timeout - absl::Now(),
                                            absl::Milliseconds(1)))
               : timeout);
      const bool retry = Retryable(status.error_code());
      const bool expired = held && absl::Now() >= batch.held_since + options_.hold_timeout;
      if (!status.ok() && retry && expired) {
        SpoolRest(m, batch);  // its redirects go out once synced, their hits kept
        // Failing from now on, before its redirects go out: a hit that comes once they have (the
        // same client again) is not held behind this batch.
        lock.lock();
        m.failing = true;
        lock.unlock();
        AfterSync(std::move(batch.waiters));
        batch.waiters.clear();
      } else if (status.ok() || !retry) {
        RunCallbacks(batch.waiters, status.ok());  // the redirects go out
      }
      lock.lock();
      if (status.ok()) {
        m.failing = false;
        reported_->Increment(static_cast<double>(batch.count));
        if (batch.spooled > 0) {
          Unspool(batch.spooled);
        }
        continue;
      }
      if (retry) {
        // Back in front, whole, for the next round (new hits went to batches behind it). Past
        // the hold its redirects went out (failing, above): until a call succeeds, new hits are
        // not held.
        m.pending += batch.count;
        m.pending_bytes += batch.hits.size();
        m.batches.push_front(std::move(batch));
        KURT_LOG(kWarn, "cached redirects not reported yet; trying again", {"method", m.method},
                 {"hits", m.pending}, {"error", status.error_message()});
        ReleaseExpiredHolds(lock, m);
        all_sent = false;
        break;
      }
      dropped_->Increment(static_cast<double>(batch.count));
      if (batch.spooled > 0) {
        Unspool(batch.spooled);
      }
      KURT_LOG(kError, "cached redirects refused; dropped", {"method", m.method},
               {"hits", batch.count}, {"code", static_cast<int>(status.error_code())},
               {"error", status.error_message()});
    }
  }
  return all_sent;
}

}  // namespace kurt::edge
