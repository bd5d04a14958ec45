// `kind: Routes` policy files (DESIGN.md 6.2): which check a gateway's request is. A route
// maps a method and a path template ("/companies/{id}") to a catalog model and action, and
// the resource id and attributes to parameters of the path. `rest:` entries expand to the
// REST shape of a model. Compiled into a segment trie once per snapshot; Match() walks it.
//
//   apiVersion: warden/v1
//   kind: Routes
//   name: customer-api
//   rest:                                  # GET /P, GET /P/{id}, POST /P, PUT|PATCH /P/{id},
//     - {model: company, path: /companies}  # DELETE /P/{id}, GET /P/export (the model's actions)
//   routes:
//     - method: [GET]
//       path: /companies/{company}/notes/{id}
//       model: note
//       action: view
//       resource: {id: "{id}", attributes: {company: "{company}"}}
//
// Matching: the path is split at '/', each segment percent-decoded on its own (so "%2F" never
// splits); a literal segment wins over a parameter; one trailing '/' is ignored; a path with
// an empty, "." or ".." segment, over kMaxRouteSegments segments, or that no template fits,
// matches nothing (the request is then denied UNKNOWN_ROUTE). HEAD uses GET's route when it
// has none of its own. Each trie node is visited at most once per match: linear in the path.
// Immutable once built; thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "engine/yaml_reader.h"

namespace warden::engine {

class CatalogImpl;

inline constexpr size_t kMaxRouteSegments = 32;

class RouteTable {
 public:
  RouteTable();
  ~RouteTable();
  RouteTable(RouteTable&&) noexcept;
  RouteTable& operator=(RouteTable&&) noexcept;

  // Reads one `kind: Routes` document into the table; errors (with positions) go to yf.
  // `catalog_ok`: the catalog compiled, so models and actions can be checked.
  void AddFile(YamlFile& yf, const YAML::Node& root, const CatalogImpl& catalog, bool catalog_ok);
  std::optional<RouteMatch> Match(std::string_view method, std::string_view path) const;
  size_t size() const { return routes_.size(); }

 private:
  struct Route {
    std::string model, action;
    std::string id;  // route id: "routes:<name>#<METHOD> <path>"
    std::string file;
    Pos pos;
    // The resource id / attributes: a parameter index (>= 0) or a literal.
    struct Binding {
      std::string key;  // attribute name ("" for the id)
      int param = -1;
      std::string literal;
    };
    std::optional<Binding> resource_id;
    std::vector<Binding> attributes;
  };
  struct Node;
  // Adds `route` for METHOD + path template (checked), or reports a duplicate.
  void Add(YamlFile& yf, Pos pos, const std::string& method, const std::string& path, Route route);

  std::vector<Route> routes_;
  std::unique_ptr<Node> root_;
};

}  // namespace warden::engine
