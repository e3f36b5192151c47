#include "template/globals.h"

#include <chrono>
#include <ctime>

#include "template/call_args.h"
#include "template/py_ops.h"
#include "template/render_error.h"
#include "template/renderer.h"

namespace tandem::tmpl {
namespace {

// jinja2.sandbox.MAX_RANGE
constexpr int64_t kMaxRange = 100000;

Value function(const char* name, std::function<Value(Renderer&, CallArgs&)> fn) {
  auto c = std::make_shared<Callable>();
  c->name = name;
  c->kind = Callable::Kind::kFunction;
  c->fn = std::move(fn);
  return Value(std::shared_ptr<const Callable>(std::move(c)));
}

int64_t range_arg(const Value& v) {
  if (v.is_integral()) return v.as_integral();
  if (v.is_undefined()) fail_undefined(v.as_undefined());
  throw_error("TypeError", "'{}' object cannot be interpreted as an integer", v.type_name());
}

Value range_fn(Renderer&, CallArgs& a) {
  if (!a.kwargs.empty()) throw_error("TypeError", "range() takes no keyword arguments");
  if (a.args.empty()) throw_error("TypeError", "range expected at least 1 argument, got 0");
  if (a.args.size() > 3)
    throw_error("TypeError", "range expected at most 3 arguments, got {}", a.args.size());
  int64_t start = 0, stop = 0, step = 1;
  if (a.args.size() == 1) {
    stop = range_arg(a.args[0]);
  } else {
    start = range_arg(a.args[0]);
    stop = range_arg(a.args[1]);
    if (a.args.size() == 3) step = range_arg(a.args[2]);
  }
  if (step == 0) throw_error("ValueError", "range() arg 3 must not be zero");
  // In uint64: range(-2**63, 2**63 - 1) must not overflow int64 before it is refused as too big.
  uint64_t count = 0;
  const auto ustart = static_cast<uint64_t>(start), ustop = static_cast<uint64_t>(stop),
             ustep = static_cast<uint64_t>(step);
  if (step > 0 && start < stop) count = (ustop - ustart - 1) / ustep + 1;
  if (step < 0 && start > stop) count = (ustart - ustop - 1) / (0 - ustep) + 1;
  if (count > static_cast<uint64_t>(kMaxRange)) {
    throw_error("OverflowError", "Range too big. The sandbox blocks ranges larger than MAX_RANGE ({}).",
                kMaxRange);
  }
  auto s = std::make_shared<Sequence>();
  s->kind = SeqKind::kRange;
  s->range_start = start;
  s->range_stop = stop;
  s->range_step = step;
  s->items.reserve(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; ++i) s->items.emplace_back(static_cast<int64_t>(ustart + i * ustep));
  s->bytes = s->items.size() * 16;  // held_bytes: ints hold nothing beyond their Value (value.h)
  return Value(std::shared_ptr<const Sequence>(std::move(s)));
}

// dict(*args, **kwargs) semantics shared by dict() and namespace().
Dict build_dict(const char* func, const CallArgs& a) {
  if (a.args.size() > 1)
    throw_error("TypeError", "{} expected at most 1 argument, got {}", func, a.args.size());
  Dict d;
  if (!a.args.empty()) {
    const Value& src = a.args[0];
    if (src.is_dict()) {
      for (const auto& [k, v] : src.dict().entries()) d.set(k, v);
    } else {
      size_t i = 0;
      for (const Value& item : iterate(src)) {
        const std::vector<Value> pair =
            item.is_string() || item.is_sequence() ? iterate(item) : std::vector<Value>{};
        if (pair.size() != 2) {
          throw_error("ValueError", "dictionary update sequence element #{} has length {}; 2 is required", i,
                      pair.size());
        }
        d.set(pair[0], pair[1]);
        ++i;
      }
    }
  }
  for (const auto& [k, v] : a.kwargs) d.set(Value(k), v);
  return d;
}

// datetime.now().strftime(fmt): %f, %z and %Z are handled by Python itself (naive datetime: empty zone).
std::string strftime_now(const std::string& fmt) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  localtime_r(&t, &tm);
  std::string expanded;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] == '%' && i + 1 < fmt.size()) {
      const char c = fmt[i + 1];
      if (c == 'f') {
        expanded += fmt::format("{:06d}", micros);
        ++i;
        continue;
      }
      if (c == 'z' || c == 'Z') {
        ++i;
        continue;
      }
      expanded += fmt.substr(i, 2);
      ++i;
      continue;
    }
    expanded.push_back(fmt[i]);
  }
  if (expanded.empty()) return "";
  // strftime has no way to report "buffer too small" apart from returning 0; grow until it fits.
  for (size_t cap = 256; cap <= (size_t{1} << 20); cap *= 4) {
    std::string buf(cap, '\0');
    const size_t n = std::strftime(buf.data(), buf.size(), expanded.c_str(), &tm);
    if (n > 0) {
      buf.resize(n);
      return buf;
    }
  }
  return "";
}

}  // namespace

ScopePtr make_builtin_scope() {
  auto scope = std::make_shared<Scope>();
  scope->set("range", function("range", range_fn));
  scope->set("dict", function("dict", [](Renderer&, CallArgs& a) -> Value {
               return Value(std::shared_ptr<const Dict>(std::make_shared<Dict>(build_dict("dict", a))));
             }));
  scope->set("namespace", function("namespace", [](Renderer& r, CallArgs& a) -> Value {
               auto ns = std::make_shared<Namespace>();
               ns->attrs = build_dict("Namespace", a);
               r.track_namespace(ns);
               return Value(std::move(ns));
             }));
  scope->set("raise_exception", function("raise_exception", [](Renderer&, CallArgs& a) -> Value {
               const auto v = bind_args("raise_exception", a, {required("message")});
               throw RenderError("TemplateError", to_str(v[0]));
             }));
  scope->set("strftime_now", function("strftime_now", [](Renderer&, CallArgs& a) -> Value {
               const auto v = bind_args("strftime_now", a, {required("format")});
               if (!v[0].is_string()) {
                 throw_error("TypeError", "strftime() argument 1 must be str, not {}", v[0].type_name());
               }
               return strftime_now(v[0].as_str());
             }));
  scope->set("joiner", function("joiner", [](Renderer&, CallArgs& a) -> Value {
               const auto v = bind_args("joiner", a, {Param{"sep", Value(", ")}});
               auto used = std::make_shared<bool>(false);
               const std::string sep = to_str(v[0]);
               return function("joiner", [used, sep](Renderer&, CallArgs& inner) -> Value {
                 expect_no_args("joiner", inner);
                 if (!*used) {
                   *used = true;
                   return Value("");
                 }
                 return Value(sep);
               });
             }));
  return scope;
}

}  // namespace tandem::tmpl
