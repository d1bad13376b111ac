#include "actors/runtime/json_status.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>

namespace ferry {

namespace json = boost::json;

json::value status_json(const caf::config_value& x) {
  const auto& data = x.get_data();
  if (auto v = caf::get_if<caf::config_value::integer>(&data))
    return *v;
  if (auto v = caf::get_if<caf::config_value::boolean>(&data))
    return *v;
  if (auto v = caf::get_if<caf::config_value::real>(&data))
    return *v;
  if (auto v = caf::get_if<caf::config_value::string>(&data))
    return json::string{*v};
  if (auto v = caf::get_if<caf::config_value::list>(&data)) {
    json::array result;
    for (const auto& item : *v)
      result.push_back(status_json(item));
    return result;
  }
  if (auto v = caf::get_if<caf::config_value::dictionary>(&data))
    return status_json(*v);
  if (auto v = caf::get_if<caf::config_value::atom>(&data))
    return json::string{caf::to_string(*v)};
  // Timespans and URIs: CAF's text form ("1500ms", "https://...").
  return json::string{caf::to_string(x)};
}

json::value status_json(const status_map& xs) {
  json::object result;
  for (const auto& [key, value] : xs)
    result[key] = status_json(value);
  return result;
}

} // namespace ferry
