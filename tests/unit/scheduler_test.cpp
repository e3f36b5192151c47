// The scheduler without a model: token budget (verify rows included), chunk boundaries, preemption order, and a
// request larger than the whole cache.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <numeric>

namespace tandem::engine {
namespace {

constexpr int kBlock = 4;

std::unique_ptr<Sequence> make_seq(uint64_t id, int prompt_len, bool speculative = false) {
  GenerateRequest r;
  r.prompt.resize(prompt_len);
  std::iota(r.prompt.begin(), r.prompt.end(), 1);
  r.max_tokens = 100;
  auto s = std::make_unique<Sequence>(id, std::move(r), [](const RequestOutput&) {}, kBlock, id);
  s->speculative = speculative;
  return s;
}

/// What the engine does after a forward: commit the scheduled rows (and one sampled token when it samples).
void commit(const Schedule& sch, int accepted_drafts = 0) {
  for (const ScheduledSeq& sc : sch.seqs) {
    Sequence& s = *sc.seq;
    s.n_cached += sc.verify ? accepted_drafts + 1 : sc.n_rows;
    if (sc.samples) s.tokens.push_back(7);
    s.drafts.clear();
  }
}

TEST(Scheduler, PrefillIsChunkedByTheTokenBudget) {
  kv::BlockAllocator alloc(100);
  Scheduler sch({.max_running_requests = 4, .max_batch_tokens = 8}, alloc);
  sch.add(make_seq(1, 20));
  std::vector<int64_t> chunks;
  for (int step = 0; step < 3; ++step) {
    Schedule s = sch.schedule();
    ASSERT_EQ(s.seqs.size(), 1u);
    chunks.push_back(s.seqs[0].n_rows);
    EXPECT_EQ(s.seqs[0].samples, step == 2) << "only the chunk that reaches the prompt's end samples";
    commit(s);
    sch.end_step();
  }
  EXPECT_EQ(chunks, (std::vector<int64_t>{8, 8, 4}));
}

TEST(Scheduler, DecodeRowsComeFirstAndPrefillFillsTheRest) {
  kv::BlockAllocator alloc(100);
  Scheduler sch({.max_running_requests = 4, .max_batch_tokens = 8}, alloc);
  sch.add(make_seq(1, 3));
  commit(sch.schedule());  // prefill of request 1 (3 rows), which samples its first token
  sch.end_step();
  sch.add(make_seq(2, 30));
  Schedule s = sch.schedule();
  ASSERT_EQ(s.seqs.size(), 2u);
  EXPECT_EQ(s.seqs[0].seq->id, 1u);
  EXPECT_EQ(s.seqs[0].n_rows, 1);  // decode row
  EXPECT_EQ(s.seqs[1].seq->id, 2u);
  EXPECT_EQ(s.seqs[1].n_rows, 7);  // the prefill chunk gets what the decode row left
  EXPECT_EQ(s.rows, 8);
}

TEST(Scheduler, VerifyRowsCountAgainstTheBudget) {
  kv::BlockAllocator alloc(100);
  Scheduler sch({.max_running_requests = 4, .max_batch_tokens = 6, .draft_lookahead = 3}, alloc);
  for (uint64_t id = 1; id <= 2; ++id) sch.add(make_seq(id, 2, /*speculative=*/true));
  commit(sch.schedule());  // both prefills (4 rows)
  sch.end_step();
  for (const auto& p : sch.running()) p->drafts = {5, 6, 7};  // 1 + 3 verify rows each
  Schedule s = sch.schedule();
  ASSERT_EQ(s.seqs.size(), 2u);
  EXPECT_TRUE(s.seqs[0].verify);
  EXPECT_EQ(s.seqs[0].n_rows, 4);
  // The second verify (4 rows) does not fit the 2 rows left: it decodes plainly, which changes no output.
  EXPECT_FALSE(s.seqs[1].verify);
  EXPECT_EQ(s.seqs[1].n_rows, 1);
  EXPECT_TRUE(s.seqs[1].seq->drafts.empty());
  EXPECT_LE(s.rows, 6);
}

TEST(Scheduler, BudgetSmallerThanTheRunningBatchDefersDecodes) {
  kv::BlockAllocator alloc(100);
  Scheduler sch({.max_running_requests = 4, .max_batch_tokens = 2}, alloc);
  for (uint64_t id = 1; id <= 3; ++id) sch.add(make_seq(id, 1));
  for (int i = 0; i < 2; ++i) {  // prefills: two fit the first step, one the second
    commit(sch.schedule());
    sch.end_step();
  }
  Schedule s = sch.schedule();
  EXPECT_EQ(s.rows, 2);
  EXPECT_EQ(s.seqs.size(), 2u);
  EXPECT_EQ(sch.num_running(), 3) << "a decode that does not fit waits; it is not preempted";
}

TEST(Scheduler, DecodesTheBudgetCannotTakeGoFirstNextStep) {
  kv::BlockAllocator alloc(100);
  Scheduler sch({.max_running_requests = 4, .max_batch_tokens = 2}, alloc);
  for (uint64_t id = 1; id <= 3; ++id) {
    auto s = make_seq(id, 1);
    s->tokens.push_back(9);  // one output token already: decoding
    s->n_cached = 1;
    sch.add(std::move(s));
  }
  std::vector<uint64_t> order;
  for (int step = 0; step < 3; ++step) {
    Schedule s = sch.schedule();
    EXPECT_EQ(s.rows, 2);
    for (const auto& sc : s.seqs) order.push_back(sc.seq->id);
    commit(s);
    sch.end_step();
  }
  EXPECT_EQ(order, (std::vector<uint64_t>{1, 2, 3, 1, 2, 3}));
}

TEST(Scheduler, PreemptsTheNewestAdmittedFirst) {
  // 6 blocks of 4 = 24 positions. Three requests of 7 tokens take 2 blocks each at admission.
  kv::BlockAllocator alloc(6);
  Scheduler sch({.max_running_requests = 4, .max_batch_tokens = 64}, alloc);
  for (uint64_t id = 1; id <= 3; ++id) sch.add(make_seq(id, 7));
  Schedule s = sch.schedule();
  ASSERT_EQ(s.seqs.size(), 3u);
  commit(s);  // each has 8 tokens now, 7 cached
  sch.end_step();
  Schedule d1 = sch.schedule();  // decodes at position 7: still 2 blocks each
  EXPECT_EQ(d1.seqs.size(), 3u);
  EXPECT_EQ(sch.preemptions(), 0);
  commit(d1);
  sch.end_step();
  // The decodes at position 8 need a third block each; there is none free: the newest admitted goes.
  Schedule d = sch.schedule();
  EXPECT_EQ(sch.preemptions(), 1);
  ASSERT_EQ(d.seqs.size(), 2u);
  EXPECT_EQ(d.seqs[0].seq->id, 1u);
  EXPECT_EQ(d.seqs[1].seq->id, 2u);
  EXPECT_EQ(sch.num_waiting(), 1);
  Sequence* victim = sch.find(3);
  ASSERT_NE(victim, nullptr);
  EXPECT_EQ(victim->n_cached, 0) << "preemption drops the KV";
  EXPECT_EQ(victim->tokens.size(), 9u) << "and keeps the committed tokens";
  EXPECT_TRUE(victim->blocks.blocks().empty());
  EXPECT_EQ(alloc.num_used(), 6);
}

TEST(Scheduler, RequestLargerThanTheCacheFailsAloneAndOthersRun) {
  kv::BlockAllocator alloc(4);  // 16 positions
  Scheduler sch({.max_running_requests = 4, .max_batch_tokens = 64}, alloc);
  sch.add(make_seq(1, 5));
  sch.add(make_seq(2, 40));
  sch.add(make_seq(3, 5));
  Schedule s = sch.schedule();
  ASSERT_EQ(s.failed.size(), 1u);
  EXPECT_EQ(s.failed[0].seq->id, 2u);
  EXPECT_NE(s.failed[0].error.find("whole cache has 16"), std::string::npos) << s.failed[0].error;
  ASSERT_EQ(s.seqs.size(), 2u);
  EXPECT_EQ(s.seqs[0].seq->id, 1u);
  EXPECT_EQ(s.seqs[1].seq->id, 3u);
  sch.end_step();
  EXPECT_EQ(sch.find(2), nullptr);
}

TEST(Scheduler, FinishedRequestsReturnEveryBlock) {
  kv::BlockAllocator alloc(32);
  Scheduler sch({.max_running_requests = 8, .max_batch_tokens = 64, .draft_lookahead = 2}, alloc);
  for (uint64_t id = 1; id <= 5; ++id) sch.add(make_seq(id, 3 + static_cast<int>(id), id % 2 == 0));
  commit(sch.schedule());
  sch.end_step();
  EXPECT_GT(alloc.num_used(), 0);
  std::vector<Sequence*> all;
  for (const auto& p : sch.running()) all.push_back(p.get());
  for (Sequence* s : all) sch.finish(*s);
  sch.end_step();
  EXPECT_TRUE(sch.idle());
  EXPECT_EQ(alloc.num_used(), 0);
}

TEST(Scheduler, AdmissionWaitsForBlocksInsteadOfFailing) {
  kv::BlockAllocator alloc(4);  // 16 positions
  Scheduler sch({.max_running_requests = 4, .max_batch_tokens = 64}, alloc);
  sch.add(make_seq(1, 10));  // 11 positions at admission: 3 blocks
  sch.add(make_seq(2, 10));  // fits the cache alone, not beside request 1
  Schedule s = sch.schedule();
  EXPECT_TRUE(s.failed.empty());
  ASSERT_EQ(s.seqs.size(), 1u);
  EXPECT_EQ(sch.num_waiting(), 1);
  sch.finish(*s.seqs[0].seq);
  sch.end_step();
  Schedule t = sch.schedule();
  ASSERT_EQ(t.seqs.size(), 1u);
  EXPECT_EQ(t.seqs[0].seq->id, 2u);
}

}  // namespace
}  // namespace tandem::engine
