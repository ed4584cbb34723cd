// Python's attribute and item lookup as jinja2's ImmutableSandboxedEnvironment does it (the methods of str, dict
// and list, mutating ones refused), and the globals chat templates call: jinja2's range, dict and namespace, and
// Hugging Face's raise_exception and strftime_now.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/jinja/value.h"

namespace peft::jinja {

// `obj.name`: jinja2's environment.getattr (the attribute, e.g. a bound str method, else the item); Undefined when
// neither exists. Raises when obj is Undefined.
Value get_attribute(const Value& object, const std::string& name);
// `obj[key]`: environment.getitem (the item, else for a string key the attribute); Undefined when missing.
Value get_item(const Value& object, const Value& key);
// `obj[start:stop:step]` on a str, list or tuple; absent bounds are None.
Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step);

// range, dict, namespace, raise_exception, strftime_now.
void add_globals(std::unordered_map<std::string, Value>& variables);

// Binds args to parameter names the way Python does (positional in order, then by keyword); parameters not given
// are Undefined. Throws RenderError naming `function` for too many, unknown, repeated or missing ones.
std::vector<Value> bind_args(const std::string& function, const Args& args, const std::vector<std::string>& params,
                             size_t required);

// Reading bound arguments: whether one was given, as a bool (with a default), as an int, as an optional str or a str;
// `what` names the argument in the TypeError.
bool given(const Value& v);
bool flag(const Value& v, bool fallback);
int64_t integer(const Value& v, const std::string& what);
std::optional<std::string> optional_string(const Value& v, const std::string& what);
const std::string& string_arg(const Value& v, const std::string& what);

}  // namespace peft::jinja
