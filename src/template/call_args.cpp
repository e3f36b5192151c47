#include "template/call_args.h"

#include "template/render_error.h"

namespace tandem::tmpl {

std::vector<Value> bind_args(std::string_view func, const CallArgs& args,
                             std::initializer_list<Param> params) {
  const size_t n = params.size();
  if (args.args.size() > n) {
    throw_error("TypeError", "{}() takes at most {} argument{} ({} given)", func, n, n == 1 ? "" : "s",
                args.args.size());
  }
  std::vector<Value> bound(n);
  std::vector<bool> given(n, false);
  for (size_t i = 0; i < args.args.size(); ++i) {
    bound[i] = args.args[i];
    given[i] = true;
  }
  for (const auto& [key, value] : args.kwargs) {
    size_t i = 0;
    for (const Param& p : params) {
      if (key == p.name) break;
      ++i;
    }
    if (i == n) throw_error("TypeError", "{}() got an unexpected keyword argument '{}'", func, key);
    if (given[i]) throw_error("TypeError", "{}() got multiple values for argument '{}'", func, key);
    bound[i] = value;
    given[i] = true;
  }
  size_t i = 0;
  for (const Param& p : params) {
    if (!given[i]) {
      if (p.required) throw_error("TypeError", "{}() missing required argument '{}'", func, p.name);
      bound[i] = p.default_value;
    }
    ++i;
  }
  return bound;
}

void expect_no_args(std::string_view func, const CallArgs& args) {
  if (!args.args.empty() || !args.kwargs.empty()) {
    throw_error("TypeError", "{}() takes no arguments ({} given)", func,
                args.args.size() + args.kwargs.size());
  }
}

}  // namespace tandem::tmpl
