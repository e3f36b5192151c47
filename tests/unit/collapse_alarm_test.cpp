// spec::CollapseAlarm on scripted verify steps: it waits for a full window, trips once when the window's accept
// length falls to the threshold, does not flap around it, and clears only past the recovery level.
#include <gtest/gtest.h>

#include "core/error.h"
#include "spec/collapse_alarm.h"

namespace tandem::spec {
namespace {

TEST(CollapseAlarm, HealthyAcceptanceNeverTrips) {
  CollapseAlarm a({.window = 8});
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(a.record(i % 2 == 0 ? 3 : 1));  // mean 2.0
  EXPECT_FALSE(a.collapsed());
  EXPECT_DOUBLE_EQ(a.window_accept_length(), 2.0);
}

TEST(CollapseAlarm, TripsOnceWhenTheFullWindowFallsToTheThreshold) {
  CollapseAlarm a({.window = 8, .threshold = 1.05, .recover = 1.2});
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(a.record(1));  // a partial window says nothing
  EXPECT_FALSE(a.collapsed());
  EXPECT_TRUE(a.record(1));  // the eighth step fills the window at 1.0
  EXPECT_TRUE(a.collapsed());
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(a.record(1));  // stays on, reported once
  EXPECT_TRUE(a.collapsed());
}

TEST(CollapseAlarm, HysteresisThenRecovery) {
  CollapseAlarm a({.window = 4, .threshold = 1.05, .recover = 1.5});
  for (int i = 0; i < 4; ++i) a.record(1);
  ASSERT_TRUE(a.collapsed());
  a.record(2);  // window 1,1,1,2: 1.25, between threshold and recover: still collapsed
  EXPECT_TRUE(a.collapsed());
  a.record(2);  // 1,1,2,2: 1.5: recovered
  EXPECT_FALSE(a.collapsed());
  a.record(1);  // 1,2,2,1: 1.5
  a.record(1);  // 2,2,1,1: 1.5
  EXPECT_FALSE(a.collapsed());
  a.record(1);
  EXPECT_FALSE(a.collapsed());  // 2,1,1,1: 1.25, above the threshold
  EXPECT_TRUE(a.record(1));     // 1,1,1,1: trips again
}

TEST(CollapseAlarm, RejectsInconsistentOptions) {
  EXPECT_THROW(CollapseAlarm({.window = 0}), Error);
  EXPECT_THROW(CollapseAlarm({.window = 8, .threshold = 1.5, .recover = 1.2}), Error);
}

}  // namespace
}  // namespace tandem::spec
