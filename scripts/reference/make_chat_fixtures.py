#!/usr/bin/env python3
"""Reference renderings of Hugging Face chat templates, for the C++ Jinja interpreter (src/io/jinja/).

Run:  python3 scripts/reference/make_chat_fixtures.py   (jinja2 3.1.x, e.g. Debian's python3-jinja2; stdlib else)

Writes tests/fixtures/chat_templates/ (see the README there):
  - conversations.jsonl  the tool-less conversations, one {"name", "messages"} per line;
  - expected.jsonl       every template x conversation x add_generation_prompt: the rendered text and the byte
                         spans of its {% generation %} blocks, or the raise_exception message, or the error;
  - snippets.jsonl       small templates with a context each and jinja2's output or error, for the unit tests.
The templates themselves (llama3, gemma, gemma3, qwen3, generation .jinja) are inputs, not outputs.

The Jinja environment is built exactly as transformers' _compile_jinja_template builds it
(src/transformers/utils/chat_template_utils.py): ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]), its tojson filter (json.dumps with
ensure_ascii=False) and the globals raise_exception and strftime_now, and rendered as
_render_with_assistant_indices renders (messages, tools=None, documents=None, add_generation_prompt, plus the
special tokens). One change for determinism: strftime_now formats the fixed time 2026-01-15 12:00:00, which the C++
tests pass as RenderOptions::strftime_now_date. Nothing from src/ is used. Rerunning reproduces identical bytes.
"""
import json
import os
import sys
from contextlib import contextmanager
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "chat_templates")
FIXED_NOW = datetime(2026, 1, 15, 12, 0, 0)

# Special tokens as each model's tokenizer_config.json has them (Qwen3 has no BOS: bos_token is null there, so
# transformers passes none).
TEMPLATES = {
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "gemma": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "gemma3": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "qwen3": {"eos_token": "<|im_end|>"},
    "generation": {"bos_token": "<s>", "eos_token": "</s>"},
}

CONVERSATIONS = [
    ("single_user", [{"role": "user", "content": "Hello!"}]),
    ("system_multi_turn", [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]),
    ("multi_turn", [
        {"role": "user", "content": "Write a haiku about rain."},
        {"role": "assistant", "content": "Soft rain on the roof\nwhispers to the sleeping town\nmorning smells of earth"},
        {"role": "user", "content": "Now one about snow."},
        {"role": "assistant", "content": "White hush on the fields\nfootprints fill before dawn comes\nthe world starts again"},
    ]),
    ("empty_content", [
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Still there?"},
    ]),
    ("unicode", [
        {"role": "system", "content": "Réponds en français 🇫🇷, s'il te plaît."},
        {"role": "user", "content": "你好，世界！🌍 Привет, мир — café naïve résumé 👨‍👩‍👧"},
        {"role": "assistant", "content": "こんにちは 😀👍🏽 — Ελληνικά, עברית, العربية"},
        {"role": "user", "content": "Zero\u200bwidth, non\u00a0breaking, ideographic\u3000space."},
    ]),
    ("whitespace", [
        {"role": "user", "content": "\tTabbed question?\t\n"},
        {"role": "assistant", "content": "  \n  Leading and trailing whitespace.  \n\n"},
        {"role": "user", "content": "   "},
    ]),
    ("system_only", [{"role": "system", "content": "  System prompt with spaces around.  "}]),
    ("long", [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "1"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "2"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "3"},
        {"role": "assistant", "content": "three"},
        {"role": "user", "content": "4"},
        {"role": "assistant", "content": "four"},
        {"role": "user", "content": "5"},
    ]),
    ("special_text", [
        {"role": "user", "content": "Quotes ' \" and backslashes \\ \\n, braces {{ not a tag }} {% neither %}, "
                                    "tokens <|im_end|> <eos> <|eot_id|>, a CRLF\r\nline."},
        {"role": "assistant", "content": "{\"json\": [1, 2.5, null, true]}"},
    ]),
    ("thinking", [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "<think>\nSimple arithmetic.\n</think>\n\n2+2 = 4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "<think>\nAgain simple.\n</think>\n\n3+3 = 6."},
    ]),
    ("consecutive_users", [
        {"role": "user", "content": "First."},
        {"role": "user", "content": "Second."},
    ]),
    ("assistant_first", [
        {"role": "assistant", "content": "I speak first."},
        {"role": "user", "content": "Fine."},
    ]),
]

# Tool schemas and a tool call, for the tool-calling branches (rendered from snippets with template_file).
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city — Zürich, 東京 …",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
TOOL_MESSAGES = [
    {"role": "system", "content": "You can call tools."},
    {"role": "user", "content": "Weather in Zürich?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Zürich", "unit": "celsius"}}}
    ]},
    {"role": "tool", "content": "{\"temperature\": 21.5}"},
]


# ----------------------------------------------------------------------------- transformers' environment
class AssistantTracker(Extension):
    """transformers' {% generation %} tag: records the character offsets of the block's output."""

    tags = {"generation"}

    def __init__(self, environment):
        super().__init__(environment)
        environment.extend(activate_tracker=self.activate_tracker)
        self._rendered_blocks = None
        self._generation_indices = None

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        rv = caller()
        if self.is_active():
            start_index = len("".join(self._rendered_blocks))
            end_index = start_index + len(rv)
            self._generation_indices.append((start_index, end_index))
        return rv

    def is_active(self):
        return self._rendered_blocks or self._generation_indices

    @contextmanager
    def activate_tracker(self, rendered_blocks, generation_indices):
        try:
            if self.is_active():
                raise ValueError("AssistantTracker should not be reused before closed")
            self._rendered_blocks = rendered_blocks
            self._generation_indices = generation_indices
            yield
        finally:
            self._rendered_blocks = None
            self._generation_indices = None


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return FIXED_NOW.strftime(format)


def environment():
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def template_line(exc):
    """The template line a runtime error happened on (jinja2 rewrites tracebacks to point at the template)."""
    line = getattr(exc, "lineno", None)
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render(env, source, context):
    """{"text", "generation_spans"} (byte offsets), {"raise_exception": message} or {"error": {...}}."""
    try:
        template = env.from_string(source)
        rendered_blocks, generation_indices = [], []
        with env.activate_tracker(rendered_blocks, generation_indices):
            for block in template.generate(**context):
                rendered_blocks.append(block)
            text = "".join(rendered_blocks)
    except jinja2.exceptions.TemplateSyntaxError as e:  # includes TemplateAssertionError
        return {"error": {"type": type(e).__name__, "message": e.message, "line": e.lineno, "phase": "parse"}}
    except jinja2.exceptions.TemplateError as e:
        if type(e) is jinja2.exceptions.TemplateError:  # raise_exception
            return {"raise_exception": e.message}
        return {"error": {"type": type(e).__name__, "message": str(e), "line": template_line(e), "phase": "render"}}
    except Exception as e:  # TypeError, ZeroDivisionError, RecursionError, ...
        return {"error": {"type": type(e).__name__, "message": str(e), "line": template_line(e), "phase": "render"}}
    # transformers counts characters; the C++ side counts UTF-8 bytes.
    to_bytes = lambda i: len(text[:i].encode("utf-8"))
    return {"text": text, "generation_spans": [[to_bytes(b), to_bytes(e)] for b, e in generation_indices]}


def chat_context(template, messages, add_generation_prompt):
    context = {"messages": messages, "tools": None, "documents": None, "add_generation_prompt": add_generation_prompt}
    context.update(TEMPLATES[template])
    return context


# ----------------------------------------------------------------------------- snippets
S = []  # (name, source or {"file": name}, context)


def snippet(snippet_name, source, **context):
    S.append((snippet_name, source, context))


MESSAGES = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]

# whitespace control, trim_blocks, lstrip_blocks
snippet("ws_trim_blocks", "{% if true %}\n  yes\n{% endif %}\nend")
snippet("ws_lstrip_blocks", "a\n    {% if true %}\n    b\n    {% endif %}\nc")
snippet("ws_lstrip_disabled_plus", "a\n    {%+ if true %}b{% endif %}\nc")
snippet("ws_trim_disabled_plus", "{% if true +%}\nb{% endif +%}\nc")
snippet("ws_variable_not_trimmed", "  {{ 'a' }}\n  {{ 'b' }}\n")
snippet("ws_minus_variable", "a  \n {{- 'b' -}} \n  c")
snippet("ws_minus_block", "a  \n  {%- if true -%}  \n b \n {%- endif -%}\n  c")
snippet("ws_comment_trimmed", "x\n    {# comment #}\ny\n  {#- c2 -#}  \n z")
snippet("ws_comment_plus", "x\n  {#+ keep #}\ny")
snippet("ws_crlf_source", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n")
snippet("ws_trailing_newline_dropped", "a\n")
snippet("ws_two_trailing_newlines", "a\n\n")
snippet("ws_tab_lstrip", "\t{% if true %}a{% endif %}\n \t {% if true %}b{% endif %}")
snippet("ws_text_before_tag_kept", "x {% if true %}y{% endif %} z")
snippet("ws_for_lines", "{% for i in [1, 2] %}\n    {{ i }}\n{% endfor %}\ndone")
snippet("ws_raw", "{% raw %}{{ x }}{% if %}{% endraw %}|{%- raw -%}  a  {%- endraw %}\nb")
snippet("ws_unicode_space_minus", "a\u3000\u00a0 {{- 'b' -}} \u2003c")
snippet("ws_line_starting_after_minus", "{% if true -%}\n   {% if true %}x{% endif %}{% endif %}")
snippet("ws_set_lines", "{% set x = 1 %}\n{% set y = 2 %}\n{{ x + y }}\n")
snippet("ws_macro_lines", "{% macro m(a) %}\n  [{{ a }}]\n{% endmacro %}\n{{ m(1) }}{{ m(2) }}")

# lexer corners
snippet("lex_braces_in_expressions", "{{ {'a': {'b': 1}} }}|{{ '}}' }}|{{ \"{{\" }}|{% set d = {'k': {'v': [1, {}]}} %}{{ d }}")
snippet("lex_newline_in_string", "{{ 'line1\nline2' }}|{{ 'a\\\nb' }}|{{ '\\é' }}")
snippet("lex_operators_without_spaces", "{{1+2*3}}|{{'a'~'b'}}|{{[1,2][1]}}|{{x.y|upper}}|{%if 1<2%}lt{%endif%}",
        x={"y": "z"})
snippet("lex_minus_before_end", "{{ 5 -}} x {%- if true -%} y {%- endif %}")
snippet("lex_comment_between_tags", "a{# one #}b{#- two -#} c {# {{ not parsed }} {% neither %} #}d")
snippet("lex_multiline_tag", "{{\n  'a'\n  ~ 'b'\n}}{%\n  if true\n%}\nyes{% endif %}")
snippet("lex_dotted_integer", "{{ l.0.1 }} {{ l.1 }}", l=[[1, 2], [3]])

# loops
snippet("loop_vars", "{% for x in ['a', 'b', 'c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
        "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}")
snippet("loop_prev_next", "{% for x in [1, 2, 3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}|{% endfor %}")
snippet("loop_cycle", "{% for x in range(5) %}{{ loop.cycle('odd', 'even') }} {% endfor %}")
snippet("loop_filter", "{% for x in range(10) if x is odd %}{{ x }}{{ loop.last }}/{{ loop.length }} {% endfor %}")
snippet("loop_else", "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in [1] if x > 5 %}x{% else %}none{% endfor %}")
snippet("loop_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}"
        "{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}")
snippet("loop_tuple_unpack", "{% for k, v in {'a': 1, 'b': [2]}.items() %}{{ k }}={{ v }};{% endfor %}"
        "{% for (a, b) in [(1, 2), (3, 4)] %}{{ a * b }}{% endfor %}")
snippet("loop_dict_keys", "{% for k in d %}{{ k }}{% endfor %}", d={"z": 1, "a": 2})
snippet("loop_string", "{% for c in 'héy😀' %}[{{ c }}]{% endfor %}")
snippet("loop_nested_loop_var", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ b }}{% endfor %}"
        "{{ loop.index }};{% endfor %}")
snippet("loop_changed", "{% for x in [1, 1, 2, 2, 3] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}")
snippet("loop_undefined_iterable", "{% for x in nothing %}x{% else %}else{% endfor %}")
snippet("loop_reverse_messages", "{% for m in messages[::-1] %}{{ m.role }}{{ loop.index0 }} {% endfor %}", messages=MESSAGES)
snippet("loop_over_int", "{% for x in 5 %}{% endfor %}")

# scoping
snippet("scope_set_in_loop", "{% set x = 0 %}{% for i in range(3) %}{{ x }}{% set x = x + 1 %}{{ x }} {% endfor %}{{ x }}")
snippet("scope_set_in_if", "{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}")
snippet("scope_per_iteration", "{% for i in range(3) %}{% if i == 1 %}{% set y = 7 %}{% endif %}[{{ y }}]{% endfor %}")
snippet("scope_namespace", "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}"
        "{% if m.role == 'user' %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}"
        "{{ ns.found }} {{ ns.n }} {{ ns }}", messages=MESSAGES)
snippet("scope_blocks_keep_their_sets", "{% for x in [] %}{% else %}{% set a = 1 %}{% endfor %}[{{ a }}]"
        "{% generation %}{% set b = 1 %}{% endgeneration %}[{{ b }}]{% set c %}{% set d = 1 %}{% endset %}[{{ d }}]"
        "{% macro m() %}{% set e = 6 %}{{ e }}{% endmacro %}{% set e = 5 %}{{ m() }}{{ e }}")
snippet("scope_loop_var_restored", "{% set x = 'outer' %}{% for x in [1, 2] %}{{ x }}{% endfor %}{{ x }}")
snippet("scope_block_set", "{% set block %}\n  Hello {{ name }}!\n{% endset %}[{{ block }}]", name="Ann")
snippet("scope_block_set_filter", "{% set s | upper | trim %}  abc  {% endset %}[{{ s }}]")
snippet("scope_tuple_set", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}")
snippet("scope_set_messages_slice", "{% set messages = messages[1:] %}{{ messages | length }}", messages=MESSAGES)
snippet("scope_namespace_dict_arg", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns['a'] }}")
snippet("scope_namespace_cycle", "{% set ns = namespace(a=1) %}{% set ns.self = ns %}{{ ns }}")
snippet("scope_assign_non_namespace", "{% set d = {} %}{% set d.x = 1 %}")

# macros
snippet("macro_defaults", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}"
        "{% endmacro %}{{ greet('Ann') }}|{{ greet('Bob', 'Hi') }}|{{ greet(name='Cy', punct='?') }}")
snippet("macro_default_uses_param", "{% macro m(a, b=a * 2) %}{{ a }}-{{ b }}{% endmacro %}{{ m(3) }}{{ m(3, 1) }}")
snippet("macro_missing_param", "{% macro m(a, b) %}[{{ a }}][{{ b }}]{{ b is defined }}{% endmacro %}{{ m(1) }}")
snippet("macro_recursive", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}"
        "{% endmacro %}{{ fact(10) }}")
snippet("macro_sees_globals", "{% macro m() %}{{ who }}{% endmacro %}{% set who = 'late' %}{{ m() }}")
snippet("macro_repr", "{% macro m() %}{% endmacro %}{{ m }}")
snippet("macro_too_many_args", "{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}")
snippet("macro_nested_call", "{% macro inner(x) %}<{{ x }}>{% endmacro %}{% macro outer(x) %}{{ inner(x) ~ inner(x) }}"
        "{% endmacro %}{{ outer('a') }}")
snippet("macro_render_json", "{%- macro render(v) -%}{%- if v is mapping -%}{ {%- for k, x in v.items() -%}{{ k }}: "
        "{{ render(x) }}{{ ', ' if not loop.last }}{%- endfor -%} }{%- elif v is string -%}'{{ v }}'{%- else -%}"
        "{{ v }}{%- endif -%}{%- endmacro -%}{{ render(data) }}", data={"a": {"b": "c", "d": 1}, "e": True})

# expressions
snippet("expr_arithmetic", "{{ 7 + 3 }} {{ 7 - 10 }} {{ 7 * 3 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} "
        "{{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }} "
        "{{ 1 + 2 * 3 - 4 / 2 }} {{ (1 + 2) * 3 }} {{ 10 / 4 * 2 }} {{ true + 1 }} {{ 3 * 1.5 }}")
snippet("expr_unary", "{{ -3 }} {{ -(-3) }} {{ +4 }} {{ -3 | abs }} {{ - 2 ** 2 }} {{ not true }} {{ not 0 }}")
snippet("expr_strings", "{{ 'a' + 'b' }} {{ 'a' ~ 1 ~ none ~ true ~ 2.0 }} {{ 'ab' * 3 }} {{ 'x' 'y' \"z\" }} "
        "{{ 'it\\'s' }} {{ \"say \\\"hi\\\"\" }} {{ 'tab\\tnew\\nline' }} {{ '\\x41\\u00e9\\U0001F600\\101' }} "
        "{{ 'back\\\\slash' }} {{ 'keep\\d' }}")
snippet("expr_numbers", "{{ 1_000 }} {{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1.5e3 }} {{ 1e-3 }} {{ 2.5E+2 }} {{ 1_0.5 }}")
snippet("expr_compare", "{{ 1 < 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 'abc' < 'abd' }} "
        "{{ [1, 2] < [1, 3] }} {{ (1, 2) == (1, 2) }} {{ [1] == (1,) }} {{ none == none }} {{ 1 >= 1 }} {{ 2 <= 1 }} "
        "{{ true == 1 }} {{ {'a': 1} == {'a': 1} }}")
snippet("expr_in", "{{ 'a' in 'cat' }} {{ 'x' not in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} "
        "{{ 'v' in {'k': 'v'} }} {{ 1 in (1, 2) }} {{ 'x' in nothing }}")
snippet("expr_and_or", "{{ 0 or 'x' }} {{ 'a' and 'b' }} {{ '' and 'b' }}|{{ none or [] }} {{ 1 and 0 }} "
        "{{ false or none }}")
snippet("expr_conditional", "{{ 'yes' if true else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'only' if false }}] "
        "{{ 'a' if false else 'b' if true else 'c' }}")
snippet("expr_literals", "{{ [1, 'two', 3.0, none, true, [4], {'k': 'v'}, (5,), ()] }} {{ {'a': 1, 'b': [1, 2]} }} "
        "{{ (1, 2) }} {{ [] }} {{ {} }} {{ [1, 2,] }} {{ {'a': 1,} }}")
snippet("expr_precedence_filters", "{{ 'ab' | upper + 'c' }} {{ items | length - 1 }} {{ -1 | abs }} "
        "{{ not items | length }} {{ 1 ~ 2 | string ~ 3 }} {{ 'a' ~ 'b' | upper }}", items=[1, 2, 3])
snippet("expr_attribute_item", "{{ d.a }} {{ d['a'] }} {{ d.b.c }} {{ d['b']['c'] }} {{ l.0 }} {{ l[1] }} {{ l[-1] }} "
        "[{{ d.missing }}] [{{ l[10] }}] {{ d['items'] is defined }}", d={"a": 1, "b": {"c": 2}}, l=[10, 20, 30])
snippet("expr_method_vs_key", "{{ d.items()|list }} {{ d['keys'] }} {{ d.get('x', 'dflt') }} {{ d.get('keys') }} "
        "{{ d.get('nope') }}", d={"keys": "value-of-keys", "x": 1})
snippet("expr_function_calls", "{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} "
        "{{ dict(a=1, b=2) }} {{ dict([('x', 1)]) }} {{ range(3)|length }}")
snippet("expr_chained_postfix", "{{ messages[0]['content'].upper().strip('S')[0:1] }}", messages=MESSAGES)
snippet("expr_print_statement", "{% print 'printed' %} {% print 1, 2 %}")
snippet("expr_tuple_output", "{{ 1, 'a' }}")

# printing (Python's str and repr)
snippet("print_values", "{{ none }} {{ true }} {{ false }} {{ 1.0 }} {{ 1e20 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} "
        "{{ 0.00001 }} {{ 1/3 }} {{ 0.1 + 0.2 }} {{ -0.0 }} {{ 123456789.123 }} {{ 2.5e-7 }} {{ 100.0 }} {{ 1e22 }}")
snippet("print_repr_strings", "{{ ['a\"b', \"it's\", 'both \\' \"', 'nl\\n', 'tab\\t', 'bs\\\\', '\\x00\\x1f\\x7f', "
        "'é', '😀', '\\u200b', '\\xa0', '\\u3000', '\\xad'] }}")
snippet("print_nested", "{{ {'a': [1, {'b': (2, 'c')}], 'd': none} }} {{ [[]] }} {{ [{}] }}")
snippet("print_input_values", "{{ v }}|{{ v.f }}|{{ v.l }}|{{ v.s }}", v={"f": 2.0, "l": [1, "x", None, False], "s": "x"})
snippet("print_loop_object", "{% for x in [1, 2] %}{{ loop }}{% endfor %}")

# slicing and indexing (code points)
snippet("slice_strings", "{{ s[1:3] }}|{{ s[::-1] }}|{{ s[::2] }}|{{ s[-3:] }}|{{ s[:-1] }}|{{ s[5:1:-2] }}|"
        "{{ s[100:] }}|{{ s[-100:2] }}|{{ s[1] }}|{{ s[-1] }}|{{ s|length }}", s="héllo wörld😀")
snippet("slice_lists", "{{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::-2] }} {{ l[1:100] }} {{ l[-2:-1] }} "
        "{{ l[3:0:-1] }} {{ (1, 2, 3)[1:] }}", l=[0, 1, 2, 3, 4])
snippet("slice_cjk", "{{ s[0] }}{{ s[2:4] }}{{ s[-2:] }} {{ s|length }} {{ s|reverse }}", s="你好世界🌍！")
snippet("slice_step_zero", "{{ 'abc'[::0] }}")

# filters
snippet("filter_trim", "[{{ '  a b  ' | trim }}] [{{ 'xxaxx' | trim('x') }}] [{{ none | trim }}] [{{ nothing | trim }}] "
        "[{{ '\\u3000\\ta\\n' | trim }}]")
snippet("filter_length", "{{ 'héllo' | length }} {{ [1, 2] | count }} {{ {'a': 1} | length }} {{ nothing | length }}")
snippet("filter_case", "{{ 'hello world' | upper }} {{ 'HeLLo' | lower }} {{ 'hello world-foo(bar [baz' | title }} "
        "{{ 'hELLO wORLD' | capitalize }} {{ 'éçà ß' | upper }} {{ 'ÀÉÎ Σ' | lower }} {{ \"they're o'neil\" | title }}")
snippet("filter_default", "{{ nothing | default('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }} "
        "{{ none | default('d') }} {{ none | d('d', boolean=true) }} {{ 0 | d(5, true) }} [{{ nothing | default }}]")
snippet("filter_join", "{{ [1, 2, 3] | join }} {{ ['a', 'b'] | join(', ') }} {{ users | join('/', attribute='name') }} "
        "{{ 'abc' | join('-') }}", users=[{"name": "a"}, {"name": "b"}])
snippet("filter_select", "{{ messages | selectattr('role', 'equalto', 'system') | list }} "
        "{{ messages | rejectattr('role', 'eq', 'system') | map(attribute='content') | list }} "
        "{{ messages | selectattr('name') | list }} {{ messages | selectattr('role', 'in', ['user', 'x']) | list | length }} "
        "{{ [1, 2, 3, 4] | select('even') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} "
        "{{ [0, 1, '', 'a', none] | select | list }} {{ [1, 3, 6] | select('divisibleby', 3) | list }} "
        "{{ [1, 5, 8] | select('gt', 4) | list }}", messages=MESSAGES + [{"role": "user", "content": "x", "name": "n"}])
snippet("filter_map", "{{ messages | map(attribute='role') | join(',') }} {{ ['a', 'b'] | map('upper') | list }} "
        "{{ [{'a': {'b': 1}}] | map(attribute='a.b') | list }} {{ [[1, 2]] | map(attribute='1') | list }} "
        "{{ messages | map(attribute='missing', default='-') | list }} {{ ['  x '] | map('trim') | list }} "
        "{{ [1.5, 2.5] | map('round') | list }}", messages=MESSAGES)
snippet("filter_first_last", "{{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} [{{ [] | first }}] {{ 'abc' | first }} "
        "{{ 'abc' | last }} {{ messages | first | tojson }}", messages=MESSAGES)
snippet("filter_conversions", "{{ '42' | int }} {{ '42.7' | int }} {{ 3.9 | int }} {{ 'x' | int }} {{ 'x' | int(7) }} "
        "{{ ' 12 ' | int }} {{ '1_000' | int }} {{ none | int }} {{ true | int }} {{ '0x1A' | int(0, 16) }} "
        "{{ '3.5' | float }} {{ 'x' | float }} {{ '1e3' | float }} {{ 4 | float }} {{ ' -2.5 ' | float }} "
        "{{ 'inf' | float }} {{ 42 | string }} {{ [1] | string }} {{ none | string }}")
snippet("filter_abs_round", "{{ -3 | abs }} {{ -2.5 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} "
        "{{ 1 | round }} {{ 2.7 | round(0, 'floor') }} {{ 2.1 | round(0, 'ceil') }} {{ 1.234 | round(1, 'ceil') }} "
        "{{ -1.5 | round }} {{ 1234.5 | round(-2) }}")
snippet("filter_list_reverse", "{{ 'abc' | list }} {{ {'a': 1, 'b': 2} | list }} {{ (1, 2) | list }} "
        "{{ [1, 2, 3] | reverse | list }} {{ 'héllo' | reverse }}")
snippet("filter_replace", "{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 'abc' | replace('', '-') }} "
        "{{ 5 | replace('5', 'five') }}")
snippet("filter_items_dictsort", "{{ d | items | list }} {{ d | dictsort }} {{ d | dictsort(reverse=true) }} "
        "{{ d | dictsort(by='value') }} {{ d | dictsort(true) }} {% for k, v in d | items %}{{ k }}{{ v }}{% endfor %}",
        d={"b": 2, "A": 3, "a": 1})
snippet("filter_sort_unique", "{{ ['b', 'A', 'a', 'C'] | sort }} {{ ['b', 'A', 'a'] | sort(case_sensitive=true) }} "
        "{{ [3, 1, 2] | sort(reverse=true) }} {{ users | sort(attribute='age') | map(attribute='name') | list }} "
        "{{ users | sort(attribute='age,name') | map(attribute='name') | list }} "
        "{{ ['b', 'A', 'a', 'B', 'c'] | unique | list }} {{ ['b', 'A', 'a'] | unique(case_sensitive=true) | list }} "
        "{{ users | unique(attribute='age') | map(attribute='name') | list }}",
        users=[{"name": "x", "age": 30}, {"name": "b", "age": 20}, {"name": "a", "age": 30}])
snippet("filter_min_max_sum", "{{ [3, 1, 2] | max }} {{ [3, 1, 2] | min }} {{ ['b', 'A', 'c'] | min }} "
        "{{ ['b', 'A', 'c'] | max(case_sensitive=true) }} [{{ [] | max }}] {{ [1, 2, 3] | sum }} {{ [1.5, 2] | sum }} "
        "{{ users | sum(attribute='age') }} {{ [1] | sum(start=10) }} {{ users | max(attribute='age') }}",
        users=[{"name": "x", "age": 30}, {"name": "b", "age": 20}])
snippet("filter_tojson", "{{ d | tojson }}\n{{ d | tojson(indent=2) }}\n{{ d | tojson(separators=(',', ':')) }}\n"
        "{{ d | tojson(sort_keys=true) }}\n{{ d | tojson(ensure_ascii=true) }}\n{{ [] | tojson(indent=2) }} "
        "{{ {} | tojson(indent=2) }} {{ 'x' | tojson }} {{ none | tojson }} {{ 1.0 | tojson }} {{ (1, 2) | tojson }}\n"
        "{{ d | tojson(indent='\\t') }}",
        d={"z": [1, 2.5, None, True, False], "a": {"é": "ü\n\"<>&'\u00a0😀\u007f\x01"}, "e": [], "o": {}})
snippet("filter_escape_safe", "{{ '<a href=\"x\">&\\'</a>' | e }} {{ '<b>' | escape }} {{ '<b>' | safe }} {{ 5 | e }}")
snippet("filter_indent", "[{{ 'a\\nb\\n\\nc' | indent }}] [{{ 'a\\nb' | indent(2, true) }}] [{{ 'a\\n\\nb' | indent(2, blank=true) }}] "
        "[{{ 'a\\nb' | indent('> ') }}] [{{ '' | indent(first=true) }}]")
snippet("filter_unknown_in_if", "{% if false %}{{ x | nosuchfilter }}{% endif %}ok")
snippet("filter_unknown_in_if_reached", "{% if true %}{{ x | nosuchfilter }}{% endif %}ok")
snippet("filter_unknown_in_condexpr", "{{ (x | nosuchfilter) if false else 'fine' }}")

# tests
snippet("tests_types", "{{ x is defined }} {{ nothing is defined }} {{ nothing is undefined }} {{ none is none }} "
        "{{ 'a' is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is integer }} "
        "{{ true is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ 1 is boolean }} {{ true is true }} "
        "{{ 1 is true }} {{ false is false }} {{ d is mapping }} {{ l is mapping }} {{ l is iterable }} "
        "{{ 'a' is iterable }} {{ 1 is iterable }} {{ d is iterable }} {{ l is sequence }} {{ 'a' is sequence }} "
        "{{ d is sequence }} {{ 1 is sequence }} {{ nothing is iterable }} {{ range is callable }} {{ 1 is callable }}",
        x=1, d={"a": 1}, l=[1])
snippet("tests_values", "{{ 2 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} "
        "{{ 'a' is equalto 'a' }} {{ 1 is eq 1.0 }} {{ 1 is ne 2 }} {{ 3 is gt 2 }} {{ 3 is ge 3 }} {{ 1 is lt 2 }} "
        "{{ 2 is le 1 }} {{ 'abc' is lower }} {{ 'Abc' is lower }} {{ 'ABC1' is upper }} {{ '123' is upper }} "
        "{{ 2 is in [1, 2] }} {{ 'x' is in 'abc' }} {{ none is sameas none }} {{ true is sameas true }} "
        "{{ 1 is not none }} {{ x is not defined }} {{ 1 is sameas 1 }}")
snippet("tests_in_conditions", "{% if m.content is string and m.content is not none %}s{% endif %}"
        "{% if m.tool_calls is defined or m.role is defined %}d{% endif %}{% if not m.x is defined %}n{% endif %}",
        m={"role": "user", "content": "c"})

# str, dict and list methods
snippet("str_methods", "{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a,b,c'.split(',', 1) }} "
        "{{ 'a,b,c'.rsplit(',', 1) }} {{ ' a b '.rsplit(none, 1) }} {{ ''.split(',') }} {{ ''.split() }} "
        "{{ 'xxhixx'.strip('x') }} {{ '  hi  '.lstrip() }}| {{ '  hi  '.rstrip() }}| {{ 'héllo'.startswith('hé') }} "
        "{{ 'file.py'.endswith(('.js', '.py')) }} {{ 'abcabc'.find('c') }} {{ 'héllo'.find('l') }} "
        "{{ 'abcabc'.rfind('b') }} {{ 'abc'.find('z') }} {{ 'aaa'.count('a') }} {{ 'abab'.count('ab') }} "
        "{{ 'Hello World'.replace('o', '0') }} {{ 'hello'.upper() }} {{ 'HELLO'.lower() }} "
        "{{ \"they're bill's friends\".title() }} {{ 'hELLO wORLD'.capitalize() }} {{ '-'.join(['a', 'b']) }} "
        "{{ 'a\\nb\\r\\nc'.splitlines() }} {{ '42'.isdigit() }} {{ 'ab'.isalpha() }} {{ ' \\t'.isspace() }} "
        "{{ 'prefix-x'.removeprefix('prefix-') }} {{ 'x.txt'.removesuffix('.txt') }} {{ 'abc'.startswith('b', 1) }} "
        "{{ 'abc'.index('c') }} {{ ''.isascii() }} {{ 'é'.isascii() }}")
snippet("str_think_split", "{% set c = content.split('</think>')[-1].lstrip('\\n') %}"
        "{% set r = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}[{{ r }}][{{ c }}]",
        content="<think>\nreasoning\n</think>\n\nanswer")
snippet("dict_methods", "{{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }} {{ d.get('a') }} "
        "{{ d.get('z', 0) }} {{ d.copy() }} {{ 'a' in d.keys() }}", d={"a": 1, "b": 2})
snippet("list_methods", "{{ l.count(1) }} {{ l.index(2) }} {{ l.copy() }}", l=[1, 2, 1])
snippet("list_append_refused", "{% set l = [] %}{{ l.append(1) }}")
snippet("dict_update_refused", "{% set d = {} %}{{ d.update({'a': 1}) }}")
snippet("unsafe_attribute_prints_empty", "[{{ l.append }}]", l=[])

# undefined
snippet("undefined_print", "[{{ nothing }}] [{{ d.missing }}] [{{ l[5] }}] {{ nothing is defined }}",
        d={}, l=[])
snippet("undefined_attribute_of_undefined", "{{ nothing.attr }}")
snippet("undefined_attribute_chain", "{{ d.a.b }}", d={})
snippet("undefined_element_chain", "{{ l[0].x }}", l=[])
snippet("undefined_arithmetic", "{{ nothing + 1 }}")
snippet("undefined_compare", "{{ nothing == nothing }} {{ nothing == none }} {{ 'a' in nothing }}")
snippet("undefined_call", "{{ nothing() }}")
snippet("undefined_condexpr_attribute", "{{ (1 if false).x }}")
snippet("undefined_iterate_and_length", "{% for x in nothing %}{% endfor %}{{ nothing | length }}"
        "{{ nothing | list }}")

# errors while rendering
snippet("error_raise_exception", "{{ raise_exception('Conversation roles must alternate') }}")
snippet("error_raise_exception_in_loop", "{% for m in messages %}{% if m.role == 'assistant' %}"
        "{{ raise_exception('no assistant ' ~ loop.index) }}{% endif %}{% endfor %}", messages=MESSAGES)
snippet("error_type_concat", "{{ 'a' + 1 }}")
snippet("error_type_add", "{{ 1 + 'a' }}")
snippet("error_compare_types", "{{ 'a' < 1 }}")
snippet("error_in_string", "{{ 1 in 'abc' }}")
snippet("error_division_by_zero", "\n\n{{ 1 / 0 }}")
snippet("error_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}")
snippet("error_range_too_big", "{{ range(1000000) | length }}")

# strftime_now (fixed to 2026-01-15 12:00:00, a Thursday)
snippet("strftime_now", "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%A %B %-d %j %H:%M:%S %y %m %a %I %p %%') }}")
snippet("strftime_now_defined", "{{ strftime_now is defined }}")

# syntax errors (jinja2 raises them when the template is compiled). The statements jinja2 has and the C++ side
# refuses (extends, include, import, block, filter, with, call, recursive loops) and the jinja2 filters it lacks
# are tested in tests/io/test_jinja.cpp alone: jinja2 renders them.
snippet("syntax_unclosed_variable", "line1\n{{ x ")
snippet("syntax_unclosed_block", "a\n{% if x ")
snippet("syntax_unclosed_if", "a\n{% if x %}\nb\n")
snippet("syntax_unclosed_for", "{% for x in y %}\n{% if x %}{% endif %}\n")
snippet("syntax_unknown_statement", "a\n\n{% foo %}")
snippet("syntax_unknown_test", "\n{{ 1 is frobnicated }}")
snippet("syntax_stray_endif", "a\n{% endif %}")
snippet("syntax_endfor_in_if", "{% if x %}\n{% endfor %}")
snippet("syntax_break_outside_loop", "{% break %}")
snippet("syntax_unclosed_comment", "a\n{# never closed")
snippet("syntax_unclosed_string", "{{ 'abc }}")
snippet("syntax_unbalanced", "{{ (1 + 2 }}")
snippet("syntax_empty_output", "{{ }}")
snippet("syntax_bad_assign", "{% set 1 = 2 %}")

# the real templates' tool-calling branches, with tool schemas (key order as given)
TOOL_CONTEXT = {"messages": TOOL_MESSAGES, "tools": [WEATHER_TOOL], "documents": None, "add_generation_prompt": True}
S.append(("tools_llama3", {"file": "llama3.jinja"}, dict(TOOL_CONTEXT, **TEMPLATES["llama3"])))
S.append(("tools_llama3_system_prompt", {"file": "llama3.jinja"},
          dict(TOOL_CONTEXT, tools_in_user_message=False, **TEMPLATES["llama3"])))
S.append(("tools_qwen3", {"file": "qwen3.jinja"}, dict(TOOL_CONTEXT, **TEMPLATES["qwen3"])))
S.append(("qwen3_no_thinking", {"file": "qwen3.jinja"},
          {"messages": MESSAGES[:2], "tools": None, "documents": None, "add_generation_prompt": True,
           "enable_thinking": False, **TEMPLATES["qwen3"]}))
S.append(("gemma3_content_parts", {"file": "gemma3.jinja"},
          {"messages": [{"role": "system", "content": [{"type": "text", "text": "Sys parts."}]},
                        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " Describe. "}]}],
           "tools": None, "documents": None, "add_generation_prompt": True, **TEMPLATES["gemma3"]}))
S.append(("llama3_date_string", {"file": "llama3.jinja"},
          {"messages": MESSAGES[1:2], "date_string": "01 Jan 2025", "tools": None, "documents": None,
           "add_generation_prompt": False, **TEMPLATES["llama3"]}))


# ----------------------------------------------------------------------------- output
def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def main():
    env = environment()
    sources = {}
    for name in TEMPLATES:
        with open(os.path.join(OUT, name + ".jinja"), encoding="utf-8", newline="") as f:
            sources[name] = f.read()

    with open(os.path.join(OUT, "conversations.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for name, messages in CONVERSATIONS:
            f.write(dumps({"name": name, "messages": messages}) + "\n")

    counts = {"text": 0, "raise_exception": 0, "error": 0}
    with open(os.path.join(OUT, "expected.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for template in TEMPLATES:
            for name, messages in CONVERSATIONS:
                for add_generation_prompt in (False, True):
                    result = render(env, sources[template], chat_context(template, messages, add_generation_prompt))
                    counts[next(k for k in counts if k in result)] += 1
                    record = {"template": template, "conversation": name, "add_generation_prompt": add_generation_prompt,
                              "special_tokens": TEMPLATES[template]}
                    record.update(result)
                    f.write(dumps(record) + "\n")

    snippet_counts = {"text": 0, "raise_exception": 0, "error": 0}
    with open(os.path.join(OUT, "snippets.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        names = set()
        for name, source, context in S:
            assert name not in names, name
            names.add(name)
            record = {"name": name}
            if isinstance(source, dict):
                record["template_file"] = source["file"]
                text = sources[source["file"][: -len(".jinja")]]
            else:
                record["template"] = source
                text = source
            record["context"] = context
            result = render(env, text, context)
            snippet_counts[next(k for k in snippet_counts if k in result)] += 1
            record.update(result)
            f.write(dumps(record) + "\n")

    # Self-checks: the fixtures must exercise what they claim to.
    with open(os.path.join(OUT, "expected.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    assert any(r.get("generation_spans") for r in records), "no generation spans recorded"
    assert any("raise_exception" in r for r in records), "no raise_exception case"
    assert not any("error" in r for r in records), [r for r in records if "error" in r]
    llama = next(r for r in records if r["template"] == "llama3" and "text" in r)
    assert "Today Date: 15 Jan 2026" in llama["text"], llama["text"]
    print(f"jinja2 {jinja2.__version__}: expected.jsonl {counts}, snippets.jsonl {snippet_counts}")


if __name__ == "__main__":
    sys.exit(main())
