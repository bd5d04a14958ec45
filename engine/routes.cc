#include "engine/routes.h"

#include <algorithm>

#include "engine/compiler.h"

namespace warden::engine {

namespace {

constexpr std::string_view kMethods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// The segments of a request path (without query or fragment), decoded; false when the path
// is not one a route may match (not absolute, an empty/dot segment, too many segments).
bool SplitPath(std::string_view path, std::vector<std::string>* segments) {
  path = path.substr(0, path.find_first_of("?#"));
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);  // one trailing slash
  if (path.empty()) return true;                                  // "/"
  while (true) {
    const size_t slash = path.find('/');
    std::string seg = PercentDecode(path.substr(0, slash));
    if (seg.empty() || seg == "." || seg == "..") return false;
    if (segments->size() == kMaxRouteSegments) return false;
    segments->push_back(std::move(seg));
    if (slash == std::string_view::npos) return true;
    path.remove_prefix(slash + 1);
  }
}

// "{name}" -> name; "" when `text` is not a whole-segment parameter.
std::string_view ParamName(std::string_view text) {
  if (text.size() < 3 || text.front() != '{' || text.back() != '}') return {};
  return text.substr(1, text.size() - 2);
}

bool ValidParamName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

}  // namespace

struct RouteTable::Node {
  std::map<std::string, std::unique_ptr<Node>, std::less<>> literals;
  std::unique_ptr<Node> param;
  std::map<std::string, int, std::less<>> methods;  // method -> index into routes_
};

RouteTable::RouteTable() : root_(std::make_unique<Node>()) {}
RouteTable::~RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;
RouteTable& RouteTable::operator=(RouteTable&&) noexcept = default;

void RouteTable::Add(YamlFile& yf, Pos pos, const std::string& method, const std::string& path, Route route) {
  Node* node = root_.get();
  std::string_view rest = std::string_view(path).substr(1);
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    if (!ParamName(seg).empty()) {
      if (!node->param) node->param = std::make_unique<Node>();
      node = node->param.get();
    } else {
      auto it = node->literals.find(seg);
      if (it == node->literals.end()) it = node->literals.emplace(std::string(seg), std::make_unique<Node>()).first;
      node = it->second.get();
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (auto it = node->methods.find(method); it != node->methods.end()) {
    const Route& other = routes_[static_cast<size_t>(it->second)];
    yf.Error(pos, "duplicate route " + method + " " + path + " (also at " + other.file + ":" +
                      std::to_string(other.pos.line) + ":" + std::to_string(other.pos.column) + ")");
    return;
  }
  route.id += method + " " + path;
  route.file = yf.file();
  route.pos = pos;
  node->methods.emplace(method, static_cast<int>(routes_.size()));
  routes_.push_back(std::move(route));
}

void RouteTable::AddFile(YamlFile& yf, const YAML::Node& root, const CatalogImpl& catalog, bool catalog_ok) {
  auto fields = yf.Fields(root, "Routes", {"apiVersion", "kind", "name", "description", "rest", "routes"});
  if (!fields) return;
  std::string name;
  if (const YAML::Node* n = FindField(*fields, "name")) {
    if (auto s = yf.Scalar(*n, "name")) name = s->value;
  } else {
    yf.Error(root, "Routes needs 'name'");
  }
  const std::string id_prefix = "routes:" + name + "#";

  // Checks model and action against the catalog; false (reported) when either is unknown.
  auto check_target = [&](const ScalarRef& model, const ScalarRef* action) -> bool {
    if (!catalog_ok) return false;
    auto m = catalog.FindModel(model.value);
    if (!m) {
      yf.Error(model.pos, "unknown model '" + model.value + "'");
      return false;
    }
    if (action != nullptr && !catalog.FindAction(*m, action->value)) {
      yf.Error(action->pos, "model '" + model.value + "' has no action '" + action->value + "'");
      return false;
    }
    return true;
  };
  // A path template: absolute, segments literal or "{param}", parameters unique.
  auto check_path = [&](const ScalarRef& path, std::vector<std::string>* params) -> bool {
    const std::string& p = path.value;
    if (p.empty() || p.front() != '/') {
      yf.Error(path.pos, "path must start with '/'");
      return false;
    }
    std::string_view rest = std::string_view(p).substr(1);
    size_t count = 0;
    while (!rest.empty()) {
      const size_t slash = rest.find('/');
      const std::string_view seg = rest.substr(0, slash);
      if (seg.empty() || seg == "." || seg == "..") {
        yf.Error(path.pos, "path has an empty, '.' or '..' segment (a trailing '/' is implied)");
        return false;
      }
      if (++count > kMaxRouteSegments) {
        yf.Error(path.pos, "path has more than " + std::to_string(kMaxRouteSegments) + " segments");
        return false;
      }
      if (seg.find_first_of("{}") != std::string_view::npos) {
        const std::string_view param = ParamName(seg);
        if (!ValidParamName(param)) {
          yf.Error(path.pos, "'" + std::string(seg) + "': a parameter is a whole segment '{name}' (letters, digits, '_')");
          return false;
        }
        if (std::find(params->begin(), params->end(), param) != params->end()) {
          yf.Error(path.pos, "parameter '{" + std::string(param) + "}' appears twice");
          return false;
        }
        params->emplace_back(param);
      }
      if (slash == std::string_view::npos) break;
      rest.remove_prefix(slash + 1);
    }
    return true;
  };

  if (const YAML::Node* rest = FindField(*fields, "rest")) {
    if (!rest->IsSequence()) {
      yf.Error(*rest, "rest must be a list of {model, path}");
    } else {
      for (const YAML::Node& entry : *rest) {
        auto f = yf.Fields(entry, "rest entry", {"model", "path"});
        if (!f) continue;
        const YAML::Node* m = FindField(*f, "model");
        const YAML::Node* p = FindField(*f, "path");
        if (!m || !p) {
          yf.Error(entry, "a rest entry needs model and path");
          continue;
        }
        auto model = yf.Scalar(*m, "model");
        auto path = yf.Scalar(*p, "path");
        if (!model || !path) continue;
        std::vector<std::string> params;
        if (!check_target(*model, nullptr) || !check_path(*path, &params)) continue;
        const ModelId mid = *catalog.FindModel(model->value);
        std::string base = path->value;
        if (base.size() > 1 && base.back() == '/') base.pop_back();
        const std::string item = base + "/{id}";
        const int id_param = static_cast<int>(params.size());
        if (std::find(params.begin(), params.end(), "id") != params.end()) {
          yf.Error(path->pos, "a rest path must not have a parameter named {id} (the item's is)");
          continue;
        }
        struct Shape {
          const char* method;
          const char* action;
          bool item;
          const char* suffix;
        };
        static constexpr Shape kShapes[] = {{"GET", "view", false, ""},      {"GET", "view", true, ""},
                                            {"POST", "create", false, ""},   {"PUT", "update", true, ""},
                                            {"PATCH", "update", true, ""},   {"DELETE", "delete", true, ""},
                                            {"GET", "export", false, "/export"}};
        for (const Shape& shape : kShapes) {
          if (!catalog.FindAction(mid, shape.action)) continue;
          Route route;
          route.model = model->value;
          route.action = shape.action;
          route.id = id_prefix;
          if (shape.item) route.resource_id = Route::Binding{"", id_param, ""};
          const std::string full = shape.item ? item : base + shape.suffix;
          Add(yf, path->pos, shape.method, full, std::move(route));
        }
      }
    }
  }

  if (const YAML::Node* list = FindField(*fields, "routes")) {
    if (!list->IsSequence()) {
      yf.Error(*list, "routes must be a list");
      return;
    }
    for (const YAML::Node& entry : *list) {
      auto f = yf.Fields(entry, "route", {"method", "path", "model", "action", "resource"});
      if (!f) continue;
      const YAML::Node* mn = FindField(*f, "method");
      const YAML::Node* pn = FindField(*f, "path");
      const YAML::Node* model_n = FindField(*f, "model");
      const YAML::Node* action_n = FindField(*f, "action");
      if (!mn || !pn || !model_n || !action_n) {
        yf.Error(entry, "a route needs method, path, model and action");
        continue;
      }
      std::vector<ScalarRef> methods;
      if (mn->IsSequence()) {
        auto list_methods = yf.ScalarList(*mn, "method", /*allow_empty=*/false);
        if (!list_methods) continue;
        methods = *list_methods;
      } else if (auto one = yf.Scalar(*mn, "method")) {
        methods.push_back(*one);
      } else {
        continue;
      }
      bool methods_ok = true;
      for (const ScalarRef& m : methods) {
        if (std::find(std::begin(kMethods), std::end(kMethods), m.value) == std::end(kMethods)) {
          yf.Error(m.pos, "unknown method '" + m.value + "' (GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)");
          methods_ok = false;
        }
      }
      auto path = yf.Scalar(*pn, "path");
      auto model = yf.Scalar(*model_n, "model");
      auto action = yf.Scalar(*action_n, "action");
      if (!path || !model || !action || !methods_ok) continue;
      std::vector<std::string> params;
      const bool path_ok = check_path(*path, &params);
      const bool target_ok = check_target(*model, &*action);
      if (!path_ok || !target_ok) continue;

      Route route;
      route.model = model->value;
      route.action = action->value;
      route.id = id_prefix;
      bool bindings_ok = true;
      // "{param}" binds a path parameter; anything else is a literal.
      auto bind = [&](const ScalarRef& value, std::string key) -> std::optional<Route::Binding> {
        const std::string_view param = ParamName(value.value);
        if (param.empty()) return Route::Binding{std::move(key), -1, value.value};
        auto it = std::find(params.begin(), params.end(), param);
        if (it == params.end()) {
          yf.Error(value.pos, "'" + value.value + "' is not a parameter of the path " + path->value);
          bindings_ok = false;
          return std::nullopt;
        }
        return Route::Binding{std::move(key), static_cast<int>(it - params.begin()), ""};
      };
      if (const YAML::Node* rn = FindField(*f, "resource")) {
        auto rf = yf.Fields(*rn, "resource", {"id", "attributes"});
        if (!rf) continue;
        if (const YAML::Node* idn = FindField(*rf, "id")) {
          if (auto id = yf.Scalar(*idn, "resource.id")) route.resource_id = bind(*id, "");
        }
        if (const YAML::Node* an = FindField(*rf, "attributes")) {
          auto entries = yf.Entries(*an, "resource.attributes");
          if (entries) {
            const auto& declared = catalog.Attributes(*catalog.FindModel(model->value));
            for (const auto& e : *entries) {
              auto it = std::find_if(declared.begin(), declared.end(), [&](const auto& d) { return d.first == e.key; });
              if (it == declared.end() || it->second != ValueType::kString) {
                yf.Error(e.key_node, "'" + e.key + "' is not a string attribute of model '" + model->value +
                                         "' in the catalog (path parameters are strings)");
                bindings_ok = false;
                continue;
              }
              if (auto v = yf.Scalar(e.value, "resource.attributes." + e.key)) {
                if (auto b = bind(*v, e.key)) route.attributes.push_back(std::move(*b));
              }
            }
          }
        }
      } else if (std::find(params.begin(), params.end(), "id") != params.end()) {
        route.resource_id = Route::Binding{"", static_cast<int>(std::find(params.begin(), params.end(), "id") - params.begin()), ""};
      }
      if (!bindings_ok) continue;
      for (const ScalarRef& m : methods) Add(yf, m.pos, m.value, path->value, route);
    }
  }
}

std::optional<RouteMatch> RouteTable::Match(std::string_view method, std::string_view path) const {
  if (routes_.empty()) return std::nullopt;
  std::vector<std::string> segments;
  if (!SplitPath(path, &segments)) return std::nullopt;
  // Depth-first, literal before parameter. Each node sits at one depth, so it is entered at
  // most once: the walk is bounded by the trie, whatever the path.
  struct Frame {
    const Node* node;
    size_t depth;
  };
  std::vector<const Node*> chosen;  // the node taken at each depth on the current branch
  std::vector<Frame> stack = {{root_.get(), 0}};
  const Node* found = nullptr;
  int route_index = -1;
  while (!stack.empty()) {
    Frame f = stack.back();
    stack.pop_back();
    chosen.resize(f.depth);
    chosen.push_back(f.node);
    if (f.depth == segments.size()) {
      auto it = f.node->methods.find(method);
      if (it == f.node->methods.end() && method == "HEAD") it = f.node->methods.find(std::string_view("GET"));
      if (it != f.node->methods.end()) {
        found = f.node;
        route_index = it->second;
        break;
      }
      continue;
    }
    // Pushed in reverse preference: the literal child is tried first.
    if (f.node->param) stack.push_back({f.node->param.get(), f.depth + 1});
    if (auto it = f.node->literals.find(segments[f.depth]); it != f.node->literals.end()) {
      stack.push_back({it->second.get(), f.depth + 1});
    }
  }
  if (found == nullptr) return std::nullopt;
  // The parameters, in template order: the segments where the branch took a parameter child.
  std::vector<const std::string*> values;
  for (size_t d = 0; d < segments.size(); ++d) {
    if (chosen[d]->param.get() == chosen[d + 1]) values.push_back(&segments[d]);
  }
  const Route& route = routes_[static_cast<size_t>(route_index)];
  auto value_of = [&](const Route::Binding& b) -> std::string {
    if (b.param < 0) return b.literal;
    return static_cast<size_t>(b.param) < values.size() ? *values[static_cast<size_t>(b.param)] : std::string();
  };
  RouteMatch match;
  match.model = route.model;
  match.action = route.action;
  match.route = route.id;
  if (route.resource_id) match.resource_id = value_of(*route.resource_id);
  for (const Route::Binding& b : route.attributes) {
    std::string v = value_of(b);
    if (v.size() > kMaxAttributeStringBytes) v.resize(kMaxAttributeStringBytes);
    match.resource.Set(b.key, std::move(v));
  }
  return match;
}

}  // namespace warden::engine
