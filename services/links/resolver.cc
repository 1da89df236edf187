#include "services/links/resolver.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace kurt::links {
namespace {

absl::Status NotFound(const std::string& code) {
  return absl::NotFoundError(absl::StrCat("no link with code '", code, "'"));
}

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
  {
    std::lock_guard<std::mutex> lock(loads_mu_);
    stopping_ = true;
  }
  loads_wake_.notify_all();
  for (std::thread& t : load_threads_) {
    t.join();
  }
}

void Resolver::RunLoads() {
  std::unique_lock<std::mutex> lock(loads_mu_);
  while (true) {
    loads_wake_.wait(lock, [this] { return stopping_ || !loads_.empty(); });
    if (loads_.empty()) {
      return;  // stopping, and every load taken has been answered
    }
    std::function<void()> load = std::move(loads_.front());
    loads_.pop_front();
    lock.unlock();
    load();
    lock.lock();
  }
}

void Resolver::ResolveAsync(const std::string& code, ResolveDone done) {
  cache_->GetAsync(code, [this, code, done = std::move(done)](
                             absl::StatusOr<std::optional<CachedLink>> cached) mutable {
    if (cached.ok() && cached->has_value()) {
      cache_hits_->Increment();
      if (!(*cached)->exists) {
        done(NotFound(code));
        return;
      }
      done(**std::move(cached));
      return;
    }
    (cached.ok() ? cache_misses_ : cache_errors_)->Increment();
    {
      std::lock_guard<std::mutex> lock(loads_mu_);
      loads_.emplace_back([this, code, done = std::move(done)] {
        absl::StatusOr<CachedLink> link = LoadShared(code);
        if (link.ok() && !link->exists) {
          link = NotFound(code);
        }
        done(std::move(link));
      });
    }
    loads_wake_.notify_one();
  });
}

absl::StatusOr<CachedLink> Resolver::LoadShared(const std::string& code) {
  return flight_.Do(code, [&] { return Load(code); });
}

absl::StatusOr<CachedLink> Resolver::Resolve(const std::string& code) {
  std::optional<CachedLink> link;
  auto cached = cache_->Get(code);
  if (cached.ok() && cached->has_value()) {
    cache_hits_->Increment();
    link = std::move(**cached);
  } else {
    (cached.ok() ? cache_misses_ : cache_errors_)->Increment();
    absl::StatusOr<CachedLink> loaded = LoadShared(code);
    if (!loaded.ok()) {
      return loaded.status();
    }
    link = std::move(*loaded);
  }
  if (!link->exists) {
    return NotFound(code);
  }
  return *std::move(link);
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
