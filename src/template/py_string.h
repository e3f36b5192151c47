// CPython str algorithms on UTF-8 strings. Indices and lengths are in code points, as in Python.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "template/limits.h"

namespace tandem::tmpl::py {

/// Resolved slice bounds (PySlice_AdjustIndices): iterate i = start; step > 0 ? i < stop : i > stop.
struct SliceBounds {
  int64_t start = 0;
  int64_t stop = 0;
  int64_t step = 1;
  int64_t count = 0;  // number of selected items
};

/// Throws ValueError for step 0.
SliceBounds slice_bounds(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop,
                         std::optional<int64_t> step);

std::string slice(std::string_view s, const SliceBounds& b);

/// s[index] with a Python (possibly negative) index; nullopt when out of range.
std::optional<std::string> char_at(std::string_view s, int64_t index);

/// strip/lstrip/rstrip. `chars` nullopt strips str.isspace() characters.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);

/// str.split / str.rsplit. `sep` nullopt splits on whitespace runs. maxsplit < 0 means no limit.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);

std::vector<std::string> splitlines(std::string_view s, bool keepends);

/// str.replace; count < 0 replaces all. RenderLimitError once the result passes limits.max_output_bytes.
std::string replace(std::string_view s, std::string_view old_sub, std::string_view new_sub, int64_t count,
                    const TemplateLimits& limits);

/// str.find / str.rfind over s[start:end] (Python slice semantics); -1 when absent.
int64_t find(std::string_view s, std::string_view sub, std::optional<int64_t> start,
             std::optional<int64_t> end);
int64_t rfind(std::string_view s, std::string_view sub, std::optional<int64_t> start,
              std::optional<int64_t> end);
int64_t count(std::string_view s, std::string_view sub, std::optional<int64_t> start,
              std::optional<int64_t> end);

bool startswith(std::string_view s, std::string_view prefix, std::optional<int64_t> start,
                std::optional<int64_t> end);
bool endswith(std::string_view s, std::string_view suffix, std::optional<int64_t> start,
              std::optional<int64_t> end);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title
std::string capitalize(std::string_view s);  // str.capitalize (first character titlecased)
std::string swapcase(std::string_view s);

/// Character-class predicates over a whole string (false for the empty string, like Python).
bool isspace(std::string_view s);
bool isalpha(std::string_view s);
bool isalnum(std::string_view s);
bool isdigit(std::string_view s);
bool isdecimal(std::string_view s);
bool isnumeric(std::string_view s);
bool islower(std::string_view s);
bool isupper(std::string_view s);
bool istitle(std::string_view s);

/// center / ljust / rjust with a one-character fill; zfill. RenderLimitError, before allocating, for a width
/// whose result would pass limits.max_output_bytes ('x'.center(2**62)).
std::string pad(std::string_view s, int64_t width, std::string_view fill, char align /* '<' '>' '^' */,
                const TemplateLimits& limits);
std::string zfill(std::string_view s, int64_t width, const TemplateLimits& limits);

std::string reversed(std::string_view s);

/// Each code point as its own string (iteration over a str).
std::vector<std::string> chars(std::string_view s);

}  // namespace tandem::tmpl::py
