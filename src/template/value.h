// The dynamic value type of the chat-template interpreter, modelling the Python objects a Jinja template
// sees under Hugging Face's ImmutableSandboxedEnvironment: jinja2.Undefined, None, bool, int, float, str
// (and markupsafe.Markup), list/tuple (and dict views, range), dict (insertion-ordered), jinja2 Namespace,
// callables (macros, globals, bound methods) and the loop object.
//
// Containers are shared and immutable once built: the sandbox forbids mutating lists and dicts, so sharing
// is unobservable, except for Namespace (mutable through `{% set ns.attr = ... %}`) and the loop state.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace tandem::tmpl {

class Value;
class Dict;
class Renderer;
struct Sequence;
struct Namespace;
struct Callable;
struct LoopState;

/// jinja2.Undefined: printing gives "", iteration is empty, most other uses raise. `hint` is the message
/// the error will carry ("'x' is undefined", "'dict object' has no attribute 'y'").
struct Undefined {
  std::string hint;
  /// Sandbox SecurityError instead of UndefinedError (unsafe attribute, e.g. list.append).
  bool unsafe = false;
};

struct None {};

/// A Python str; `markup` marks markupsafe.Markup (from |safe / |escape), which escapes what is added to it.
struct Str {
  std::string text;  // UTF-8
  bool markup = false;
};

/// kIterator models the one-shot iterators and generators that filters such as map/select/reverse return:
/// always truthy, no len(), not subscriptable, exhausted by iteration (`cursor`).
enum class SeqKind : uint8_t { kList, kTuple, kDictKeys, kDictValues, kDictItems, kRange, kIterator };

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kSequence,
    kDict,
    kNamespace,
    kCallable,
    kLoop,
  };
  // Alternatives in the same order as Kind.
  using Storage = std::variant<Undefined, None, bool, int64_t, double, Str, std::shared_ptr<const Sequence>,
                               std::shared_ptr<const Dict>, std::shared_ptr<Namespace>,
                               std::shared_ptr<const Callable>, std::shared_ptr<LoopState>>;

  Value() : v_(Undefined{}) {}
  Value(Undefined u) : v_(std::move(u)) {}
  Value(None) : v_(None{}) {}
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(static_cast<int64_t>(i)) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(Str{std::move(s), false}) {}
  Value(const char* s) : v_(Str{s, false}) {}
  Value(Str s) : v_(std::move(s)) {}
  Value(std::shared_ptr<const Sequence> s) : v_(std::move(s)) {}
  Value(std::shared_ptr<const Dict> d) : v_(std::move(d)) {}
  Value(std::shared_ptr<Namespace> n) : v_(std::move(n)) {}
  Value(std::shared_ptr<const Callable> c) : v_(std::move(c)) {}
  Value(std::shared_ptr<LoopState> l) : v_(std::move(l)) {}

  static Value undefined(std::string hint) { return Undefined{std::move(hint), false}; }
  static Value markup(std::string s) { return Str{std::move(s), true}; }
  static Value list(std::vector<Value> items);
  static Value tuple(std::vector<Value> items);
  static Value sequence(std::vector<Value> items, SeqKind kind);
  /// A one-shot iterator over `items` (e.g. reversed(list)).
  static Value iterator(std::vector<Value> items, const char* type_name);
  /// A Python generator (what Jinja's map/select/unique/batch/items filters return): `produce` runs on first
  /// consumption, so its errors surface where the generator is iterated, as in Python.
  /// `name` is the generator function's name, which Python shows when printing it ("select_or_reject").
  static Value generator(const char* name, std::function<std::vector<Value>()> produce);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  /// int, float or bool (Python's bool is an int subclass).
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  /// int or bool.
  bool is_integral() const { return is_int() || is_bool(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_markup() const { return is_string() && std::get<Str>(v_).markup; }
  bool is_sequence() const { return kind() == Kind::kSequence; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_namespace() const { return kind() == Kind::kNamespace; }
  bool is_callable() const { return kind() == Kind::kCallable; }
  bool is_loop() const { return kind() == Kind::kLoop; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  /// int or bool as int64.
  int64_t as_integral() const { return is_bool() ? (as_bool() ? 1 : 0) : as_int(); }
  /// int, bool or float as double.
  double as_double() const { return is_float() ? as_float() : static_cast<double>(as_integral()); }
  const std::string& as_str() const { return std::get<Str>(v_).text; }
  const Undefined& as_undefined() const { return std::get<Undefined>(v_); }
  const Sequence& seq() const { return *std::get<std::shared_ptr<const Sequence>>(v_); }
  const std::shared_ptr<const Sequence>& seq_ptr() const {
    return std::get<std::shared_ptr<const Sequence>>(v_);
  }
  const Dict& dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  Namespace& ns() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
  const Callable& callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  LoopState& loop() const { return *std::get<std::shared_ptr<LoopState>>(v_); }
  /// Address of the shared object for identity comparisons (`is sameas`); nullptr for scalars.
  const void* identity() const;

  /// Python type name as used in error messages: 'int', 'str', 'list', 'dict', 'NoneType', 'Undefined', ...
  std::string type_name() const;

 private:
  Storage v_;
};

struct Sequence {
  std::vector<Value> items;  // unused for kIterator (see remaining())
  SeqKind kind = SeqKind::kList;
  /// 1 + the deepest nesting() among items, set when the sequence is built (an iterator counts as 1: its
  /// items reach a template only through a new sequence). The renderer bounds it
  /// (TemplateLimits::max_nesting).
  int depth = 1;
  /// The sum of held_bytes() over items, set with `depth` (0 for an iterator). The renderer bounds it
  /// (TemplateLimits::max_output_bytes): strings are copied into containers, so this is memory really held.
  size_t bytes = 0;
  int64_t range_start = 0, range_stop = 0, range_step = 1;  // for kRange (printing only)

  // kIterator state. Iterators are consumed through const Values, like any Python object reference.
  const char* iterator_type = "generator";               // Python type name
  const char* generator_name = nullptr;                  // for generators: the function's name
  mutable std::function<std::vector<Value>()> producer;  // pending generator body
  mutable std::vector<Value> produced;                   // its output once run
  mutable size_t cursor = 0;                             // produced[0, cursor) are consumed

  /// kIterator: runs the pending producer if needed; returns all produced items (use `cursor`).
  const std::vector<Value>& iterator_items() const {
    if (producer) {
      auto produce = std::move(producer);
      producer = nullptr;
      produced = produce();
    }
    return produced;
  }
};

/// An insertion-ordered Python dict. Keys are compared like Python: 1, 1.0 and True are the same key.
class Dict {
 public:
  /// nullptr when absent. Throws TypeError for unhashable keys (list, dict).
  const Value* find(const Value& key) const;
  /// Inserts or overwrites (an overwritten key keeps its original position, as in Python).
  void set(Value key, Value value);
  bool erase(const Value& key);
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }
  /// 1 + the deepest nesting() of any key or value ever set (never lowered: an overwritten entry may leave it
  /// an over-estimate, which only makes the renderer's nesting bound stricter).
  int depth() const { return depth_; }
  /// The sum of held_bytes() over keys and values (an overwritten value's bytes are replaced; saturating).
  size_t bytes() const { return bytes_; }

 private:
  std::vector<std::pair<Value, Value>> entries_;
  int depth_ = 1;
  size_t bytes_ = 0;
  std::unordered_map<std::string, size_t> index_;  // hash_key(key) -> position in entries_
};

/// jinja2.utils.Namespace: attributes only, mutable.
struct Namespace {
  Dict attrs;
};

/// Positional and keyword arguments of a call, in source order.
struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};

/// Macros, global functions and bound methods.
struct Callable {
  enum class Kind : uint8_t { kMacro, kFunction, kMethod };
  std::string name;
  Kind kind = Kind::kFunction;
  std::function<Value(Renderer&, CallArgs&)> fn;
};

/// Python hashing identity of a dict key: equal keys (1 == 1.0 == True) give the same string.
/// Throws TypeError "unhashable type: 'list'" for unhashable values.
std::string hash_key(const Value& key);

/// How deeply `v` nests containers: 0 for scalars, strings and callables; a sequence's or dict's depth(); a
/// namespace's attribute dict's depth(). O(1): depths are kept as containers are built.
int nesting(const Value& v);

/// Approximately the memory `v` holds: a string's bytes; a container's bytes (its items' held_bytes plus 16
/// per item); a namespace's attribute dict's; 0 for the rest. O(1), kept as containers are built; saturating.
size_t held_bytes(const Value& v);

/// Python truthiness (jinja2.Undefined is false).
bool truthy(const Value& v);

/// Python str(): what `{{ v }}` prints.
std::string to_str(const Value& v);

/// Python repr(): how values appear inside printed lists and dicts.
std::string to_repr(const Value& v);

/// Python ==.
bool equals(const Value& a, const Value& b);

/// Converts JSON (objects keep their key order) to template values.
Value from_json(const nlohmann::ordered_json& j);

/// Raises the error a jinja2.Undefined raises when used (UndefinedError, or SecurityError when unsafe).
[[noreturn]] void fail_undefined(const Undefined& u);

/// Python repr of a str (quote choice and escapes as CPython).
std::string py_str_repr(const std::string& s);

/// Python repr/str of a float: shortest round-trip digits, "1.0", "1e-05", "inf", "nan".
std::string py_float_repr(double d);

}  // namespace tandem::tmpl
