#include "platform/kafka/kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "platform/core/log.h"

ABSL_FLAG(std::string, kafka_brokers, "127.0.0.1:19092", "Kafka bootstrap servers");
ABSL_FLAG(std::string, kafka_security_protocol, "plaintext",
          "How Kafka clients connect: plaintext, ssl, sasl_plaintext or sasl_ssl");
ABSL_FLAG(std::string, kafka_sasl_mechanism, "SCRAM-SHA-512",
          "SASL mechanism with sasl_*: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN");
ABSL_FLAG(std::string, kafka_sasl_username, "", "Kafka SASL username (with sasl_*)");
ABSL_FLAG(std::string, kafka_sasl_password, "", "Kafka SASL password (with sasl_*); never logged");
ABSL_FLAG(std::string, kafka_ssl_ca_location, "",
          "PEM file of the CAs of the brokers' certificates (with ssl and sasl_ssl); empty: the "
          "system's trust store");

namespace kurt::kafka {

std::optional<absl::string_view> Message::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return std::nullopt;
}

// Delivery reports arrive on the producer's poll thread; each message carries its callback.
class DeliveryReporter : public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    auto* cb = static_cast<DeliveryCallback*>(message.msg_opaque());
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      KURT_LOG(kError, "kafka delivery failed", {"topic", message.topic_name()},
               {"error", message.errstr()});
    }
    if (cb == nullptr) {
      return;
    }
    (*cb)(message.err() == RdKafka::ERR_NO_ERROR
              ? absl::OkStatus()
              : absl::UnavailableError(absl::StrCat("kafka delivery: ", message.errstr())));
    delete cb;
  }
};

// Rebalance events arrive inside consume(); partitions are assigned with the starting offsets
// the service chose (e.g. from its database). Partitions revoked since the last look
// (TakeJustRevoked) have their messages dropped from the batch being filled, and those still
// revoked (Revoked) keep a failed batch from coming again to a former owner.
class RebalanceHandler : public RdKafka::RebalanceCb {
 public:
  // `before_revoke`: run before partitions are taken away (finishes the batch in the handler).
  RebalanceHandler(AssignHandler on_assign, RevokeHandler on_revoke,
                   std::function<void()> before_revoke)
      : on_assign_(std::move(on_assign)),
        on_revoke_(std::move(on_revoke)),
        before_revoke_(std::move(before_revoke)) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
    std::vector<TopicPartition> tps;
    tps.reserve(partitions.size());
    for (auto* p : partitions) {
      tps.push_back({p->topic(), p->partition(), -1});
    }
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      for (const auto& tp : tps) {
        revoked_.erase(tp);
      }
      if (on_assign_) {
        absl::Status s = on_assign_(&tps);
        if (!s.ok()) {
          // Without the stored offsets we must not consume: fail loudly so the process restarts
          // and the group rebalances.
          KURT_LOG(kError, "partition assignment handler failed", {"error", s.ToString()});
          std::abort();
        }
        for (size_t i = 0; i < tps.size(); ++i) {
          if (tps[i].offset >= 0) {
            partitions[i]->set_offset(tps[i].offset);
          }
        }
      }
      KURT_LOG(kInfo, "partitions assigned", {"count", tps.size()},
               {"protocol", consumer->rebalance_protocol()});
      RdKafka::Error* e = nullptr;
      if (cooperative) {
        e = consumer->incremental_assign(partitions);
      } else {
        consumer->assign(partitions);
      }
      if (e) {
        KURT_LOG(kError, "incremental assign failed", {"error", e->str()});
        delete e;
      }
    } else {
      if (before_revoke_) {
        before_revoke_();
      }
      for (const auto& tp : tps) {
        revoked_.insert(tp);
      }
      just_revoked_.insert(just_revoked_.end(), tps.begin(), tps.end());
      if (on_revoke_) {
        on_revoke_(tps);
      }
      KURT_LOG(kInfo, "partitions revoked", {"count", tps.size()});
      if (cooperative) {
        RdKafka::Error* e = consumer->incremental_unassign(partitions);
        delete e;
      } else {
        consumer->unassign();
      }
    }
  }

  bool Revoked(const std::string& topic, int32_t partition) const {
    return revoked_.count({topic, partition, -1}) > 0;
  }

  // The partitions revoked since the last call. Messages of theirs fetched before must go even
  // if a partition comes back at once: it then starts again from the stored offset, and the same
  // messages would be in the batch twice.
  std::vector<TopicPartition> TakeJustRevoked() { return std::exchange(just_revoked_, {}); }

 private:
  AssignHandler on_assign_;
  RevokeHandler on_revoke_;
  std::function<void()> before_revoke_;
  std::set<TopicPartition> revoked_;
  std::vector<TopicPartition> just_revoked_;
};

namespace {

absl::Status ApplyConfig(RdKafka::Conf* conf, const std::map<std::string, std::string>& config) {
  std::string err;
  for (const auto& [k, v] : config) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) {
      const bool secret = absl::StrContains(k, "password");
      return absl::InvalidArgumentError(
          absl::StrCat("kafka setting ", k, "=", secret ? "****" : v, ": ", err));
    }
  }
  return absl::OkStatus();
}

// Through the C API: the C++ wrapper's headers() detaches and copies the header list, and
// get_all() copies every header once more, before this copies them into the Message.
Message Convert(RdKafka::Message& m) {
  const rd_kafka_message_t* rkm = m.c_ptr();
  Message out;
  out.topic = rd_kafka_topic_name(rkm->rkt);
  out.partition = rkm->partition;
  out.offset = rkm->offset;
  if (rkm->key != nullptr) {
    out.key.assign(static_cast<const char*>(rkm->key), rkm->key_len);
  }
  if (rkm->payload != nullptr) {
    out.value.assign(static_cast<const char*>(rkm->payload), rkm->len);
  }
  out.timestamp_ms = rd_kafka_message_timestamp(rkm, nullptr);
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(rkm, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const size_t n = rd_kafka_header_cnt(headers);
    out.headers.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      if (rd_kafka_header_get_all(headers, i, &name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        break;
      }
      out.headers.emplace_back(
          std::piecewise_construct, std::forward_as_tuple(name),
          std::forward_as_tuple(value ? static_cast<const char*>(value) : "", value ? size : 0));
    }
  }
  return out;
}

}  // namespace

ClientSecurity ClientSecurity::FromFlags() {
  ClientSecurity s;
  s.protocol = absl::GetFlag(FLAGS_kafka_security_protocol);
  s.sasl_mechanism = absl::GetFlag(FLAGS_kafka_sasl_mechanism);
  s.sasl_username = absl::GetFlag(FLAGS_kafka_sasl_username);
  s.sasl_password = absl::GetFlag(FLAGS_kafka_sasl_password);
  s.ssl_ca_location = absl::GetFlag(FLAGS_kafka_ssl_ca_location);
  return s;
}

absl::Status ClientSecurity::AddTo(std::map<std::string, std::string>* config) const {
  const std::string p = absl::AsciiStrToLower(protocol);
  if (p != "plaintext" && p != "ssl" && p != "sasl_plaintext" && p != "sasl_ssl") {
    return absl::InvalidArgumentError(
        absl::StrCat("--kafka_security_protocol: '", protocol,
                     "' is none of plaintext, ssl, sasl_plaintext, sasl_ssl"));
  }
  (*config)["security.protocol"] = p;
  if (absl::StartsWith(p, "sasl_")) {
    if (sasl_mechanism != "SCRAM-SHA-512" && sasl_mechanism != "SCRAM-SHA-256" &&
        sasl_mechanism != "PLAIN") {
      return absl::InvalidArgumentError(
          absl::StrCat("--kafka_sasl_mechanism: '", sasl_mechanism,
                       "' is none of SCRAM-SHA-512, SCRAM-SHA-256, PLAIN"));
    }
    if (sasl_username.empty() || sasl_password.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--kafka_sasl_username and --kafka_sasl_password are required with "
                       "--kafka_security_protocol=",
                       p));
    }
    (*config)["sasl.mechanisms"] = sasl_mechanism;
    (*config)["sasl.username"] = sasl_username;
    (*config)["sasl.password"] = sasl_password;
  }
  if (p == "ssl" || p == "sasl_ssl") {
    // librdkafka verifies the brokers' certificates and names by default; say so anyway.
    (*config)["enable.ssl.certificate.verification"] = "true";
    (*config)["ssl.endpoint.identification.algorithm"] = "https";
    if (!ssl_ca_location.empty()) {
      (*config)["ssl.ca.location"] = ssl_ca_location;
    }
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> ProducerConfig(const ProducerOptions& options) {
  std::map<std::string, std::string> config = {
      {"bootstrap.servers", options.brokers},
      {"client.id", options.client_id},
      // Exactly-once per partition on the producer side: no duplicates from retries, no
      // reordering, nothing acknowledged before every in-sync replica has it.
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", absl::StrCat(absl::ToDoubleMilliseconds(options.linger))},
      {"compression.type", "lz4"},
      {"queue.buffering.max.messages", "1000000"},
      // Keep retrying through a broker restart for up to five minutes.
      {"message.timeout.ms", "300000"},
  };
  for (const auto& [k, v] : options.extra) {
    config[k] = v;
  }
  return config;
}

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(
    const ProducerOptions& options) {
  std::unique_ptr<KafkaProducer> p(new KafkaProducer());
  p->reporter_ = std::make_unique<DeliveryReporter>();
  std::map<std::string, std::string> config = ProducerConfig(options);
  if (absl::Status s = options.security.AddTo(&config); !s.ok()) {
    return s;
  }
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (absl::Status s = ApplyConfig(conf.get(), config); !s.ok()) {
    return s;
  }
  std::string err;
  conf->set("dr_cb", p->reporter_.get(), err);
  p->producer_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!p->producer_) {
    return absl::InternalError(absl::StrCat("kafka producer: ", err));
  }
  p->poller_ = std::thread([raw = p.get()] { raw->PollLoop(); });
  return p;
}

KafkaProducer::~KafkaProducer() {
  stop_ = true;
  if (poller_.joinable()) {
    poller_.join();
  }
  if (producer_) {
    // Give queued messages a last chance; anything left is reported as failed by librdkafka.
    producer_->flush(5000);
  }
}

void KafkaProducer::PollLoop() {
  while (!stop_) {
    producer_->poll(100);
  }
}

absl::Status KafkaProducer::Produce(absl::string_view topic, absl::string_view key,
                                    absl::string_view value, const Headers& headers,
                                    DeliveryCallback on_delivery) {
  RdKafka::Headers* h = nullptr;
  if (!headers.empty()) {
    h = RdKafka::Headers::create();
    for (const auto& [k, v] : headers) {
      h->add(k, v.data(), v.size());
    }
  }
  auto* cb = on_delivery ? new DeliveryCallback(std::move(on_delivery)) : nullptr;
  RdKafka::ErrorCode err = producer_->produce(
      std::string(topic), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, h, cb);
  if (err != RdKafka::ERR_NO_ERROR) {
    delete h;  // ownership passes to librdkafka only on success
    delete cb;
    if (err == RdKafka::ERR__QUEUE_FULL) {
      return absl::ResourceExhaustedError("kafka producer queue is full");
    }
    return absl::UnavailableError(absl::StrCat("kafka produce: ", RdKafka::err2str(err)));
  }
  return absl::OkStatus();
}

absl::Status KafkaProducer::Flush(absl::Duration timeout) {
  RdKafka::ErrorCode err = producer_->flush(static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::DeadlineExceededError(
        absl::StrCat("kafka flush: ", producer_->outq_len(), " messages still queued"));
  }
  return absl::OkStatus();
}

int KafkaProducer::OutQueueLength() const { return producer_->outq_len(); }

absl::StatusOr<std::unique_ptr<KafkaConsumer>> KafkaConsumer::Create(ConsumerOptions options,
                                                                     BatchHandler handler,
                                                                     AssignHandler on_assign,
                                                                     RevokeHandler on_revoke) {
  std::unique_ptr<KafkaConsumer> c(new KafkaConsumer());
  c->options_ = std::move(options);
  c->handler_ = std::move(handler);
  KafkaConsumer* self = c.get();
  c->rebalance_ = std::make_unique<RebalanceHandler>(std::move(on_assign), std::move(on_revoke),
                                                     [self] { self->Settle(); });
  std::map<std::string, std::string> config = {
      {"bootstrap.servers", c->options_.brokers},
      {"group.id", c->options_.group_id},
      {"client.id", c->options_.client_id},
      // Offsets are committed by Run, after the handler succeeded, never in the background.
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", c->options_.auto_offset_reset},
      {"enable.partition.eof", "false"},
      {"session.timeout.ms", "10000"},
      {"heartbeat.interval.ms", "1000"},
  };
  if (!c->options_.assignment_strategy.empty()) {
    config["partition.assignment.strategy"] = c->options_.assignment_strategy;
  }
  for (const auto& [k, v] : c->options_.extra) {
    config[k] = v;
  }
  if (absl::Status s = c->options_.security.AddTo(&config); !s.ok()) {
    return s;
  }
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (absl::Status s = ApplyConfig(conf.get(), config); !s.ok()) {
    return s;
  }
  std::string err;
  conf->set("rebalance_cb", c->rebalance_.get(), err);
  c->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!c->consumer_) {
    return absl::InternalError(absl::StrCat("kafka consumer: ", err));
  }
  RdKafka::ErrorCode e = c->consumer_->subscribe(c->options_.topics);
  if (e != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka subscribe: ", RdKafka::err2str(e)));
  }
  return c;
}

KafkaConsumer::~KafkaConsumer() {
  Settle();
  if (consumer_) {
    consumer_->close();
  }
}

void KafkaConsumer::Rewind(const std::vector<Message>& batch) {
  // Seek each partition back to the first message of the batch so that it comes again.
  std::map<std::pair<std::string, int32_t>, int64_t> first;
  for (const Message& m : batch) {
    first.try_emplace({m.topic, m.partition}, m.offset);
  }
  for (const auto& [tp, offset] : first) {
    std::unique_ptr<RdKafka::TopicPartition> p(
        RdKafka::TopicPartition::create(tp.first, tp.second, offset));
    RdKafka::ErrorCode e = consumer_->seek(*p, 5000);
    if (e != RdKafka::ERR_NO_ERROR) {
      KURT_LOG(kWarn, "kafka seek failed", {"topic", tp.first}, {"partition", tp.second},
               {"error", RdKafka::err2str(e)});
    }
  }
}

absl::Status KafkaConsumer::HandleWithRetry(const std::vector<Message>& batch) {
  absl::Duration backoff = options_.retry_backoff;
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  for (;;) {
    absl::Status s = handler_(batch);
    if (s.ok()) {
      return s;
    }
    KURT_LOG(kWarn, "batch handler failed; will retry", {"error", s.ToString()},
             {"messages", batch.size()});
    if (stop_ || absl::Now() + backoff > give_up) {
      return s;
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(10));
  }
}

void KafkaConsumer::Commit(const std::vector<Message>& batch) {
  if (!options_.commit_to_kafka || batch.empty()) {
    return;
  }
  std::map<std::pair<std::string, int32_t>, int64_t> next;
  for (const Message& m : batch) {
    next[{m.topic, m.partition}] = m.offset + 1;
  }
  std::vector<RdKafka::TopicPartition*> offsets;
  offsets.reserve(next.size());
  for (const auto& [tp, offset] : next) {
    offsets.push_back(RdKafka::TopicPartition::create(tp.first, tp.second, offset));
  }
  RdKafka::ErrorCode e = consumer_->commitSync(offsets);
  RdKafka::TopicPartition::destroy(offsets);
  if (e != RdKafka::ERR_NO_ERROR) {
    // The work is done; a failed commit means a redelivery later, which handlers must
    // tolerate (they are idempotent by event id).
    KURT_LOG(kWarn, "kafka commit failed", {"error", RdKafka::err2str(e)});
  }
}

void KafkaConsumer::Settle() {
  if (!in_flight_) {
    return;
  }
  std::unique_ptr<InFlight> done = std::move(in_flight_);
  done->worker.join();
  if (done->result.ok()) {
    Commit(done->batch);
  } else {
    failed_ = std::move(done->batch);
  }
}

void KafkaConsumer::Run() {
  std::vector<Message> batch;
  while (!stop_) {
    batch.clear();
    const absl::Time until = absl::Now() + options_.batch_wait;
    while (static_cast<int>(batch.size()) < options_.max_batch && !stop_) {
      int wait_ms = static_cast<int>(std::max<int64_t>(
          batch.empty() ? 100 : 0, absl::ToInt64Milliseconds(until - absl::Now())));
      std::unique_ptr<RdKafka::Message> m(consumer_->consume(wait_ms));
      // A rebalance runs inside consume(): what was fetched of a partition it revoked goes.
      if (std::vector<TopicPartition> gone = rebalance_->TakeJustRevoked(); !gone.empty()) {
        std::erase_if(batch, [&](const Message& b) {
          return std::any_of(gone.begin(), gone.end(), [&](const TopicPartition& tp) {
            return tp.partition == b.partition && tp.topic == b.topic;
          });
        });
      }
      if (m->err() == RdKafka::ERR__TIMED_OUT) {
        if (!batch.empty() || absl::Now() >= until) {
          break;
        }
        continue;
      }
      if (m->err() != RdKafka::ERR_NO_ERROR) {
        KURT_LOG(kWarn, "kafka consume", {"error", m->errstr()});
        break;
      }
      batch.push_back(Convert(*m));
    }
    if (options_.pipelined) {
      // The batch in the handler finishes before the next one starts.
      Settle();
      if (!failed_.empty()) {
        // Both come again: the failed batch first (Rewind keeps the first offset it sees).
        std::vector<Message> again = std::exchange(failed_, {});
        again.insert(again.end(), std::make_move_iterator(batch.begin()),
                     std::make_move_iterator(batch.end()));
        std::erase_if(again,
                      [&](const Message& m) { return rebalance_->Revoked(m.topic, m.partition); });
        Rewind(again);
        continue;
      }
    }
    // (Messages of partitions revoked while the batch filled left it at once, above.)
    if (batch.empty()) {
      continue;
    }

    if (options_.pipelined) {
      in_flight_ = std::make_unique<InFlight>();
      in_flight_->batch = std::move(batch);
      InFlight* f = in_flight_.get();
      f->worker = std::thread([this, f] { f->result = HandleWithRetry(f->batch); });
      continue;
    }
    absl::Status s = HandleWithRetry(batch);
    if (!s.ok()) {
      Rewind(batch);
      continue;
    }
    Commit(batch);
  }
  Settle();
  // A failed batch is not committed: whoever owns its partitions next starts from the last commit.
  failed_.clear();
}

std::vector<std::pair<TopicPartition, int64_t>> KafkaConsumer::Lag() {
  std::vector<std::pair<TopicPartition, int64_t>> out;
  std::vector<RdKafka::TopicPartition*> parts;
  if (consumer_->assignment(parts) != RdKafka::ERR_NO_ERROR) {
    return out;
  }
  consumer_->position(parts);
  // Asks the brokers (the cached watermark stops moving while fetching is paused because the
  // local queue is full, which is exactly when the lag matters): the offset of the latest
  // timestamp is the end of the partition. offsetsForTimes, one request per leader, keeps to its
  // timeout; librdkafka's query_watermark_offsets does not when a partition's leader has just
  // died (it waited minutes and held up the consumer's shutdown in the --ha broker fault test).
  std::vector<RdKafka::TopicPartition*> ends;
  ends.reserve(parts.size());
  for (auto* p : parts) {
    ends.push_back(
        RdKafka::TopicPartition::create(p->topic(), p->partition(), RdKafka::Topic::OFFSET_END));
  }
  if (!ends.empty() && consumer_->offsetsForTimes(ends, 2000) == RdKafka::ERR_NO_ERROR) {
    for (size_t i = 0; i < parts.size(); ++i) {
      const int64_t position = parts[i]->offset();
      const int64_t end = ends[i]->offset();
      if (ends[i]->err() == RdKafka::ERR_NO_ERROR && position >= 0 && end >= 0) {
        out.push_back({{parts[i]->topic(), parts[i]->partition(), position},
                       std::max<int64_t>(0, end - position)});
      }
    }
  }
  RdKafka::TopicPartition::destroy(ends);
  RdKafka::TopicPartition::destroy(parts);
  return out;
}

}  // namespace kurt::kafka
