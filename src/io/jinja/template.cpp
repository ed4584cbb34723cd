#include "io/jinja/template.h"

#include "core/error.h"
#include "io/jinja/evaluator.h"
#include "io/jinja/parser.h"

namespace peft::jinja {
namespace {

template <typename Json>
Value context_value(const Json& context, const std::string& name) {
  if (!context.is_object()) throw Error(name + ": the render context must be a JSON object");
  try {
    return from_json(context);
  } catch (const RenderError& e) {
    throw Error(name + ": " + e.what());
  }
}

}  // namespace

Template::Template(const std::string& source, std::string name) : name_(std::move(name)) {
  body_ = std::make_unique<Body>(parse(source, name_, &has_generation_blocks_));
}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

Rendered Template::render(const nlohmann::json& context, const RenderOptions& options) const {
  Value variables = context_value(context, name_);
  return Interpreter(name_, options).render(*body_, variables);
}

Rendered Template::render_ordered(const nlohmann::ordered_json& context, const RenderOptions& options) const {
  Value variables = context_value(context, name_);
  return Interpreter(name_, options).render(*body_, variables);
}

}  // namespace peft::jinja
