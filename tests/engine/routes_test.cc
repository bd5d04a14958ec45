// `kind: Routes` files (engine/routes.h): compile errors with positions, the REST expansion,
// literal-over-parameter matching, bindings, and paths that must not match.
#include <catch2/catch.hpp>

#include <string>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace warden::engine {
namespace {

using testing::ErrorStrings;
using testing::kTestCatalog;

TreeResult Compile(const std::string& routes) {
  return CompileSources({{"catalog.yaml", kTestCatalog}, {"routes/api.yaml", routes}}, "test");
}

std::string Describe(const std::optional<RouteMatch>& m) {
  if (!m) return "none";
  std::string out = std::string(m->model) + ":" + std::string(m->action) + " id=" + m->resource_id;
  for (const auto& [k, v] : m->resource.items()) out += " " + k + "=" + std::get<std::string>(v);
  return out;
}

TEST_CASE("a rest entry expands to the REST shape of the model's actions", "[routes]") {
  TreeResult r = Compile(R"(apiVersion: warden/v1
kind: Routes
name: api
rest:
  - {model: company, path: /companies}
  - {model: invoice, path: /billing/invoices}
)");
  INFO(ErrorStrings(r.errors).size());
  REQUIRE(r.snapshot);
  const PolicySnapshot& s = *r.snapshot;
  struct Case {
    const char* method;
    const char* path;
    const char* expect;
  };
  const Case cases[] = {
      {"GET", "/companies", "company:view id="},
      {"GET", "/companies/", "company:view id="},  // one trailing slash is ignored
      {"GET", "/companies/c1", "company:view id=c1"},
      {"HEAD", "/companies/c1", "company:view id=c1"},  // HEAD uses GET's route
      {"POST", "/companies", "company:create id="},
      {"PUT", "/companies/c1", "company:update id=c1"},
      {"PATCH", "/companies/c%20one", "company:update id=c one"},  // decoded per segment
      {"DELETE", "/companies/c1", "company:delete id=c1"},
      {"GET", "/companies/export", "company:export id="},  // the literal wins over {id}
      {"GET", "/companies/c1?fields=name", "company:view id=c1"},  // the query is not the path
      {"GET", "/companies/a%2Fb", "company:view id=a/b"},  // %2F does not split a segment
      // invoice has no create, update or export: those routes do not exist.
      {"GET", "/billing/invoices/i1", "invoice:view id=i1"},
      {"DELETE", "/billing/invoices/i1", "invoice:delete id=i1"},
      {"POST", "/billing/invoices", "none"},
      {"GET", "/billing/invoices/export", "invoice:view id=export"},
      // Nothing else matches.
      {"POST", "/companies/c1", "none"},
      {"GET", "/companies/c1/extra", "none"},
      {"GET", "/Companies", "none"},
      {"GET", "/", "none"},
      {"GET", "", "none"},
      {"GET", "companies", "none"},
      {"GET", "/companies//c1", "none"},
      {"GET", "/companies/../admin", "none"},
      {"GET", "/companies/./c1", "none"},
      {"OPTIONS", "/companies", "none"},
  };
  for (const Case& c : cases) {
    INFO(c.method << " " << c.path);
    CHECK(Describe(s.MatchRoute(c.method, c.path)) == c.expect);
  }
  CHECK(s.route_count() == 7 + 3);
  auto m = s.MatchRoute("GET", "/companies/c1");
  REQUIRE(m);
  CHECK(m->route == "routes:api#GET /companies/{id}");
}

TEST_CASE("explicit routes bind the resource id and attributes from parameters", "[routes]") {
  TreeResult r = Compile(R"(apiVersion: warden/v1
kind: Routes
name: api
routes:
  - method: [GET, HEAD]
    path: /segments/{segment}/companies/{company}
    model: company
    action: view
    resource: {id: "{company}", attributes: {segment: "{segment}", owner: team-a}}
  - {method: GET, path: "/companies/{id}/invoices", model: invoice, action: view}
  - {method: POST, path: "/invoices/{invoice}/pay", model: invoice, action: pay, resource: {id: "{invoice}"}}
)");
  REQUIRE(r.errors.empty());
  const PolicySnapshot& s = *r.snapshot;
  CHECK(Describe(s.MatchRoute("GET", "/segments/smb/companies/c9")) == "company:view id=c9 segment=smb owner=team-a");
  CHECK(Describe(s.MatchRoute("GET", "/companies/c9/invoices")) == "invoice:view id=c9");  // {id} by default
  CHECK(Describe(s.MatchRoute("POST", "/invoices/i7/pay")) == "invoice:pay id=i7");
  CHECK(Describe(s.MatchRoute("GET", "/invoices/i7/pay")) == "none");
}

TEST_CASE("a route file's errors carry file:line:col", "[routes]") {
  TreeResult r = Compile(R"(apiVersion: warden/v1
kind: Routes
name: api
rest:
  - {model: nosuch, path: /x}
  - {model: company, path: companies}
routes:
  - {method: GET, path: "/a/{id}", model: company, action: fly}
  - {method: FETCH, path: /b, model: company, action: view}
  - {method: GET, path: "/c/{x}/{x}", model: company, action: view}
  - {method: GET, path: "/d/{y}", model: company, action: view, resource: {id: "{z}"}}
  - {method: GET, path: /e, model: company, action: view, resource: {attributes: {arr: "1"}}}
  - {method: GET, path: "/f/{id}", model: company, action: view}
  - {method: GET, path: "/f/{other}", model: company, action: delete}
  - {method: GET, path: "/g/a{id}", model: company, action: view}
  - {method: GET, path: /h, model: company}
)");
  CHECK(!r.snapshot);
  const std::vector<std::string> errors = ErrorStrings(r.errors);
  const std::vector<std::string> expected = {
      "routes/api.yaml:5:13: unknown model 'nosuch'",
      "routes/api.yaml:6:28: path must start with '/'",
      "routes/api.yaml:8:60: model 'company' has no action 'fly'",
      "routes/api.yaml:9:14: unknown method 'FETCH' (GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS)",
      "routes/api.yaml:10:25: parameter '{x}' appears twice",
      "routes/api.yaml:11:80: '{z}' is not a parameter of the path /d/{y}",
      "routes/api.yaml:12:83: 'arr' is not a string attribute of model 'company' in the catalog (path parameters are strings)",
      "routes/api.yaml:14:14: duplicate route GET /f/{other} (also at routes/api.yaml:13:14)",
      "routes/api.yaml:15:25: 'a{id}': a parameter is a whole segment '{name}' (letters, digits, '_')",
      "routes/api.yaml:16:5: a route needs method, path, model and action",
  };
  CHECK(errors == expected);
}

TEST_CASE("the default policy tree routes every customer model", "[routes]") {
  TreeResult r = CompileTree(std::string(WARDEN_SOURCE_DIR) + "/policies");
  REQUIRE(r.snapshot);
  const PolicySnapshot& s = *r.snapshot;
  CHECK(Describe(s.MatchRoute("GET", "/companies/c1")) == "company:view id=c1");
  CHECK(Describe(s.MatchRoute("GET", "/endusers/export")) == "enduser:export id=");
  CHECK(Describe(s.MatchRoute("DELETE", "/invoices/i1")) == "invoice:delete id=i1");
  CHECK(Describe(s.MatchRoute("GET", "/serviceaccounts")) == "none");  // warden's own models are not routed
  int routed = 0;
  for (const ModelDecl& m : s.catalog().models()) {
    if (m.name == "serviceaccount" || m.name == "user" || m.name == "directory" || m.name == "authzen") continue;  // warden's own
    if (std::find(s.catalog().analytics().begin(), s.catalog().analytics().end(), m.name) != s.catalog().analytics().end()) continue;
    ++routed;
  }
  CHECK(s.route_count() == static_cast<size_t>(routed) * 7);
}

}  // namespace
}  // namespace warden::engine
