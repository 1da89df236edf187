#include "platform/redis/get_batcher.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"

namespace kurt::redis {

GetBatcher::GetBatcher(RedisClient* redis, size_t max_batch)
    : redis_(redis), max_batch_(std::max<size_t>(max_batch, 1)), thread_([this] { Run(); }) {}

GetBatcher::~GetBatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
  for (Waiting& w : waiting_) {
    w.done(absl::UnavailableError("redis: the client is shutting down"));
  }
}

void GetBatcher::Get(std::string key, Done done) {
  bool idle = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.push_back(Waiting{std::move(key), std::move(done)});
    // A thread at work on a batch takes this one next without being woken.
    idle = !sending_;
    sending_ = true;
  }
  if (idle) {
    wake_.notify_one();
  }
}

void GetBatcher::Run() {
  std::vector<Waiting> batch;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [this] { return stop_ || !waiting_.empty(); });
    if (stop_) {
      return;
    }
    if (waiting_.size() <= max_batch_) {
      batch.swap(waiting_);
    } else {
      batch.assign(std::make_move_iterator(waiting_.begin()),
                   std::make_move_iterator(waiting_.begin() + static_cast<ptrdiff_t>(max_batch_)));
      waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<ptrdiff_t>(max_batch_));
    }
    lock.unlock();
    Send(batch);
    batch.clear();
    lock.lock();
    sending_ = !waiting_.empty();
  }
}

void GetBatcher::Send(std::vector<Waiting>& batch) {
  std::vector<std::string> argv;
  argv.reserve(batch.size() + 1);
  argv.emplace_back("MGET");
  for (const Waiting& w : batch) {
    argv.push_back(w.key);
  }
  absl::StatusOr<Reply> reply = redis_->Command(argv);
  if (reply.ok() &&
      (reply->type != Reply::Type::kArray || reply->elements.size() != batch.size())) {
    reply = absl::InternalError(absl::StrCat("redis: MGET of ", batch.size(), " keys answered ",
                                             reply->elements.size(), " values"));
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!reply.ok()) {
      batch[i].done(reply.status());
      continue;
    }
    Reply& value = reply->elements[i];
    batch[i].done(value.type == Reply::Type::kString
                      ? std::optional<std::string>(std::move(value.str))
                      : std::optional<std::string>());
  }
}

}  // namespace kurt::redis
