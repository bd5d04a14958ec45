#include "server/console/console.h"

#include <algorithm>

namespace warden::server::console {

namespace {

// Scripts, styles and images only from this origin, no inline script or style attribute, no
// plugin, no framing; fetch() only to this origin (the admin API).
constexpr char kContentSecurityPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const File* Find(std::string_view name) {
  const std::span<const File> files = Files();
  auto it = std::lower_bound(files.begin(), files.end(), name,
                             [](const File& f, std::string_view n) { return f.name < n; });
  return it != files.end() && it->name == name ? &*it : nullptr;
}

void Serve(const Request& req, Response& res) {
  constexpr std::string_view kPrefix = "/console/";
  std::string_view path = req.path;
  std::string_view name = path == "/" ? std::string_view("index.html")
                          : path.substr(0, kPrefix.size()) == kPrefix ? path.substr(kPrefix.size())
                                                                      : std::string_view();
  res.SetHeader("Content-Security-Policy", kContentSecurityPolicy);
  res.SetHeader("X-Content-Type-Options", "nosniff");
  res.SetHeader("X-Frame-Options", "DENY");
  res.SetHeader("Referrer-Policy", "no-referrer");
  res.SetHeader("Cross-Origin-Opener-Policy", "same-origin");
  const File* file = Find(name);
  if (file == nullptr) {
    res.SetHeader("Cache-Control", "no-store");
    res.status = 404;
    res.SetContent(R"({"error":{"code":"not_found","message":"no such console file"}})", "application/json");
    return;
  }
  res.SetHeader("Cache-Control", "no-cache");
  res.SetHeader("ETag", std::string(file->etag));
  if (req.Header("If-None-Match") == file->etag) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.SetContent(std::string(file->body), file->content_type);
}

}  // namespace

void AddRoutes(Router* router) {
  const auto serve = [](const Request& req, Response& res, const Router::Captures&) { Serve(req, res); };
  router->Add("GET", "/", serve);
  router->Add("GET", R"(/console/([A-Za-z0-9_.\-]+))", serve);
}

}  // namespace warden::server::console
