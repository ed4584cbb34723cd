// The Jinja interpreter against Python's jinja2 under Hugging Face's settings: the real chat templates over the
// fixture conversations, and small snippets, byte for byte (tests/fixtures/chat_templates/, made by
// scripts/reference/make_chat_fixtures.py); then what the interpreter does on its own: refusals, limits, API.
#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/jinja/template.h"
#include "test_util.h"

namespace peft::jinja {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

std::string fixture_path(const std::string& name) { return test::fixture("chat_templates/" + name); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

template <typename Json>
std::vector<Json> read_jsonl(const std::string& path) {
  std::vector<Json> records;
  std::istringstream lines(read_file(path));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) records.push_back(Json::parse(line));
  }
  return records;
}

RenderOptions fixed_clock() {
  RenderOptions options;
  options.strftime_now_date = "2026-01-15 12:00:00";  // as the reference script's strftime_now
  return options;
}

std::string render(const std::string& source, const ordered_json& context = ordered_json::object()) {
  return Template(source, "t").render_ordered(context, fixed_clock()).text;
}

// The message of the peft::Error that parsing or rendering source raises, or "(no error)".
std::string error_of(const std::string& source, const ordered_json& context = ordered_json::object()) {
  return test::error_of([&] { Template(source, "t").render_ordered(context, fixed_clock()); });
}

std::string line(int n) { return "t line " + std::to_string(n) + ": "; }

// ---------------------------------------------------------------------------- against jinja2

TEST(JinjaTemplates, RealChatTemplatesRenderAsTransformers) {
  std::map<std::string, json> conversations;
  for (const json& c : read_jsonl<json>(fixture_path("conversations.jsonl"))) conversations[c["name"]] = c["messages"];
  std::map<std::string, Template> templates;
  size_t texts = 0, raises = 0, with_spans = 0;
  for (const json& expected : read_jsonl<json>(fixture_path("expected.jsonl"))) {
    std::string name = expected["template"];
    std::string case_name = name + " / " + expected["conversation"].get<std::string>() +
                            (expected["add_generation_prompt"].get<bool>() ? " / generation prompt" : "");
    SCOPED_TRACE(case_name);
    if (!templates.count(name)) templates.emplace(name, Template(read_file(fixture_path(name + ".jinja"))));
    const Template& tmpl = templates.at(name);
    EXPECT_EQ(tmpl.has_generation_blocks(), name == "generation");
    // As transformers passes them: messages, tools=None, documents=None, add_generation_prompt, special tokens.
    json context = {{"messages", conversations.at(expected["conversation"])},
                    {"tools", nullptr},
                    {"documents", nullptr},
                    {"add_generation_prompt", expected["add_generation_prompt"]}};
    for (const auto& [key, value] : expected["special_tokens"].items()) context[key] = value;
    if (expected.contains("raise_exception")) {
      ++raises;
      EXPECT_EQ(test::error_of([&] { tmpl.render(context, fixed_clock()); }),
                "chat template: raise_exception: " + expected["raise_exception"].get<std::string>());
      continue;
    }
    ++texts;
    Rendered rendered;
    ASSERT_NO_THROW(rendered = tmpl.render(context, fixed_clock()));
    EXPECT_EQ(rendered.text, expected["text"].get<std::string>());
    std::vector<std::pair<size_t, size_t>> spans;
    for (const json& span : expected["generation_spans"]) spans.emplace_back(span[0], span[1]);
    EXPECT_EQ(rendered.generation_spans, spans);
    if (!spans.empty()) ++with_spans;
  }
  EXPECT_EQ(templates.size(), 5u);
  EXPECT_GE(texts, 90u);
  EXPECT_GE(raises, 10u);
  EXPECT_GE(with_spans, 10u);
}

// Errors whose jinja2 line is not a template line (jinja2 reports 'break' outside a loop from generated Python).
const std::set<std::string> kLineNotComparable = {"syntax_break_outside_loop"};

TEST(JinjaTemplates, SnippetsMatchJinja2) {
  size_t count = 0;
  for (const ordered_json& snippet : read_jsonl<ordered_json>(fixture_path("snippets.jsonl"))) {
    std::string name = snippet["name"];
    SCOPED_TRACE("snippet " + name);
    ++count;
    std::string source = snippet.contains("template_file") ? read_file(fixture_path(snippet["template_file"]))
                                                           : snippet["template"].get<std::string>();
    const ordered_json& context = snippet["context"];
    if (snippet.contains("text")) {
      std::string text;
      try {
        text = render(source, context);
      } catch (const Error& e) {
        ADD_FAILURE() << "unexpected error: " << e.what();
        continue;
      }
      EXPECT_EQ(text, snippet["text"].get<std::string>());
    } else if (snippet.contains("raise_exception")) {
      EXPECT_EQ(error_of(source, context), "t: raise_exception: " + snippet["raise_exception"].get<std::string>());
    } else {
      const ordered_json& error = snippet["error"];
      std::string message = error_of(source, context);
      EXPECT_NE(message, "(no error)") << "jinja2 raised " << error["type"] << ": " << error["message"];
      if (!error["line"].is_null() && !kLineNotComparable.count(name)) {
        EXPECT_EQ(message.rfind(line(error["line"]), 0), 0u)
            << message << "\njinja2: line " << error["line"] << ": " << error["message"];
      }
    }
  }
  EXPECT_GE(count, 140u);
}

// ---------------------------------------------------------------------------- refusals, one line each

TEST(JinjaTemplates, RefusesStatementsChatTemplatesDoNotUse) {
  EXPECT_EQ(error_of("a\n{% filter upper %}x{% endfilter %}"), line(2) + "unsupported statement 'filter'");
  EXPECT_EQ(error_of("{% extends 'base.html' %}"), line(1) + "unsupported statement 'extends'");
  EXPECT_EQ(error_of("\n\n{% include 'x' %}"), line(3) + "unsupported statement 'include'");
  EXPECT_EQ(error_of("{% import 'x' as y %}"), line(1) + "unsupported statement 'import'");
  EXPECT_EQ(error_of("{% from 'x' import y %}"), line(1) + "unsupported statement 'from'");
  EXPECT_EQ(error_of("{% block b %}{% endblock %}"), line(1) + "unsupported statement 'block'");
  EXPECT_EQ(error_of("{% with a = 1 %}{% endwith %}"), line(1) + "unsupported statement 'with'");
  EXPECT_EQ(error_of("{% call m() %}{% endcall %}"), line(1) + "unsupported statement 'call'");
  EXPECT_EQ(error_of("{% for x in y recursive %}{% endfor %}"), line(1) + "recursive for loops are not supported");
  EXPECT_EQ(error_of("x\n{% frobnicate %}"), line(2) + "unknown statement 'frobnicate'");
  EXPECT_EQ(error_of("{% macro m() %}{% generation %}x{% endgeneration %}{% endmacro %}"),
            line(1) + "{% generation %} inside a macro, a set block or another generation block is not supported");
  EXPECT_EQ(error_of("{{ f(*args) }}"), line(1) + "*args and **kwargs in calls are not supported");
}

TEST(JinjaTemplates, UnknownFiltersAndTestsNameTheLine) {
  EXPECT_EQ(error_of("a\nb\n{{ text | wordwrap(10) }}"), line(3) + "unknown filter 'wordwrap'");
  EXPECT_EQ(error_of("{% for m in messages %}\n{{ m | nosuch }}{% endfor %}"), line(2) + "unknown filter 'nosuch'");
  EXPECT_EQ(error_of("\n{{ 1 is prime }}"), line(2) + "unknown test 'prime'");
  // Inside an if, jinja2 defers the error to when the filter is reached; so does this interpreter.
  EXPECT_EQ(render("{% if false %}{{ x | nosuch }}{% endif %}ok"), "ok");
  EXPECT_EQ(error_of("\n{% if true %}{{ x | nosuch }}{% endif %}"), line(2) + "unknown filter 'nosuch'");
  EXPECT_EQ(error_of("{{ ['a'] | map('nosuch') | list }}"), line(1) + "unknown filter 'nosuch'");
}

TEST(JinjaTemplates, SyntaxErrorsAreOneLineWithTheLine) {
  EXPECT_EQ(error_of("a\n{{ x "), line(2) + "unclosed tag: '{{' without '}}'");
  EXPECT_EQ(error_of("a\n{% if x "), line(2) + "unclosed tag: '{%' without '%}'");
  EXPECT_EQ(error_of("a\n{% if x %}\nb"),
            line(3) + "unexpected end of template: 'if' from line 2 is never closed (expected 'endif')");
  EXPECT_EQ(error_of("a\n{# open"), line(2) + "unclosed comment ('{#' without '#}')");
  EXPECT_EQ(error_of("{{ 'abc }}"), line(1) + "unterminated string");
  EXPECT_EQ(error_of("{% if x %}\n{% endfor %}"),
            line(2) + "unexpected 'endfor' (the innermost open block is 'if' from line 1, expecting 'endif')");
  EXPECT_EQ(error_of("{% break %}"), line(1) + "'break' outside of a for loop");
  EXPECT_EQ(error_of("{{ }}"), line(1) + "expected an expression, got end of print statement");
  EXPECT_EQ(error_of("{{ 99999999999999999999 }}"), line(1) + "integer literal too large (past 64 bits)");
  EXPECT_EQ(error_of("{{ 'a' '\\N{DASH}' }}"), line(1) + "named Unicode escapes (\\N{...}) are not supported");
  for (const std::string& message : {error_of("{{ (1 }}"), error_of("{% set 1 = 2 %}"), error_of("{{ a b }}")}) {
    EXPECT_EQ(message.rfind(line(1), 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(JinjaTemplates, RuntimeErrorsNameTheLine) {
  EXPECT_EQ(error_of("ok\n{{ messages[0].role }}", {{"messages", ordered_json::array()}}),
            line(2) + "list object has no element 0");
  EXPECT_EQ(error_of("\n\n{{ 'a' + 1 }}"), line(3) + "can only concatenate str (not \"int\") to str");
  EXPECT_EQ(error_of("{% set l = [] %}\n{{ l.append(1) }}"),
            line(2) + "access to attribute 'append' of 'list' object is unsafe.");
  EXPECT_EQ(error_of("{{ 'x'.format() }}"), line(1) + "str.format() is not supported by this template interpreter");
  EXPECT_EQ(error_of("{{ '%s' % 1 }}"), line(1) + "string formatting with '%' is not supported");
  EXPECT_EQ(error_of("{{ 2 ** 70 }}"), line(1) + "integer overflow: results past 64 bits are not supported");
  EXPECT_EQ(error_of("{{ raise_exception('No ' ~ 'way') }}"), "t: raise_exception: No way");
  EXPECT_EQ(test::error_of([] { Template("x").render(json::array()); }),
            "chat template: the render context must be a JSON object");
}

// ---------------------------------------------------------------------------- limits: never crash or hang

TEST(JinjaTemplates, DeepNestingIsRefused) {
  std::string parens = std::string(500, '(') + "1" + std::string(500, ')');
  EXPECT_NE(error_of("{{ " + parens + " }}").find("nested deeper than 200 levels"), std::string::npos);
  std::string chain = "1";
  for (int i = 0; i < 1000; ++i) chain += " + 1";
  EXPECT_EQ(error_of("{{ " + chain + " }}"), line(1) + "expression nested deeper than 200 levels");
  std::string ifs;
  for (int i = 0; i < 300; ++i) ifs += "{% if true %}";
  EXPECT_NE(error_of(ifs).find("template nested deeper than 200 levels"), std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(300, '[') + std::string(300, ']') + " }}").find("nested deeper"),
            std::string::npos);
  std::string long_text(1000000, 'x');  // long text is no nesting
  EXPECT_EQ(render(long_text), long_text);
}

TEST(JinjaTemplates, EndlessRecursionAndLoopsStop) {
  EXPECT_EQ(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}"),
            line(1) + "macro calls nested deeper than 200 levels (endless recursion?)");
  // A legitimate recursion depth works.
  EXPECT_EQ(render("{% macro down(n) %}{% if n > 0 %}{{ down(n - 1) }}{% else %}done{% endif %}{% endmacro %}"
                   "{{ down(150) }}"),
            "done");
  std::string nested_loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
  EXPECT_NE(error_of(nested_loops).find("too much work"), std::string::npos);
  EXPECT_NE(error_of("{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}")
                .find("output larger than 64 MiB"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 100000000 }}").find("string longer than 64 MiB"), std::string::npos);
  EXPECT_NE(error_of("{{ [1] * 10000000 }}").find("list longer than"), std::string::npos);
  EXPECT_EQ(error_of("{{ range(1000000) }}"),
            line(1) + "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
}

TEST(JinjaTemplates, HostileInputData) {
  json deep = json::array();
  for (int i = 0; i < 1000; ++i) deep = json::array({deep});
  EXPECT_EQ(test::error_of([&] {
              Template("{{ x }}").render({{"x", deep}});
            }),
            "chat template: input nested deeper than 200 levels");
  // Bytes that are not UTF-8 pass through unchanged and count as one character each (Python's surrogateescape).
  json bad = {{"s", std::string("a\xff\xfe")}};
  EXPECT_EQ(Template("{{ s }}|{{ s | length }}|{{ s[1] == s[-2] }}|{{ s[::-1] }}").render(bad).text,
            "a\xff\xfe|3|True|\xfe\xff"
            "a");
}

TEST(JinjaTemplates, ReferenceCyclesAreFreed) {
  // LeakSanitizer (scripts/sanitize.sh) checks that these leave nothing behind.
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.self = ns %}{% set ns.n = 1 %}{{ ns.self.self.n }}"), "1");
  EXPECT_EQ(render("{% macro m() %}x{% endmacro %}{% set ns = namespace(m=m) %}{{ ns.m() }}"), "x");
  EXPECT_EQ(render("{% set ns = namespace(a=none) %}{% for i in range(5000) %}{% set ns.a = namespace(next=ns.a) %}"
                   "{% endfor %}done"),
            "done");
}

// ---------------------------------------------------------------------------- behaviour worth pinning down

TEST(JinjaTemplates, WhitespaceControl) {
  // trim_blocks drops the newline after a block tag, lstrip_blocks the indentation before it; {{ }} is untouched.
  EXPECT_EQ(render("{% for x in [1, 2] %}\n  {{ x }}\n{% endfor %}\n"), "  1\n  2\n");
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(render("{% if true +%}\nx{% endif %}"), "\nx");
  EXPECT_EQ(render("a  {{- ' b ' -}}  c"), "a b c");
  EXPECT_EQ(render("a\n  {#- note -#}\n  b"), "ab");
}

TEST(JinjaTemplates, GenerationSpansAreBytes) {
  Template tmpl(
      "{{ bos }}{% for m in messages %}<{{ m }}>{% generation %}{{ m | upper }}{% endgeneration %}|"
      "{% endfor %}");
  EXPECT_TRUE(tmpl.has_generation_blocks());
  Rendered rendered = tmpl.render({{"bos", "é"}, {"messages", {"ß", "x"}}});
  EXPECT_EQ(rendered.text, "é<ß>SS|<x>X|");
  ASSERT_EQ(rendered.generation_spans.size(), 2u);
  EXPECT_EQ(rendered.generation_spans[0], std::make_pair(size_t{6}, size_t{8}));
  EXPECT_EQ(rendered.text.substr(rendered.generation_spans[1].first,
                                 rendered.generation_spans[1].second - rendered.generation_spans[1].first),
            "X");
  EXPECT_FALSE(Template("{{ x }}").has_generation_blocks());
  // transformers drops a generation block that comes before any output (its tracker counts as inactive while
  // nothing has been rendered); this interpreter records every block.
  Rendered first =
      Template("{% generation %}abc{% endgeneration %}x{% generation %}d{% endgeneration %}").render(json::object());
  EXPECT_EQ(first.generation_spans, (std::vector<std::pair<size_t, size_t>>{{0, 3}, {4, 5}}));
}

TEST(JinjaTemplates, ObjectKeyOrder) {
  // nlohmann::json sorts object keys; ordered_json keeps the input's order, as Python's dict does.
  EXPECT_EQ(Template("{{ d | tojson }}").render({{"d", {{"b", 1}, {"a", 2}}}}).text, "{\"a\": 2, \"b\": 1}");
  ordered_json ordered = ordered_json::object();
  ordered["d"] = ordered_json::object();
  ordered["d"]["b"] = 1;
  ordered["d"]["a"] = 2;
  EXPECT_EQ(Template("{{ d | tojson }}").render_ordered(ordered).text, "{\"b\": 1, \"a\": 2}");
}

TEST(JinjaTemplates, StrftimeNow) {
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y, %A') }}"), "15 Jan 2026, Thursday");
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::string year = Template("{{ strftime_now('%Y') }}").render(json::object()).text;
  EXPECT_TRUE(year == std::to_string(local.tm_year + 1900) || year == std::to_string(local.tm_year + 1901));
  RenderOptions bad;
  bad.strftime_now_date = "yesterday";
  EXPECT_EQ(test::error_of([&] { Template("{{ strftime_now('%Y') }}").render(json::object(), bad); }),
            "chat template line 1: strftime_now_date must be \"YYYY-MM-DD HH:MM:SS\", got \"yesterday\"");
  EXPECT_EQ(error_of("{{ strftime_now('%c') }}"), line(1) + "strftime_now: unsupported directive %c");
}

TEST(JinjaTemplates, TemplateIsReusableAndMovable) {
  Template first("{{ greeting }}, {{ name | default('you') }}!", "greeter");
  Template moved = std::move(first);
  EXPECT_EQ(moved.name(), "greeter");
  EXPECT_EQ(moved.render({{"greeting", "Hi"}}).text, "Hi, you!");
  EXPECT_EQ(moved.render({{"greeting", "Hello"}, {"name", "Ann"}}).text, "Hello, Ann!");
  EXPECT_EQ(test::error_of([&] { Template("{{ x.y }}", "greeter").render(json::object()); }),
            "greeter line 1: 'x' is undefined");
}

}  // namespace
}  // namespace peft::jinja
