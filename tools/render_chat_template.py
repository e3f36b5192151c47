#!/usr/bin/python3
"""Reference chat-template renderer: Python Jinja2 configured exactly like Hugging Face transformers.

Replicates transformers.utils.chat_template_utils._compile_jinja_template: an
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols extension and
HF's {% generation %} tag, HF's tojson filter (json.dumps with ensure_ascii=False, no HTML escaping, key
order kept) and the globals raise_exception(message) and strftime_now(format).

Usage: render_chat_template.py REQUEST.json
  REQUEST.json: {"template": "<template text or path to a template file>",
                 "cases": [ {<variables>}, ... ]}
  ("template_file": PATH may be given instead of "template" to name a file unambiguously.)
Prints a JSON list with, per case, the rendered string or {"error": message, "type": exception class}.
  REQUEST.json may instead be {"batch": [<request>, ...]}: prints a list of such lists.
Only the Debian python3-jinja2 package is needed (run with /usr/bin/python3).
"""
import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(jinja2.ext.Extension):
    """HF's AssistantTracker parses {% generation %}...{% endgeneration %} and renders the body as is."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return datetime.now().strftime(format)


def make_environment():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render_request(env, request):
    if "template_file" in request:
        with open(request["template_file"], encoding="utf-8") as f:
            return render_source(env, f.read(), request["cases"])
    source = request["template"]
    if "\n" not in source and "{" not in source and os.path.isfile(source):
        with open(source, encoding="utf-8") as f:
            source = f.read()
    return render_source(env, source, request["cases"])


def render_source(env, source, cases):
    results = []
    try:
        template = env.from_string(source)
    except Exception as e:  # a syntax error fails every case the same way
        error = {"error": str(e), "type": type(e).__name__}
        results = [error for _ in cases]
    else:
        for case in cases:
            try:
                results.append(template.render(**case))
            except Exception as e:
                results.append({"error": str(e), "type": type(e).__name__})
    return results


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    env = make_environment()
    if "batch" in request:
        results = [render_request(env, r) for r in request["batch"]]
    else:
        results = render_request(env, request)
    sys.stdout.write(json.dumps(results, ensure_ascii=True))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
