// The adaptive draft length's parts on scripted evidence: per-position acceptance estimates (decay, the
// server-wide prior, unobserved positions), the cost table (interpolation, extrapolation, online refinement)
// and the controller's choice of K (the argmax of expected tokens per second, probing while paused).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "spec/acceptance.h"
#include "spec/adaptive_controller.h"
#include "spec/cost_table.h"

namespace tandem::spec {
namespace {

TEST(AcceptanceEstimate, CountsPositionsTriedAndAccepted) {
  AcceptanceEstimate e(1.0);  // no decay: plain frequencies
  e.record(3, 1);  // draft 1 accepted, draft 2 rejected, draft 3 never verified
  e.record(3, 3);
  e.record(2, 0);
  EXPECT_DOUBLE_EQ(e.tried(1), 3);
  EXPECT_DOUBLE_EQ(e.tried(2), 2);
  EXPECT_DOUBLE_EQ(e.tried(3), 1);
  // With a prior weight of 0 the rate is the frequency: a1 = 2/3, a2 = 1/2, a3 = 1/1.
  EXPECT_DOUBLE_EQ(e.rate(1, nullptr, 0.0, 0.5), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(e.rate(2, nullptr, 0.0, 0.5), 0.5);
  EXPECT_DOUBLE_EQ(e.rate(3, nullptr, 0.0, 0.5), 1.0);
  // E(k) = 1 + a1 + a1 a2 + a1 a2 a3.
  EXPECT_DOUBLE_EQ(e.expected_tokens(0, nullptr, 0.0, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(e.expected_tokens(3, nullptr, 0.0, 0.5), 1.0 + 2.0 / 3 + 1.0 / 3 + 1.0 / 3);
}

TEST(AcceptanceEstimate, LeansOnThePriorUntilItHasEvidence) {
  AcceptanceEstimate server(1.0), request(1.0);
  for (int i = 0; i < 100; ++i) server.record(1, i % 5 == 0 ? 0 : 1);  // server-wide a1 = 0.8
  EXPECT_NEAR(request.rate(1, &server, 4.0, 0.6), (0 + 4 * server.rate(1, nullptr, 4.0, 0.6)) / 4.0, 1e-12);
  for (int i = 0; i < 200; ++i) request.record(1, 0);  // this request: never accepted
  EXPECT_LT(request.rate(1, &server, 4.0, 0.6), 0.02);
  // A position the server never tried falls back to the position before it.
  EXPECT_DOUBLE_EQ(server.rate(2, nullptr, 4.0, 0.6), (0 + 4.0 * server.rate(1, nullptr, 4.0, 0.6)) / 4.0);
}

TEST(AcceptanceEstimate, DecayForgetsOldEvidence) {
  AcceptanceEstimate e(0.9);
  for (int i = 0; i < 100; ++i) e.record(1, 1);
  EXPECT_GT(e.rate(1, nullptr, 1.0, 0.5), 0.9);
  for (int i = 0; i < 60; ++i) e.record(1, 0);  // the text changed: the draft stopped matching
  EXPECT_LT(e.rate(1, nullptr, 1.0, 0.5), 0.05);
}

TEST(CostTable, InterpolatesExtrapolatesAndRefines) {
  CostTable t(6, 2);  // buckets 1, 2, 4, 8
  ASSERT_EQ(t.buckets(), (std::vector<int>{1, 2, 4, 8}));
  for (int b = 0; b < 4; ++b)
    for (int k = 0; k <= 2; ++k) t.set(b, k, (1 << b) * 1.0, k);  // verify part, draft part
  EXPECT_DOUBLE_EQ(t.cost(1, 0), 1.0);
  EXPECT_DOUBLE_EQ(t.cost(3, 1), 0.5 * 3.0 + 0.5 * 5.0);  // between buckets 2 and 4
  EXPECT_DOUBLE_EQ(t.cost(16, 2), 10.0 * 2);               // beyond the last bucket: linear in the batch
  t.refine(CostTable::kVerify, 4, 1, 8.0, 0.5);             // the verify part moves halfway to the timing
  EXPECT_DOUBLE_EQ(t.part(CostTable::kVerify, 2, 1), 6.0);
  EXPECT_DOUBLE_EQ(t.cell(2, 1), 6.0 + 1.0);
  t.refine(CostTable::kDraft, 4, 2, 4.0, 0.5);              // the draft part of another K, independently
  EXPECT_DOUBLE_EQ(t.cell(2, 2), 4.0 + 3.0);
  // The first timed steps outweigh the start-up value quickly (a running mean), then alpha takes over.
  for (double want : {5.0, 6.0, 6.5}) {
    t.refine(CostTable::kVerify, 2, 0, 8.0, 0.1);
    EXPECT_DOUBLE_EQ(t.part(CostTable::kVerify, 1, 0), want);
  }
  t.refine(CostTable::kVerify, 16, 0, 40.0, 1.0);           // a step beyond the table scales to the last bucket
  EXPECT_DOUBLE_EQ(t.cell(3, 0), 20.0);
}

/// A table where each draft adds `per_draft` of a plain step's cost, the same for every batch size per row.
CostTable linear_costs(int max_batch, int k_max, double per_draft) {
  CostTable t(max_batch, k_max);
  for (size_t b = 0; b < t.buckets().size(); ++b)
    for (int k = 0; k <= k_max; ++k) t.set(static_cast<int>(b), k, t.buckets()[b] * (1.0 + per_draft * k), 0.0);
  return t;
}

TEST(AdaptiveController, PicksTheArgmaxOfTokensPerSecond) {
  AdaptiveK p{.k_max = 4, .prior_weight = 0.0};
  AdaptiveController c(p, linear_costs(8, 4, 0.25));
  AcceptanceEstimate high(1.0), low(1.0), mid(1.0);
  for (int i = 0; i < 50; ++i) {
    high.record(4, 4);                // a = 1 at every position: more drafts always pay
    low.record(1, 0);                 // a1 = 0: none pays
    mid.record(4, i % 2 == 0 ? 4 : 0);  // a1 = 0.5, a2.. = 1
  }
  const AcceptanceEstimate* h[] = {&high};
  const AcceptanceEstimate* l[] = {&low};
  const AcceptanceEstimate* m[] = {&mid};
  EXPECT_EQ(c.best_k(h, 1), 4);
  EXPECT_EQ(c.best_k(l, 1), 0);
  // Mid: E(k) = 1 + 0.5 k, C = 1 + 0.25 k, rate = (1 + 0.5k)/(1 + 0.25k), increasing in k.
  EXPECT_EQ(c.best_k(m, 1), 4);
  // Check against brute force for a concave case: a = 0.6 at every position, drafts cost 0.3 each.
  AdaptiveController c2(p, linear_costs(8, 4, 0.3));
  AcceptanceEstimate geo(1.0);
  for (int i = 0; i < 1000; ++i) {  // a_j = 0.6 exactly: accepted run length j with prob 0.6^j 0.4
    int acc = 0;
    for (int v = i % 625, j = 0; j < 4 && (v % 5) < 3; ++j, v /= 5) ++acc;
    geo.record(4, acc);
  }
  const AcceptanceEstimate* g[] = {&geo};
  int brute = 0;
  double best = 0;
  for (int k = 0; k <= 4; ++k) {
    const double rate = c2.expected_tokens(geo, k) / c2.costs().cost(1, k);
    if (rate > best) best = rate, brute = k;
  }
  EXPECT_EQ(c2.best_k(g, 1), brute);
  EXPECT_GT(brute, 0);
  EXPECT_LT(brute, 4);
}

TEST(AdaptiveController, DraftingMustBeatPlainByTheMargin) {
  // a1 = 0.5 with a draft costing 0.46 of a step: E(1) / C(1) = 1.5 / 1.46, 2.7% above plain: under the 3% margin.
  AcceptanceEstimate e(1.0);
  for (int i = 0; i < 100; ++i) e.record(1, i % 2);
  const AcceptanceEstimate* r[] = {&e};
  EXPECT_EQ(AdaptiveController({.k_max = 1, .prior_weight = 0.0}, linear_costs(1, 1, 0.46)).best_k(r, 1), 0);
  EXPECT_EQ(AdaptiveController({.k_max = 1, .prior_weight = 0.0, .margin = 0.0}, linear_costs(1, 1, 0.46)).best_k(r, 1), 1);
  EXPECT_EQ(AdaptiveController({.k_max = 1, .prior_weight = 0.0}, linear_costs(1, 1, 0.40)).best_k(r, 1), 1);  // +7%
}

TEST(AdaptiveController, LargeBatchesStopSpeculating) {
  // Drafts are nearly free at batch 1 and cost a full step each at batch 8 (compute-bound verify).
  CostTable t(8, 3);
  for (size_t b = 0; b < t.buckets().size(); ++b)
    for (int k = 0; k <= 3; ++k) t.set(static_cast<int>(b), k, 1.0 + (b == 3 ? 0.9 : 0.05) * k, (b == 3 ? 0.1 : 0.05) * k);
  AdaptiveController c({.k_max = 3, .prior_weight = 0.0}, t);
  AcceptanceEstimate e(1.0);
  for (int i = 0; i < 100; ++i) e.record(3, i % 10 < 7 ? 3 : 0);  // a1 = 0.7, a2 = a3 = 1
  std::vector<const AcceptanceEstimate*> one{&e}, eight(8, &e);
  EXPECT_EQ(c.best_k(one, 1), 3);
  EXPECT_EQ(c.best_k(eight, 8), 0);
}

TEST(AdaptiveController, ExploresEveryOtherKWhileSpeculating) {
  AdaptiveController c({.k_max = 3, .prior_weight = 0.0, .explore_every = 10}, linear_costs(1, 3, 0.1));
  AcceptanceEstimate good(1.0);
  for (int i = 0; i < 10; ++i) good.record(3, 3);
  const AcceptanceEstimate* g[] = {&good};
  std::vector<int> ks;
  for (int step = 0; step < 40; ++step) ks.push_back(c.choose(g, 1));
  // K = 3 wins; decisions 10, 20, 30 (1-based) explore K = 1, 2, 0 for two steps each.
  std::vector<int> want(40, 3);
  want[9] = want[10] = 1;
  want[20] = want[21] = 2;
  want[31] = want[32] = 0;
  EXPECT_EQ(ks, want);
}

TEST(AdaptiveController, ProbesKOneWhilePausedAndBacksOff) {
  AdaptiveController c({.k_max = 2, .prior_weight = 0.0, .probe_min = 4, .probe_max = 16}, linear_costs(1, 2, 0.5));
  AcceptanceEstimate dead(1.0);
  for (int i = 0; i < 10; ++i) dead.record(2, 0);
  const AcceptanceEstimate* d[] = {&dead};
  std::vector<int> probes_at;
  for (int step = 1; step <= 60; ++step)
    if (c.choose(d, 1) == 1) probes_at.push_back(step);
  // Two-step probes after 4, 8, 16, then 16 paused steps.
  EXPECT_EQ(probes_at, (std::vector<int>{4, 5, 13, 14, 30, 31, 47, 48}));
}

}  // namespace
}  // namespace tandem::spec
