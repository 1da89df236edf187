// EventWindow: which clicks it decides, what it keeps, and when it must be seeded again.
#include "services/analytics/event_window.h"

#include "gtest/gtest.h"

namespace kurt::analytics {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

EventWindowOptions Options() {
  EventWindowOptions o;
  o.span = absl::Minutes(2);
  o.margin = absl::Minutes(1);
  return o;
}

TEST(EventWindowTest, DecidesNothingUntilSeeded) {
  EventWindow w(Options());
  EXPECT_FALSE(w.Fresh(0));
  EXPECT_FALSE(w.Covers(kT0));
}

TEST(EventWindowTest, KnowsSeededAndCommittedClicksByCodeAndId) {
  EventWindow w(Options());
  w.Seed(kT0, {{"aaa", "e1", kT0 + absl::Seconds(70)}}, 10);
  EXPECT_TRUE(w.Fresh(10));
  EXPECT_TRUE(w.Contains(EventWindow::KeyOf("aaa", "e1")));
  // The same id on another link is another click.
  EXPECT_FALSE(w.Contains(EventWindow::KeyOf("bbb", "e1")));
  EXPECT_FALSE(w.Contains(EventWindow::KeyOf("aaa", "e2")));

  w.Commit({{EventWindow::KeyOf("aaa", "e2"), kT0 + absl::Seconds(80)}}, 12);
  EXPECT_TRUE(w.Contains(EventWindow::KeyOf("aaa", "e2")));
  EXPECT_TRUE(w.Fresh(12));
  // Someone else wrote the partition (or a commit's outcome was not known): seed again.
  EXPECT_FALSE(w.Fresh(10));
  EXPECT_FALSE(w.Fresh(15));
}

TEST(EventWindowTest, ClicksNearTheFloorGoToTheDatabase) {
  EventWindow w(Options());
  w.Seed(kT0, {}, 0);
  EXPECT_FALSE(w.Covers(kT0));
  EXPECT_FALSE(w.Covers(kT0 + absl::Seconds(59)));
  EXPECT_TRUE(w.Covers(kT0 + absl::Minutes(1)));
}

TEST(EventWindowTest, FollowsTheNewestClickAndForgetsWhatFellBehind) {
  EventWindow w(Options());
  w.Seed(kT0, {}, 0);
  const EventWindow::Key old_key = EventWindow::KeyOf("aaa", "old");
  w.Commit({{old_key, kT0 + absl::Minutes(1)}}, 1);
  EXPECT_TRUE(w.Contains(old_key));
  // Ten minutes on: the floor is two minutes behind the newest click.
  w.Commit({{EventWindow::KeyOf("aaa", "new"), kT0 + absl::Minutes(11)}}, 2);
  EXPECT_EQ(w.floor(), kT0 + absl::Minutes(9));
  EXPECT_FALSE(w.Contains(old_key));
  EXPECT_EQ(w.size(), 1u);
  // A click as old as the forgotten one is for the database to decide, not a new click here.
  EXPECT_FALSE(w.Covers(kT0 + absl::Minutes(1)));
  // One within the margin of the floor too: its other event may be just behind the floor.
  EXPECT_FALSE(w.Covers(kT0 + absl::Minutes(9) + absl::Seconds(30)));
  EXPECT_TRUE(w.Covers(kT0 + absl::Minutes(10)));
}

TEST(EventWindowTest, KeepsEveryClickAtOrAfterTheFloorWhateverTheOrder) {
  EventWindow w(Options());
  w.Seed(kT0, {}, 0);
  // Added out of time order: the later one first.
  const EventWindow::Key later = EventWindow::KeyOf("aaa", "later");
  const EventWindow::Key earlier = EventWindow::KeyOf("aaa", "earlier");
  w.Commit({{later, kT0 + absl::Minutes(5)}, {earlier, kT0 + absl::Minutes(4)}}, 2);
  w.Commit({{EventWindow::KeyOf("aaa", "x"), kT0 + absl::Minutes(6)}}, 3);
  EXPECT_EQ(w.floor(), kT0 + absl::Minutes(4));
  EXPECT_TRUE(w.Contains(later));
  EXPECT_TRUE(w.Contains(earlier));
}

}  // namespace
}  // namespace kurt::analytics
