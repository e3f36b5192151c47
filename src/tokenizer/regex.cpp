#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

#include "core/error.h"
#include "core/utf8.h"

namespace tandem::tokenizer {
namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// Per-thread matching state: match data (one ovector pair is all we read) and a JIT stack large enough for
// backtracking over long whitespace runs.
struct ThreadState {
  pcre2_match_data* match_data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);

  ThreadState() {
    TANDEM_CHECK(match_data && context && jit_stack, "PCRE2: out of memory creating match state");
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(match_data);
  }
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;
};

ThreadState& thread_state() {
  thread_local ThreadState state;
  return state;
}

}  // namespace

struct Regex::Impl {
  pcre2_code* code = nullptr;
  std::string pattern;
  ~Impl() { pcre2_code_free(code); }
};

Regex::Regex(const std::string& pcre2_pattern, std::string_view where) : impl_(std::make_unique<Impl>()) {
  impl_->pattern = pcre2_pattern;
  int error = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre2_pattern.data()), pcre2_pattern.size(),
                              PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!impl_->code) {
    fail("{}: cannot compile regex {:?}: {} at offset {}", where, pcre2_pattern, pcre2_message(error), offset);
  }
  // JIT is an optimisation only: without it (unsupported CPU) the interpreter gives the same matches.
  (void)pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

bool Regex::match_at(std::string_view text, size_t start, size_t& match_start, size_t& match_end) const {
  ThreadState& st = thread_state();
  const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                             PCRE2_NO_UTF_CHECK, st.match_data, st.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail("regex {:?}: matching failed: {}", impl_->pattern, pcre2_message(rc));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.match_data);
  match_start = ov[0];
  match_end = ov[1];
  return true;
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  size_t search_from = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (search_from <= text.size()) {
    size_t s = 0, e = 0;
    if (!match_at(text, search_from, s, e)) return;
    if (s == e && have_last && last_end == e) {
      search_from += search_from < text.size() ? utf8::sequence_length(static_cast<uint8_t>(text[search_from])) : 1;
      continue;
    }
    search_from = e;
    have_last = true;
    last_end = e;
    out.emplace_back(s, e);
  }
}

bool Regex::search(std::string_view text) const {
  size_t s = 0, e = 0;
  return match_at(text, 0, s, e);
}

}  // namespace tandem::tokenizer
