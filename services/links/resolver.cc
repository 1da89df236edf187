#include "services/links/resolver.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace kurt::links {
namespace {

absl::Status NotFound(const std::string& code) {
  return absl::NotFoundError(absl::StrCat("no link with code '", code, "'"));
}

absl::Status Stopping() { return absl::UnavailableError("kurt-links is stopping"); }

CachedLink FromRecord(const ResolveRecord& r) {
  return CachedLink{true, r.target_url, r.expire_time, r.limits};
}

}  // namespace

Resolver::Resolver(LinksStore* store, LinkCache* cache, metrics::Registry* registry,
                   absl::Duration recent_window)
    : store_(store), cache_(cache), recent_window_(recent_window), flight_(kCoalesceLinger) {
  auto& cache_metric = registry->AddCounter("kurt_links_cache_requests_total",
                                            "Resolve cache lookups, by result", {"result"});
  cache_hits_ = &cache_metric.WithLabels({"hit"});
  cache_misses_ = &cache_metric.WithLabels({"miss"});
  cache_errors_ = &cache_metric.WithLabels({"error"});
  for (int i = 0; i < kLoadThreads; ++i) {
    load_threads_.emplace_back([this] { RunLoads(); });
  }
}

Resolver::~Resolver() {
  // The calls still waiting for a load thread are answered at once: during a database outage they
  // would each wait for a read's timeout, kLoadThreads at a time. Lookups the cache still holds
  // meet the same answer in QueueLoad; the loads under way finish.
  std::vector<Waiter> queued;
  {
    std::lock_guard<std::mutex> lock(loads_mu_);
    stopping_ = true;
    for (auto& [code, waiters] : waiting_) {
      for (Waiter& w : waiters) {
        queued.push_back(std::move(w));
      }
    }
    waiting_.clear();
    load_order_.clear();
    waiting_calls_ = 0;
  }
  loads_wake_.notify_all();
  for (Waiter& w : queued) {
    Answer(w.done, Stopping());
  }
  {
    std::unique_lock<std::mutex> lock(in_flight_mu_);
    idle_.wait(lock, [this] { return in_flight_ == 0; });
  }
  for (std::thread& t : load_threads_) {
    t.join();
  }
}

void Resolver::Answer(ResolveDone& done, absl::StatusOr<CachedLink> link) {
  done(std::move(link));
  std::lock_guard<std::mutex> lock(in_flight_mu_);
  if (--in_flight_ == 0) {
    idle_.notify_all();
  }
}

void Resolver::ResolveAsync(const std::string& code, absl::Time deadline, ResolveDone done) {
  {
    std::lock_guard<std::mutex> lock(in_flight_mu_);
    ++in_flight_;
  }
  cache_->GetAsync(code, [this, code, deadline, done = std::move(done)](
                             absl::StatusOr<std::optional<CachedLink>> cached) mutable {
    if (cached.ok() && cached->has_value()) {
      cache_hits_->Increment();
      if (!(*cached)->exists) {
        Answer(done, NotFound(code));
        return;
      }
      Answer(done, **std::move(cached));
      return;
    }
    (cached.ok() ? cache_misses_ : cache_errors_)->Increment();
    QueueLoad(code, Waiter{deadline, std::move(done)});
  });
}

void Resolver::QueueLoad(const std::string& code, Waiter waiter) {
  bool stopping = false;
  {
    std::lock_guard<std::mutex> lock(loads_mu_);
    stopping = stopping_;
    if (!stopping && waiting_calls_ < kMaxWaitingLoads) {
      auto [it, added] = waiting_.try_emplace(code);
      if (added) {
        load_order_.push_back(code);
      }
      it->second.push_back(std::move(waiter));
      ++waiting_calls_;
      if (added) {
        loads_wake_.notify_one();
      }
      return;
    }
  }
  Answer(waiter.done, stopping
                          ? Stopping()
                          : absl::UnavailableError(absl::StrCat(
                                kMaxWaitingLoads, " redirects already wait for the database")));
}

void Resolver::RunLoads() {
  std::unique_lock<std::mutex> lock(loads_mu_);
  while (true) {
    loads_wake_.wait(lock, [this] { return stopping_ || !load_order_.empty(); });
    if (load_order_.empty()) {
      return;  // stopping: the queue was answered, and this thread's last load too
    }
    const std::string code = std::move(load_order_.front());
    load_order_.pop_front();
    std::vector<Waiter> waiters = std::move(waiting_.extract(code).mapped());
    waiting_calls_ -= waiters.size();
    lock.unlock();
    LoadFor(code, waiters);
    lock.lock();
  }
}

void Resolver::LoadFor(const std::string& code, std::vector<Waiter>& waiters) {
  const absl::Time now = absl::Now();
  std::optional<absl::StatusOr<CachedLink>> link;
  for (Waiter& w : waiters) {
    if (w.deadline <= now) {
      // Its caller has stopped waiting: no read on its account.
      Answer(w.done, absl::DeadlineExceededError(
                         absl::StrCat("no database read for '", code, "' before the deadline")));
      continue;
    }
    if (!link) {
      link = LoadShared(code);
      if (link->ok() && !(*link)->exists) {
        link = NotFound(code);
      }
    }
    Answer(w.done, *link);
  }
}

absl::StatusOr<CachedLink> Resolver::LoadShared(const std::string& code) {
  return flight_.Do(code, [&] { return Load(code); });
}

absl::StatusOr<CachedLink> Resolver::Resolve(const std::string& code, absl::Time deadline) {
  std::mutex mu;
  std::condition_variable answered;
  std::optional<absl::StatusOr<CachedLink>> result;
  ResolveAsync(code, deadline, [&](absl::StatusOr<CachedLink> link) {
    std::lock_guard<std::mutex> lock(mu);
    result = std::move(link);
    answered.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  answered.wait(lock, [&] { return result.has_value(); });
  return *std::move(result);
}

absl::StatusOr<CachedLink> Resolver::Load(const std::string& code) {
  // A flight that ended just before this one began has filled the cache: look again, so that a
  // burst of misses makes one database read, not one per flight.
  if (auto cached = cache_->Get(code); cached.ok() && cached->has_value()) {
    return **cached;
  }
  if (!RecentlyChanged(code)) {
    auto replica = store_->LookUp(code, ReadFrom::kReplica);
    if (replica.ok() && replica->has_value()) {
      CachedLink link = FromRecord(**replica);
      cache_->Fill(code, link);
      return link;
    }
    // A replica error or miss: the primary decides.
  }
  auto primary = store_->LookUp(code, ReadFrom::kPrimary);
  if (!primary.ok()) {
    return primary.status();
  }
  CachedLink link = primary->has_value() ? FromRecord(**primary) : CachedLink{};
  cache_->Fill(code, link);
  return link;
}

void Resolver::Changed(const std::string& code, const CachedLink& now_is, bool existed) {
  flight_.Forget(code);
  {
    std::lock_guard<std::mutex> lock(mu_);
    absl::Time now = absl::Now();
    recent_[code] = now;
    // Forget old entries now and then, so the map stays as small as the recent write rate.
    if (recent_.size() > 1024) {
      for (auto it = recent_.begin(); it != recent_.end();) {
        it = now - it->second > recent_window_ ? recent_.erase(it) : std::next(it);
      }
    }
  }
  cache_->Put(code, now_is, existed);
}

bool Resolver::RecentlyChanged(const std::string& code) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = recent_.find(code);
  return it != recent_.end() && absl::Now() - it->second <= recent_window_;
}

}  // namespace kurt::links
