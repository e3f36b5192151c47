// Jinja's built-in filters (jinja2.filters.FILTERS) as the chat-template environment has them, with
// Hugging Face's tojson replacing Jinja's. Filters Jinja has but this interpreter does not (urlize,
// wordwrap, xmlattr, pprint, random, groupby, striptags, forceescape, filesizeformat, urlencode) are
// unknown names: a template using them fails to parse with "No filter named ...".
#pragma once

#include <string_view>

#include "template/value.h"

namespace tandem::tmpl {

using FilterFn = Value (*)(Renderer& renderer, const Value& operand, const CallArgs& args);

/// nullptr when there is no such filter.
FilterFn find_filter(std::string_view name);
bool has_filter(std::string_view name);

}  // namespace tandem::tmpl
