// jinja2's built-in filters and tests that chat templates use, with Hugging Face's tojson (json.dumps with
// ensure_ascii=False, optional indent, separators and sort_keys). Any other name is an unknown filter or test.
#pragma once

#include <string>

#include "io/jinja/value.h"

namespace peft::jinja {

bool has_filter(const std::string& name);
bool has_test(const std::string& name);
Value apply_filter(Interpreter& interpreter, const std::string& name, const Value& subject, const Args& args);
bool apply_test(Interpreter& interpreter, const std::string& name, const Value& subject, const Args& args);

}  // namespace peft::jinja
