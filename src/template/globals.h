// Global functions visible to every template: Jinja's defaults as the sandbox installs them (range capped
// at 100000 items, dict, namespace, joiner, cycler) plus Hugging Face's raise_exception and strftime_now.
#pragma once

#include "template/scope.h"

namespace tandem::tmpl {

/// A fresh scope holding the built-in globals; render variables live in a child scope and may shadow them.
ScopePtr make_builtin_scope();

}  // namespace tandem::tmpl
