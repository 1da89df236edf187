#include "services/reports/report_job.h"

#include "gtest/gtest.h"
#include "platform/grpc/handler.h"
#include "platform/grpc/pagination.h"
#include "platform/grpc/timestamps.h"

namespace kurt::reports {
namespace {

TEST(ReportJobTest, KindsAndStatesAreStoredByTheirApiNames) {
  EXPECT_EQ(KindName(v1::CLICKS_CSV), "CLICKS_CSV");
  EXPECT_EQ(KindName(v1::SUMMARY_JSON), "SUMMARY_JSON");
  EXPECT_EQ(StateName(v1::PENDING), "PENDING");
  EXPECT_EQ(StateName(v1::CANCELLED), "CANCELLED");
  EXPECT_EQ(ContentTypeOf(v1::CLICKS_CSV), "text/csv");
  EXPECT_EQ(ContentTypeOf(v1::SUMMARY_JSON), "application/json");
  EXPECT_EQ(ExtensionOf(v1::SUMMARY_JSON), ".json");
}

TEST(ReportJobTest, ReportIdsAreUuids) {
  EXPECT_TRUE(IsReportId("0b7e7dc8-2c1d-4a7a-9b8e-3f1f2f3c4d5e"));
  EXPECT_TRUE(IsReportId("0B7E7DC8-2C1D-4A7A-9B8E-3F1F2F3C4D5E"));
  EXPECT_FALSE(IsReportId(""));
  EXPECT_FALSE(IsReportId("0b7e7dc8-2c1d-4a7a-9b8e-3f1f2f3c4d5"));
  EXPECT_FALSE(IsReportId("0b7e7dc8x2c1d-4a7a-9b8e-3f1f2f3c4d5e"));
  EXPECT_FALSE(IsReportId("0b7e7dc8-2c1d-4a7a-9b8e-3f1f2f3c4d5g"));
  EXPECT_FALSE(IsReportId("'; DROP TABLE report_jobs; --      "));
}

TEST(ReportJobTest, TimesKeepMicroseconds) {
  absl::Time t = absl::FromUnixMicros(1700000000123456);
  EXPECT_EQ(Rfc3339(t), "2023-11-14T22:13:20.123456Z");
  google::protobuf::Timestamp ts;
  platform::SetTimestamp(t, &ts);
  EXPECT_EQ(ts.seconds(), 1700000000);
  EXPECT_EQ(ts.nanos(), 123456000);
  EXPECT_EQ(platform::FromTimestamp(ts), t);
  platform::SetTimestamp(absl::FromUnixMicros(-1), &ts);
  EXPECT_EQ(ts.seconds(), -1);
  EXPECT_EQ(ts.nanos(), 999999000);
}

TEST(ReportJobTest, EventsCarryTheJob) {
  ReportJob job;
  job.id = "0b7e7dc8-2c1d-4a7a-9b8e-3f1f2f3c4d5e";
  job.account_id = "acct";
  job.kind = v1::CLICKS_CSV;
  job.state = v1::SUCCEEDED;
  job.row_count = 42;
  job.size_bytes = 4200;
  job.content_type = "text/csv";
  job.request_event_id = "ev-1";
  job.finish_time = absl::FromUnixSeconds(1700000000);
  events::v1::ReportCompleted done = CompletedEvent(job);
  EXPECT_EQ(done.event_id(), job.id + "/completed");
  EXPECT_EQ(done.state(), v1::SUCCEEDED);
  EXPECT_EQ(done.row_count(), 42);
  EXPECT_EQ(done.finish_time().seconds(), 1700000000);
  events::v1::ReportRequested requested = RequestedEvent(job);
  EXPECT_EQ(requested.event_id(), "ev-1");
  EXPECT_EQ(requested.report_id(), job.id);
  v1::Report api;
  ToProto(job, &api);
  EXPECT_EQ(api.state(), v1::SUCCEEDED);
  EXPECT_EQ(api.row_count(), 42);
  EXPECT_EQ(api.content_type(), "text/csv");
}

TEST(ReportJobTest, DownloadsAreAttachmentsNamedByIdAndType) {
  EXPECT_EQ(ContentDispositionOf("0b6f5d2e-1c3a-4f7e-9a55-3f1b2c4d5e6f", "text/csv"),
            R"(attachment; filename="kurt-report-0b6f5d2e-1c3a-4f7e-9a55-3f1b2c4d5e6f.csv")");
  EXPECT_EQ(ContentDispositionOf("0b6f5d2e-1c3a-4f7e-9a55-3f1b2c4d5e6f", "application/json"),
            R"(attachment; filename="kurt-report-0b6f5d2e-1c3a-4f7e-9a55-3f1b2c4d5e6f.json")");
}

}  // namespace
}  // namespace kurt::reports
